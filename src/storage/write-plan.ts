import assert from "node:assert/strict";
import type { Entry, LogIndex } from "../raft/types.js";
import { encodeEntry } from "./codec.js";
import type { LogDbOp } from "./db.js";
import { entryKey } from "./keys.js";

/**
 * StoredRange is the contiguous run of entry keys in LevelDB, [first, last].
 * Invariant: it is empty exactly when last < first, and then it is {first: snapshotIndex + 1, last: snapshotIndex}.
 */
export interface StoredRange {
  readonly first: LogIndex;
  readonly last: LogIndex;
}

/** WritePlan is the batch for one write and the stored range once that batch is durable. */
export interface WritePlan {
  readonly ops: LogDbOp[];
  readonly range: StoredRange;
}

/** emptyRange is the StoredRange of a store holding no entries after snapshotIndex. */
export function emptyRange(snapshotIndex: LogIndex): StoredRange {
  return { first: snapshotIndex + 1, last: snapshotIndex };
}

function deleteOps(from: LogIndex, through: LogIndex, keep?: StoredRange): LogDbOp[] {
  const ops: LogDbOp[] = [];
  for (let index = from; index <= through; index++) {
    if (keep !== undefined && index >= keep.first && index <= keep.last) continue;
    ops.push({ type: "del", key: entryKey(index) });
  }
  return ops;
}

/** assertChain crashes unless entries have consecutive indexes and terms that never go down. */
export function assertChain(entries: readonly Entry[]): void {
  for (let i = 1; i < entries.length; i++) {
    const previous = entries[i - 1]!;
    const entry = entries[i]!;
    assert.equal(entry.index, previous.index + 1, `entries not contiguous at ${entry.index}`);
    assert(entry.term >= previous.term, `entry ${entry.index} term ${entry.term} below ${previous.term}`);
  }
}

/**
 * planAppend writes entries after (or over part of) the stored range: every stored entry at or
 * above the first new index that the new entries do not overwrite is deleted.
 */
export function planAppend(range: StoredRange, snapshotIndex: LogIndex, entries: readonly Entry[]): WritePlan {
  assertChain(entries);
  const first = entries[0];
  const last = entries.at(-1);
  if (first === undefined || last === undefined) return { ops: [], range };
  const lastIndex = Math.max(range.last, snapshotIndex);
  assert(first.index > snapshotIndex, `entry ${first.index} would overwrite the snapshot at ${snapshotIndex}`);
  assert(first.index <= lastIndex + 1, `entry ${first.index} leaves a gap after ${lastIndex}`);
  const ops = deleteOps(last.index + 1, range.last);
  for (const entry of entries) ops.push({ type: "put", key: entryKey(entry.index), value: encodeEntry(entry) });
  const empty = range.last < range.first;
  return { ops, range: { first: empty ? first.index : range.first, last: last.index } };
}

/**
 * planInstall replaces the whole log with a snapshot from the leader followed by entries (as
 * etcd's restore does: the stored entries may disagree with the snapshot, so none survive).
 */
export function planInstall(range: StoredRange, snapshotIndex: LogIndex, entries: readonly Entry[]): WritePlan {
  assertChain(entries);
  const first = entries[0];
  const last = entries.at(-1);
  if (first !== undefined) assert.equal(first.index, snapshotIndex + 1, "entries must follow the installed snapshot");
  const kept = last === undefined ? emptyRange(snapshotIndex) : { first: snapshotIndex + 1, last: last.index };
  const ops = deleteOps(range.first, range.last, kept);
  for (const entry of entries) ops.push({ type: "put", key: entryKey(entry.index), value: encodeEntry(entry) });
  return { ops, range: kept };
}

/** planCompact deletes stored entries up to snapshotIndex - entriesKept. */
export function planCompact(range: StoredRange, snapshotIndex: LogIndex, entriesKept: number): WritePlan {
  assert(Number.isSafeInteger(entriesKept) && entriesKept >= 0, `entriesKept ${entriesKept} invalid`);
  const through = Math.min(snapshotIndex - entriesKept, range.last);
  const ops = deleteOps(range.first, through);
  const rest = through >= range.last ? emptyRange(snapshotIndex) : { first: Math.max(range.first, through + 1), last: range.last };
  return { ops, range: rest };
}
