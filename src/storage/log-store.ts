import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { type Entry, type HardState, type LogIndex, NO_NODE, type NodeId, type Snapshot, type SnapshotMeta } from "../raft/types.js";
import { decodeEntry, encodeHardState, encodeJsonRecord } from "./codec.js";
import { type LogDb, type LogDbOp, openLogDb, writeSynced } from "./db.js";
import { SnapshotOutOfDateError, StorageClosedError, StorageFailedError } from "./errors.js";
import { entryKey, HARD_STATE_KEY, SNAPSHOT_META_KEY } from "./keys.js";
import { loadState } from "./load.js";
import { STDERR_LOGGER, type StorageLogger } from "./logger.js";
import { snapshotMetaJson } from "./meta.js";
import type { SnapshotToStore } from "./snapshot-codec.js";
import type { SnapshotStore } from "./snapshot-store.js";
import { planAppend, planCompact, planInstall, type StoredRange, type WritePlan } from "./write-plan.js";

/**
 * COMPACTION_ENTRIES_KEPT is how many entries at or below a local snapshot compact() leaves in
 * LevelDB by default. Zero, because the core keeps only the log after its snapshot and cannot send
 * older entries to a slow follower anyway; such a follower gets the snapshot.
 */
export const COMPACTION_ENTRIES_KEPT = 0;

/** LogStoreOptions names the cluster and node that own the data directory. */
export interface LogStoreOptions {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  /** logger receives recovery warnings (skipped snapshot, leftover files); defaults to JSON lines on stderr. */
  readonly logger?: StorageLogger;
}

/** LoadedState is what the store holds on open: hand it to the core. entries follow snapshot (or index 0) without gaps. */
export interface LoadedState {
  readonly hardState: HardState;
  readonly snapshot?: Snapshot;
  readonly entries: Entry[];
}

/** SaveRequest is the persistable part of one Ready. */
export interface SaveRequest {
  readonly hardState?: HardState;
  /** entries to append; the first may overwrite stored ones, and every stored entry from its index on is replaced. */
  readonly entries: readonly Entry[];
  /** snapshot installed from the leader: it replaces the whole stored log, and entries (if any) must follow it. */
  readonly snapshot?: Snapshot;
}

/** CompactOptions tunes compact(). */
export interface CompactOptions {
  /** entriesKept is how many entries at or below the snapshot stay stored; defaults to COMPACTION_ENTRIES_KEPT. */
  readonly entriesKept?: number;
}

/**
 * RaftLogStore is what the host loop (src/node/raft-node.ts) needs of durable storage. Contract:
 * writes run one at a time in call order; a write resolves only once it is durable (a crash after
 * that keeps it, a crash before may lose it, never half of it); a write the store refuses rejects,
 * and the host stops. LogStore (LevelDB) and MemoryLogStore (memory-log-store.ts) implement it.
 */
export interface RaftLogStore {
  /** save persists one Ready's hard state, entries and snapshot from the leader as one atomic write. */
  save(request: SaveRequest): Promise<void>;
  /** compact stores a snapshot taken locally (whole or in chunks) and drops the entries it covers (but entriesKept). */
  compact(snapshot: SnapshotToStore, options?: CompactOptions): Promise<void>;
  /**
   * loadSnapshot reads back a stored snapshot by its term and index, to send to a follower;
   * undefined when the store no longer has it (a newer one replaced it). Not part of the write queue.
   */
  loadSnapshot(meta: Pick<SnapshotMeta, "term" | "index">): Promise<Snapshot | undefined>;
}

/**
 * LogStore is the durable Raft log of one node: entries, hard state and snapshot metadata in one
 * LevelDB under `<dir>/raft.leveldb`, snapshot data in files under `<dir>/snapshots/`.
 * Contract: a save or compact resolves only after its LevelDB batch was written with sync: true,
 * so a resolved save may be acknowledged (the one exception, a save whose only change is the
 * commit index, is not synced: losing it is harmless); writes run one at a time in call order;
 * after a failed write every call throws StorageFailedError.
 */
