import type { Entry, LogIndex } from "../raft/types.js";
import { decodeEntry } from "./codec.js";
import { type LogDb, writeSynced } from "./db.js";
import { CorruptLogError } from "./errors.js";
import { ENTRY_KEY_AFTER_LAST, ENTRY_KEY_FIRST, entryIndexOfKey } from "./keys.js";
import type { StorageLogger } from "./logger.js";

/** RecoverOptions tells recovery where the log must start and which prefix is committed. */
export interface RecoverOptions {
  /** snapshotIndex is the index of the snapshot the log is compacted to (0 when none). */
  readonly snapshotIndex: LogIndex;
  /** committedIndex is the highest index known committed: max(hard state commit, snapshot index). */
  readonly committedIndex: LogIndex;
  readonly logger: StorageLogger;
}

interface Fault {
  readonly index: LogIndex;
  readonly reason: string;
}

/**
 * recoverLog reads every stored entry, checks each record and the chain they form (contiguous
 * indexes, terms that never go down, first entry no later than snapshotIndex + 1), and returns the
 * valid prefix. At the first fault past committedIndex the rest is a torn tail from a crash: it is
 * deleted in one synced batch and a warning names where it began. A fault at or below
 * committedIndex throws CorruptLogError, as does a log that ends before committedIndex.
 */
export async function recoverLog(db: LogDb, options: RecoverOptions): Promise<Entry[]> {
  const entries: Entry[] = [];
  const tailKeys: Buffer[] = [];
  let fault: Fault | undefined;
  for await (const [key, value] of db.iterator({ gte: ENTRY_KEY_FIRST, lt: ENTRY_KEY_AFTER_LAST })) {
    if (fault === undefined) fault = checkNext(entries, key, value, options.snapshotIndex);
    if (fault !== undefined) tailKeys.push(key);
  }
  if (fault !== undefined) {
    if (fault.index <= options.committedIndex) throw new CorruptLogError(fault.index, fault.reason);
    await writeSynced(
      db,
      tailKeys.map((key) => ({ type: "del" as const, key })),
    );
    options.logger.warn(
      { fromIndex: fault.index, reason: fault.reason, recordsDropped: tailKeys.length, committedIndex: options.committedIndex },
      "truncated torn log tail",
    );
  }
  const lastIndex = Math.max(entries.at(-1)?.index ?? 0, options.snapshotIndex);
  if (lastIndex < options.committedIndex) {
    throw new CorruptLogError(lastIndex + 1, `missing: the log ends at ${lastIndex}, below commit index ${options.committedIndex}`);
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
