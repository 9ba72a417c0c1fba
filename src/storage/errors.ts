import type { LogIndex, NodeId, Term } from "../raft/types.js";

/** StorageError is the base of every expected failure the log store reports to its host. */
export class StorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageError";
  }
}

/**
 * CorruptLogError is thrown by LogStore.open when a stored entry is missing, unreadable, fails its
 * checksum or breaks the chain (an index out of place, a term going down). Below or at the commit
 * index the entry is committed; above it, it may be committed on other nodes, since this node's
 * commit index lags the leader's. LevelDB applies a batch whole or not at all, so a crash never
 * leaves such a fault behind (see recoverLog): the node refuses to start rather than truncate the
 * log; restore the data directory, or replace the node (remove it, start it empty, add it back).
 */
export class CorruptLogError extends StorageError {
  constructor(
    readonly index: LogIndex,
    readonly reason: string,
    /** committedIndex is this node's commit index (at least its snapshot index) when the fault was found. */
    readonly committedIndex: LogIndex,
    options?: { cause?: unknown },
  ) {
    super(
      index <= committedIndex
        ? `committed log entry ${index} is corrupt: ${reason}`
        : `log entry ${index} is corrupt: ${reason} (above this node's commit index ${committedIndex}, but it may be committed on other nodes)`,
      options,
    );
    this.name = "CorruptLogError";
  }
}

/**
 * CorruptStateError is thrown by LogStore.open when the hard state, the store metadata or the
 * snapshot metadata record fails its checksum or does not parse. Guessing a vote or a term would
 * break Raft's safety, so the node refuses to start.
 */
export class CorruptStateError extends StorageError {
  constructor(
    readonly record: "hard state" | "metadata" | "snapshot metadata",
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`stored ${record} is corrupt: ${reason}`, options);
    this.name = "CorruptStateError";
  }
}

/**
 * CorruptSnapshotError is thrown by LogStore.open when the snapshot the log was compacted to is
 * missing or corrupt and no older valid snapshot together with the stored log covers its place.
 */
export class CorruptSnapshotError extends StorageError {
  constructor(
    readonly index: LogIndex,
    readonly term: Term,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`snapshot at index ${index} (term ${term}) is missing or corrupt: ${reason}`, options);
    this.name = "CorruptSnapshotError";
  }
}

/** StoreIdentity names the cluster and node a data directory belongs to. */
export interface StoreIdentity {
  readonly clusterId: string;
  readonly nodeId: NodeId;
}

/**
 * ClusterMismatchError is thrown by LogStore.open when the data directory was created for another
 * cluster id or another node id; it names both so that a misplaced volume is easy to spot.
 */
export class ClusterMismatchError extends StorageError {
  constructor(
    readonly expected: StoreIdentity,
    readonly found: StoreIdentity,
  ) {
    super(
      `data directory belongs to cluster "${found.clusterId}" node "${found.nodeId}", ` +
        `not cluster "${expected.clusterId}" node "${expected.nodeId}"`,
    );
    this.name = "ClusterMismatchError";
  }
}

/** UnsupportedFormatError is thrown by LogStore.open when the directory was written in a storage format this build does not read. */
export class UnsupportedFormatError extends StorageError {
  constructor(
    readonly found: number,
    readonly supported: number,
  ) {
    super(`storage format version ${found} is not supported (this build reads version ${supported})`);
    this.name = "UnsupportedFormatError";
  }
}

/** StorageLockedError is thrown by LogStore.open when another process holds the directory's LevelDB lock. */
export class StorageLockedError extends StorageError {
  constructor(
    readonly dir: string,
    options?: { cause?: unknown },
  ) {
    super(`data directory ${dir} is in use by another process`, options);
    this.name = "StorageLockedError";
  }
}

/** StorageClosedError is thrown by every LogStore method called after close() began. */
export class StorageClosedError extends StorageError {
  constructor() {
    super("log store is closed");
    this.name = "StorageClosedError";
  }
}

/**
 * StorageFailedError is thrown by a write that failed, and by every later call: after a failed
 * synced write the state on disk is unknown (a retried fsync may report success for lost data),
 * so the store stops and the node must restart and recover from what is really on disk.
 */
export class StorageFailedError extends StorageError {
  constructor(options: { cause: unknown }) {
    super("log store write failed; restart the node to recover", options);
    this.name = "StorageFailedError";
  }
}

/**
 * SnapshotOutOfDateError is thrown by save and compact when the snapshot is not newer than the one
 * the store already holds, e.g. a local snapshot that lost a race with one installed from the leader.
 */
export class SnapshotOutOfDateError extends StorageError {
  constructor(
    readonly index: LogIndex,
    readonly currentIndex: LogIndex,
  ) {
    super(`snapshot at index ${index} is not newer than the stored snapshot at index ${currentIndex}`);
    this.name = "SnapshotOutOfDateError";
  }
}

/** ByteReadError is thrown by ByteReader when a record is shorter than its fields or a value is out of range. */
export class ByteReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ByteReadError";
  }
}

/**
 * CorruptFileError is thrown by LogStore.open when one of LevelDB's own files (a write-ahead log, a
 * manifest, a table, CURRENT) fails a checksum or does not parse (see leveldb-files.ts). LevelDB
 * would skip or misread the damage in silence, so the node refuses to start; restore the data
 * directory, or replace the node (remove it, start it empty, add it back).
 */
export class CorruptFileError extends StorageError {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`storage file ${file} is damaged at byte ${offset}: ${reason}`);
    this.name = "CorruptFileError";
  }
}

/**
 * LevelDbOpenError is thrown by LogStore.open when LevelDB itself refuses to open its folder for a
 * reason other than another process holding it (a damaged manifest the file checks let through, a
 * missing table): the node refuses to start with LevelDB's own words.
 */
export class LevelDbOpenError extends StorageError {
  constructor(
    readonly location: string,
    options?: { cause?: unknown },
  ) {
    const cause = (options?.cause as { cause?: { message?: string } } | undefined)?.cause?.message ?? (options?.cause as Error | undefined)?.message;
    super(`LevelDB refused to open ${location}: ${cause ?? "unknown reason"}`, options);
    this.name = "LevelDbOpenError";
  }
}
