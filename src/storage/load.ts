import { type Entry, type HardState, type LogIndex, NO_NODE, type Snapshot, type SnapshotMeta } from "../raft/types.js";
import { decodeHardState, decodeJsonRecord, encodeJsonRecord } from "./codec.js";
import { type LogDb, SYNCED } from "./db.js";
import { ClusterMismatchError, CorruptSnapshotError, CorruptStateError, type StoreIdentity, UnsupportedFormatError } from "./errors.js";
import { HARD_STATE_KEY, META_KEY, SNAPSHOT_META_KEY } from "./keys.js";
import type { StorageLogger } from "./logger.js";
import { parseSnapshotMeta, parseStoreMeta, STORAGE_FORMAT_VERSION, snapshotMetaJson } from "./meta.js";
import { recoverLog } from "./recover.js";
import { SnapshotStore } from "./snapshot-store.js";
import { emptyRange, type StoredRange } from "./write-plan.js";

/** EMPTY_HARD_STATE is the hard state of a node that never voted nor learned a term. */
export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NO_NODE, commit: 0 };

/** Loaded is everything recovery produced: the state for the core and what the store keeps about it. */
export interface Loaded {
  readonly snapshots: SnapshotStore;
  readonly range: StoredRange;
  readonly hardState: HardState;
  readonly snapshot: Snapshot | undefined;
  /** entries after the snapshot; the store may hold more below it (see COMPACTION_ENTRIES_KEPT). */
  readonly entries: Entry[];
}

/**
 * loadState checks the directory's identity, then recovers in dependency order: hard state and
 * snapshot metadata (which bound the committed prefix), the log (refusing any damage), and last
 * the snapshot file the log refers to. Snapshot files newer than the current one never became
 * current (a crash came before their batch) and are removed.
 */
export async function loadState(db: LogDb, dir: string, identity: StoreIdentity, logger: StorageLogger): Promise<Loaded> {
  await checkIdentity(db, identity);
  const hardState = await readHardState(db);
  const current = await readSnapshotMeta(db);
  const snapshots = await SnapshotStore.open(dir, logger);
  await snapshots.removeNewerThan(current?.index ?? 0);
  const snapshotIndex = current?.index ?? 0;
  const stored = await recoverLog(db, {
    snapshotIndex,
    committedIndex: Math.max(hardState.commit, snapshotIndex),
  });
  const snapshot = current === undefined ? undefined : await findSnapshot(db, snapshots, current, stored, logger);
  const base = snapshot?.meta.index ?? 0;
  const first = stored[0];
  const last = stored.at(-1);
  const range = first === undefined || last === undefined ? emptyRange(base) : { first: first.index, last: last.index };
  return { snapshots, range, hardState, snapshot, entries: stored.filter((entry) => entry.index > base) };
}

async function checkIdentity(db: LogDb, identity: StoreIdentity): Promise<void> {
  const value = await db.get(META_KEY);
  if (value === undefined) {
    for await (const _key of db.keys({ limit: 1 })) {
      throw new CorruptStateError("metadata", "missing from a store that holds data");
    }
    const meta = { formatVersion: STORAGE_FORMAT_VERSION, clusterId: identity.clusterId, nodeId: identity.nodeId };
    await db.put(META_KEY, encodeJsonRecord(meta), SYNCED);
    return;
  }
  const decoded = decodeJsonRecord(value);
  if (!decoded.ok) throw new CorruptStateError("metadata", decoded.reason);
  const meta = parseStoreMeta(decoded.value);
  if (meta === undefined) throw new CorruptStateError("metadata", "wrong shape");
  if (meta.formatVersion !== STORAGE_FORMAT_VERSION) throw new UnsupportedFormatError(meta.formatVersion, STORAGE_FORMAT_VERSION);
  if (meta.clusterId !== identity.clusterId || meta.nodeId !== identity.nodeId) {
    throw new ClusterMismatchError(identity, { clusterId: meta.clusterId, nodeId: meta.nodeId });
  }
}

async function readHardState(db: LogDb): Promise<HardState> {
  const value = await db.get(HARD_STATE_KEY);
  if (value === undefined) return EMPTY_HARD_STATE;
  const decoded = decodeHardState(value);
  if (!decoded.ok) throw new CorruptStateError("hard state", decoded.reason);
  return decoded.value;
}

async function readSnapshotMeta(db: LogDb): Promise<SnapshotMeta | undefined> {
  const value = await db.get(SNAPSHOT_META_KEY);
  if (value === undefined) return undefined;
  const decoded = decodeJsonRecord(value);
  if (!decoded.ok) throw new CorruptStateError("snapshot metadata", decoded.reason);
  const meta = parseSnapshotMeta(decoded.value);
  if (meta === undefined) throw new CorruptStateError("snapshot metadata", "wrong shape");
  return meta;
}

/**
 * findSnapshot loads the snapshot the log is compacted to. When that file is missing or corrupt,
 * an older valid snapshot will do if the stored log still reaches back to it (entries kept by
 * compaction); the store then makes that one current. Otherwise the node cannot start.
 */
async function findSnapshot(
  db: LogDb,
  snapshots: SnapshotStore,
  current: SnapshotMeta,
  stored: readonly Entry[],
  logger: StorageLogger,
): Promise<Snapshot | undefined> {
  const found = await snapshots.loadNewest(current.index);
  if (found !== undefined && found.meta.index === current.index && found.meta.term === current.term) return found;
  const fallbackIndex: LogIndex = found?.meta.index ?? 0;
  const firstStored = stored[0]?.index ?? Number.POSITIVE_INFINITY;
  if (firstStored > fallbackIndex + 1) {
    throw new CorruptSnapshotError(current.index, current.term, "no valid file, and the stored log does not reach an older snapshot");
  }
  logger.warn({ currentIndex: current.index, fallbackIndex }, "current snapshot unusable; falling back to an older one and the stored log");
  if (found === undefined) {
    await db.del(SNAPSHOT_META_KEY, SYNCED);
  } else {
    await db.put(SNAPSHOT_META_KEY, encodeJsonRecord(snapshotMetaJson(found.meta)), SYNCED);
  }
  await snapshots.removeNewerThan(fallbackIndex);
  return found;
}
