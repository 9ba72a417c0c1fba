import assert from "node:assert/strict";
import type { LogIndex } from "../raft/types.js";

/**
 * Key layout of the one LevelDB a node keeps (keyEncoding "buffer"):
 *
 *   "e" + u64 big-endian index   one log entry; big-endian so LevelDB's bytewise order is index order
 *   "hardstate"                  the HardState record
 *   "meta"                       format version, cluster id, node id (written once at creation)
 *   "snapshot"                   metadata of the snapshot the log is compacted to
 *
 * The single-key records all sort after every entry key ("e" < "h" < "m" < "s"), so a range scan
 * over entries never meets them.
 */

const ENTRY_PREFIX = 0x65; // "e"
/** ENTRY_KEY_BYTES is the prefix byte plus a fixed-width 8-byte index. */
export const ENTRY_KEY_BYTES = 9;
const TWO_POW_32 = 0x1_0000_0000;

/** HARD_STATE_KEY holds the HardState record. */
export const HARD_STATE_KEY = Buffer.from("hardstate");
/** META_KEY holds the StoreMeta record. */
export const META_KEY = Buffer.from("meta");
/** SNAPSHOT_META_KEY holds the SnapshotMeta of the snapshot the log is compacted to. */
export const SNAPSHOT_META_KEY = Buffer.from("snapshot");

/** entryKey is the key of the entry at index. */
export function entryKey(index: LogIndex): Buffer {
  assert(Number.isSafeInteger(index) && index >= 0, `entry key index ${index} invalid`);
  const key = Buffer.alloc(ENTRY_KEY_BYTES);
  key[0] = ENTRY_PREFIX;
  key.writeUInt32BE(Math.floor(index / TWO_POW_32), 1);
  key.writeUInt32BE(index >>> 0, 5);
  return key;
}

/** ENTRY_KEY_FIRST is the lower bound (gte) of a range scan over every possible entry key. */
export const ENTRY_KEY_FIRST = Buffer.from([ENTRY_PREFIX]);
/** ENTRY_KEY_AFTER_LAST is the upper bound (lt) of a range scan over every possible entry key. */
export const ENTRY_KEY_AFTER_LAST = Buffer.from([ENTRY_PREFIX + 1]);

/** entryIndexOfKey returns the index an entry key encodes, or undefined when key is not a well-formed entry key. */
export function entryIndexOfKey(key: Uint8Array): LogIndex | undefined {
  if (key.length !== ENTRY_KEY_BYTES || key[0] !== ENTRY_PREFIX) return undefined;
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const index = view.getUint32(1) * TWO_POW_32 + view.getUint32(5);
  return Number.isSafeInteger(index) ? index : undefined;
}