export class LogStore implements RaftLogStore {
  private queue: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private failure: { cause: unknown } | undefined;

  private constructor(
    private readonly db: LogDb,
    private readonly snapshots: SnapshotStore,
    private readonly logger: StorageLogger,
    private hardState: HardState,
    private snapshotMeta: SnapshotMeta | undefined,
    private range: StoredRange,
  ) {}

  /** open creates or opens the store in dir, checks it belongs to this cluster and node, recovers it and returns it with its state. */
  static async open(dir: string, options: LogStoreOptions): Promise<{ store: LogStore; state: LoadedState }> {
    const logger = options.logger ?? STDERR_LOGGER;
    await mkdir(dir, { recursive: true });
    const db = await openLogDb(dir);
    try {
      const loaded = await loadState(db, dir, { clusterId: options.clusterId, nodeId: options.nodeId }, logger);
      const { hardState, snapshot, entries } = loaded;
      const store = new LogStore(db, loaded.snapshots, logger, hardState, snapshot?.meta, loaded.range);
      return { store, state: snapshot === undefined ? { hardState, entries } : { hardState, snapshot, entries } };
    } catch (error) {
      await db.close();
      throw error;
    }
  }

  /** firstIndex is the index of the first stored entry, or lastIndex() + 1 when no entry is stored. */
  firstIndex(): LogIndex {
    this.assertOpen();
    return this.range.last < this.range.first ? this.lastIndex() + 1 : this.range.first;
  }

  /** lastIndex is the index of the last stored entry, or the snapshot index when that is higher (0 for an empty store). */
  lastIndex(): LogIndex {
    this.assertOpen();
    return Math.max(this.range.last, this.snapshotIndex());
  }

  /**
   * save persists one Ready in one batch, synced unless the only change is the commit index; a
   * snapshot in it is written to its file first.
   */
  save(request: SaveRequest): Promise<void> {
    return this.serially(async () => {
      const { snapshot, hardState } = request;
      if (snapshot !== undefined) this.assertNewer(snapshot.meta);
      const plan: WritePlan =
        snapshot === undefined
          ? planAppend(this.range, this.snapshotIndex(), request.entries)
          : planInstall(this.range, snapshot.meta.index, request.entries);
      const snapshotIndex = snapshot?.meta.index ?? this.snapshotIndex();
      if (hardState !== undefined) {
        this.assertHardStateFollows(hardState, Math.max(plan.range.last, snapshotIndex));
        plan.ops.push({ type: "put", key: HARD_STATE_KEY, value: encodeHardState(hardState) });
      }
      if (snapshot !== undefined) plan.ops.push(snapshotMetaOp(snapshot.meta));
      if (plan.ops.length === 0) return;
      // Only entries, a snapshot, a term or a vote must be synced before anyone is told; a hard
      // state that differs only in its commit index need not be (etcd's MustSync makes the same cut).
      const mustSync =
        snapshot !== undefined ||
        request.entries.length > 0 ||
        (hardState !== undefined && (hardState.term !== this.hardState.term || hardState.vote !== this.hardState.vote));
      await this.durably(async () => {
        if (snapshot !== undefined) await this.snapshots.save(snapshot);
        await writeSynced(this.db, plan.ops, mustSync);
      });
      this.range = plan.range;
      if (hardState !== undefined) this.hardState = hardState;
      if (snapshot !== undefined) {
        this.snapshotMeta = snapshot.meta;
        await this.pruneSnapshots();
      }
    });
  }

