import type { Entry, LogIndex } from "../raft/types.js";
import { decodeEntry } from "./codec.js";
import type { LogDb } from "./db.js";
import { CorruptLogError } from "./errors.js";
import { ENTRY_KEY_AFTER_LAST, ENTRY_KEY_FIRST, entryIndexOfKey } from "./keys.js";

/** RecoverOptions tells recovery where the log must start and which prefix is committed. */
export interface RecoverOptions {
  /** snapshotIndex is the index of the snapshot the log is compacted to (0 when none). */
  readonly snapshotIndex: LogIndex;
  /** committedIndex is the highest index known committed: max(hard state commit, snapshot index). */
  readonly committedIndex: LogIndex;
}

interface Fault {
  readonly index: LogIndex;
  readonly reason: string;
}

/**
 * recoverLog reads every stored entry, checks each record and the chain they form (contiguous
 * indexes, terms that never go down, first entry no later than snapshotIndex + 1), and returns
 * them. Any fault throws CorruptLogError naming the first bad index, as does a log that ends
 * before committedIndex; nothing is deleted.
 *
 * There is no such thing as a torn tail to cut off here. Every save is one LevelDB batch, and
 * LevelDB writes a batch as one record of its write-ahead log, checksummed, and on reopen replays
 * only whole records: a crash in the middle of a save leaves that batch out entirely, and what we
 * read is the log as it was before it, intact. So a bad checksum, a gap or a term going down is
 * damage to data that was synced, and an entry above this node's commit index may still be
 * committed in the cluster (this node's commit index lags the leader's): deleting it could drop
 * the copy a majority counted on. The node refuses to start and an operator decides.
 */
export async function recoverLog(db: LogDb, options: RecoverOptions): Promise<Entry[]> {
  const entries: Entry[] = [];
  for await (const [key, value] of db.iterator({ gte: ENTRY_KEY_FIRST, lt: ENTRY_KEY_AFTER_LAST })) {
    const fault = checkNext(entries, key, value, options.snapshotIndex);
    if (fault !== undefined) throw new CorruptLogError(fault.index, fault.reason, options.committedIndex);
  }
  const lastIndex = Math.max(entries.at(-1)?.index ?? 0, options.snapshotIndex);
  if (lastIndex < options.committedIndex) {
    throw new CorruptLogError(
      lastIndex + 1,
      `missing: the log ends at ${lastIndex}, below commit index ${options.committedIndex}`,
      options.committedIndex,
    );
  }
  return entries;
}

/** checkNext appends the entry stored under key to entries, or returns the fault that stops the chain there. */
function checkNext(entries: Entry[], key: Buffer, value: Uint8Array, snapshotIndex: LogIndex): Fault | undefined {
  const previous = entries.at(-1);
  const expected = previous === undefined ? snapshotIndex + 1 : previous.index + 1;
  const index = entryIndexOfKey(key);
  if (index === undefined) return { index: expected, reason: "malformed entry key" };
  // Before the first entry, any index up to snapshotIndex + 1 is fine: compaction may keep entries below the snapshot.
  if (previous === undefined ? index > expected : index !== expected) {
    return { index: expected, reason: `missing: next stored entry is ${index}` };
  }
  const decoded = decodeEntry(value);
  if (!decoded.ok) return { index, reason: decoded.reason };
  const entry = decoded.value;
  if (entry.index !== index) return { index, reason: `record holds index ${entry.index}` };
  if (previous !== undefined && entry.term < previous.term) {
    return { index, reason: `term ${entry.term} below previous term ${previous.term}` };
  }
  entries.push(entry);
  return undefined;
}
