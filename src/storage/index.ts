/**
 * storage is the durable side of a node: the Raft log, hard state and snapshots. The host loop
 * opens a LogStore, hands the loaded state to the core, and saves each Ready before sending.
 */
export { ENTRY_DATA_BYTES_MAX } from "./codec.js";
export { LEVELDB_DIR } from "./db.js";
export {
  ClusterMismatchError,
  CorruptLogError,
  CorruptSnapshotError,
  CorruptFileError,
  CorruptStateError,
  LevelDbOpenError,
  SnapshotOutOfDateError,
  StorageClosedError,
  StorageError,
  StorageFailedError,
  StorageLockedError,
  type StoreIdentity,
  UnsupportedFormatError,
} from "./errors.js";
export {
  COMPACTION_ENTRIES_KEPT,
  type CompactOptions,
  type LoadedState,
  LogStore,
  type RaftLogStore,
  type LogStoreOptions,
  type SaveRequest,
} from "./log-store.js";
export { MemoryLogStore, type MemoryLogStoreOptions } from "./memory-log-store.js";
export { STDERR_LOGGER, type StorageLogger } from "./logger.js";
export { STORAGE_FORMAT_VERSION } from "./meta.js";
export { type ChunkedSnapshot, SNAPSHOT_DATA_BYTES_MAX, type SnapshotToStore, snapshotByteLength } from "./snapshot-codec.js";
export { SNAPSHOT_DIR, SNAPSHOTS_KEPT } from "./snapshot-store.js";