  /**
   * compact stores a snapshot taken locally, then deletes entries up to its index minus entriesKept.
   * The file is written and synced before the call joins the write queue: it is the slow part (tens
   * of MB and an fsync with a large registry), it touches no log key, and until the compaction batch
   * names it in the snapshot meta, recovery ignores it (it loads the meta's snapshot, and pruning
   * keeps SNAPSHOTS_KEPT files). Holding the queue for it held every append behind it, and with
   * them a leader's pump and its heartbeats.
   */
  async compact(snapshot: SnapshotToStore, options: CompactOptions = {}): Promise<void> {
    this.assertOpen();
    this.assertNewer(snapshot.meta);
    await this.durably(() => this.snapshots.save(snapshot));
    return this.serially(async () => {
      const { meta } = snapshot;
      // Checked again: a snapshot from the leader may have been stored while the file was written.
      this.assertNewer(meta);
      assert(meta.index <= this.hardState.commit, `snapshot at ${meta.index} is past commit ${this.hardState.commit}`);
      assert(meta.index <= this.range.last, `snapshot at ${meta.index} is past the stored log`);
      await this.assertTermAt(meta.index, meta.term);
      const plan = planCompact(this.range, meta.index, options.entriesKept ?? COMPACTION_ENTRIES_KEPT);
      plan.ops.push(snapshotMetaOp(meta));
      await this.durably(() => writeSynced(this.db, plan.ops));
      this.range = plan.range;
      this.snapshotMeta = meta;
      await this.pruneSnapshots();
    });
  }

  /**
   * loadSnapshot reads the snapshot file of that term and index (undefined once pruned or when
   * corrupt, with a warning). It reads a complete file beside the write queue: files are renamed
   * into place whole, and one pruned while it is read stays readable through the open descriptor.
   */
  async loadSnapshot(meta: Pick<SnapshotMeta, "term" | "index">): Promise<Snapshot | undefined> {
    this.assertOpen();
    return this.snapshots.load(meta);
  }

  /** close waits for pending writes, then closes LevelDB; later calls throw StorageClosedError. */
  close(): Promise<void> {
    this.closing ??= this.queue.then(() => this.db.close());
    return this.closing;
  }

  private snapshotIndex(): LogIndex {
    return this.snapshotMeta?.index ?? 0;
  }

  private serially<T>(job: () => Promise<T>): Promise<T> {
    if (this.closing !== undefined) return Promise.reject(new StorageClosedError());
    const run = this.queue.then(() => {
      if (this.failure !== undefined) throw new StorageFailedError(this.failure);
      return job();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async durably(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (cause) {
      this.failure = { cause };
      throw new StorageFailedError({ cause });
    }
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new StorageClosedError();
  }

  private assertNewer(meta: SnapshotMeta): void {
    if (meta.index <= this.snapshotIndex()) throw new SnapshotOutOfDateError(meta.index, this.snapshotIndex());
  }

  /** assertHardStateFollows checks what Raft promises: terms and commit never go down, one vote per term, commit within the log. */
  private assertHardStateFollows(next: HardState, lastIndex: LogIndex): void {
    const current = this.hardState;
    assert(next.term >= current.term, `term goes down from ${current.term} to ${next.term}`);
    assert(next.commit >= current.commit, `commit goes down from ${current.commit} to ${next.commit}`);
    if (next.term === current.term && current.vote !== NO_NODE) {
      assert.equal(next.vote, current.vote, `vote changes within term ${next.term}`);
    }
    assert(next.commit <= lastIndex, `commit ${next.commit} is past the last index ${lastIndex}`);
  }

  private async assertTermAt(index: LogIndex, term: number): Promise<void> {
    const value = await this.db.get(entryKey(index));
    assert(value !== undefined, `entry ${index} is not stored`);
    const decoded = decodeEntry(value);
    assert(decoded.ok && decoded.value.term === term, `snapshot term ${term} disagrees with the entry at ${index}`);
  }

  /** pruneSnapshots runs after the batch that made the new snapshot current; failing to prune wastes disk but loses nothing. */
  private async pruneSnapshots(): Promise<void> {
    try {
      await this.snapshots.prune();
    } catch (error) {
      this.logger.warn({ err: error }, "could not prune old snapshot files");
    }
  }
}

function snapshotMetaOp(meta: SnapshotMeta): LogDbOp {
  return { type: "put", key: SNAPSHOT_META_KEY, value: encodeJsonRecord(snapshotMetaJson(meta)) };
}
