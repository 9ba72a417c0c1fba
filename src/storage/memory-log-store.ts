import assert from "node:assert/strict";
import { type Entry, type HardState, type LogIndex, NO_NODE, type Snapshot, type SnapshotMeta } from "../raft/types.js";
import { SnapshotOutOfDateError, StorageClosedError } from "./errors.js";
import type { CompactOptions, LoadedState, RaftLogStore, SaveRequest } from "./log-store.js";
import type { SnapshotToStore } from "./snapshot-codec.js";
import { assertChain } from "./write-plan.js";

/**
 * MemoryLogStoreOptions shapes when writes become durable. Without `persist` a write is durable
 * as soon as it runs; with it, the write is handed over and becomes durable (and resolves) only
 * when `persist` calls `done`, which is how the simulator models a slow fsync on virtual time.
 */
export interface MemoryLogStoreOptions {
  readonly persist?: (done: () => void) => void;
}

/** Durable is the stored state: what a node finds after a crash. */
interface Durable {
  readonly hardState: HardState;
  readonly snapshot: Snapshot | undefined;
  /** entries are the stored entries after the snapshot, without gaps. */
  readonly entries: readonly Entry[];
}

/**
 * MemoryLogStore is a RaftLogStore in memory, with LogStore's semantics: the same writes leave the
 * same state (a snapshot from the leader replaces the whole stored log; a local snapshot drops the
 * entries it covers), and what LogStore refuses it refuses (SnapshotOutOfDateError, or an
 * assertion for a write the core must never make), so a host loop that breaks the storage contract
 * fails on it too (test/sim/memory-storage.test.ts compares the two on random writes).
 * Durability: a write that resolved survives crash(); one that had not resolved is lost whole.
 */
export class MemoryLogStore implements RaftLogStore {
  private durable: Durable;
  /** pending is the state once every write handed over so far is durable: the next write builds on it. */
  private pending: Durable;
  private queue: Promise<void> = Promise.resolve();
  /** epoch counts crashes: a write handed over before a crash never lands. */
  private epoch = 0;
  private closed = false;

  constructor(
    initial?: LoadedState,
    private readonly options: MemoryLogStoreOptions = {},
  ) {
    this.durable = {
      hardState: initial?.hardState ?? { term: 0, vote: NO_NODE, commit: 0 },
      snapshot: initial?.snapshot,
      entries: [...(initial?.entries ?? [])],
    };
    this.pending = this.durable;
  }

  /** load returns what a node restarting now finds: only durable writes. */
  load(): LoadedState {
    const { hardState, snapshot, entries } = this.durable;
    return snapshot === undefined ? { hardState, entries: [...entries] } : { hardState, snapshot, entries: [...entries] };
  }

  /** snapshotMeta is the durable snapshot's metadata (undefined without one). */
  snapshotMeta(): SnapshotMeta | undefined {
    return this.durable.snapshot?.meta;
  }

  /**
   * crash loses every write that has not resolved, as a killed process does; their promises never
   * settle. The store stays usable, holding exactly its durable state, as if reopened.
   */
  crash(): void {
    this.epoch++;
    this.pending = this.durable;
    this.queue = Promise.resolve();
    this.closed = false;
  }

  /** save persists one Ready's durable part as one atomic write (see LogStore.save). */
  save(request: SaveRequest): Promise<void> {
    return this.serially(() => {
      const { snapshot, hardState } = request;
      const cur = this.pending;
      const snapIndex = cur.snapshot?.meta.index ?? 0;
      let entries = cur.entries;
      const first = request.entries[0];
      if (snapshot !== undefined) {
        const idx = snapshot.meta.index;
        if (idx <= snapIndex) throw new SnapshotOutOfDateError(idx, snapIndex);
        if (first) assert.equal(first.index, idx + 1, "entries must follow the installed snapshot");
        assertChain(request.entries);
        // Entries after the snapshot's index may disagree with it: none survive but those that come with it.
        entries = [...request.entries];
      } else if (first) {
        const last = cur.entries.at(-1)?.index ?? snapIndex;
        assert(first.index > snapIndex, `entry ${first.index} would overwrite the snapshot at ${snapIndex}`);
        assert(first.index <= last + 1, `entry ${first.index} leaves a gap after ${last}`);
        assertChain(request.entries);
        // Entries are stored without gaps from snapIndex + 1, so the ones kept are a prefix.
        entries = cur.entries.slice(0, first.index - snapIndex - 1).concat(request.entries);
      }
      const lastIndex = entries.at(-1)?.index ?? snapshot?.meta.index ?? snapIndex;
      if (hardState !== undefined) assertHardStateFollows(cur.hardState, hardState, lastIndex);
      return { hardState: hardState ?? cur.hardState, snapshot: snapshot ?? cur.snapshot, entries };
    });
  }

  /** compact records a local snapshot and drops the entries it covers (all of them: a restart loads none below it). */
  compact(toStore: SnapshotToStore, _options: CompactOptions = {}): Promise<void> {
    return this.serially(() => {
      // This store keeps snapshots in memory, whole.
      const snapshot: Snapshot = "chunks" in toStore ? { meta: toStore.meta, data: Buffer.concat(toStore.chunks) } : toStore;
      const cur = this.pending;
      const { index, term } = snapshot.meta;
      const snapIndex = cur.snapshot?.meta.index ?? 0;
      if (index <= snapIndex) throw new SnapshotOutOfDateError(index, snapIndex);
      assert(index <= cur.hardState.commit, `snapshot at ${index} is past commit ${cur.hardState.commit}`);
      assert(index <= (cur.entries.at(-1)?.index ?? snapIndex), `snapshot at ${index} is past the stored log`);
      assert.equal(cur.entries[index - snapIndex - 1]?.term, term, `snapshot term ${term} disagrees with the entry at ${index}`);
      return { hardState: cur.hardState, snapshot, entries: cur.entries.slice(index - snapIndex) };
    });
  }

  /** loadSnapshot returns the durable snapshot when it has this term and index (this store keeps one). */
  loadSnapshot(meta: Pick<SnapshotMeta, "term" | "index">): Promise<Snapshot | undefined> {
    if (this.closed) return Promise.reject(new StorageClosedError());
    const snap = this.durable.snapshot;
    return Promise.resolve(snap !== undefined && snap.meta.index === meta.index && snap.meta.term === meta.term ? snap : undefined);
  }

  /** close waits for writes handed over; later writes fail with StorageClosedError. */
  close(): Promise<void> {
    this.closed = true;
    return this.queue;
  }

  /**
   * serially checks a write against the state every earlier write leaves (as LogStore does, one at
   * a time in call order), then makes it durable, through options.persist when given.
   */
  private serially(plan: () => Durable): Promise<void> {
    if (this.closed) return Promise.reject(new StorageClosedError());
    const epoch = this.epoch;
    const run = this.queue.then(() => {
      const next = plan();
      this.pending = next;
      return new Promise<void>((resolve) => {
        const land = () => {
          if (epoch !== this.epoch) return;
          this.durable = next;
          resolve();
        };
        if (this.options.persist) this.options.persist(land);
        else land();
      });
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** assertHardStateFollows checks what LogStore checks: terms and commit never go down, one vote per term, commit within the log. */
function assertHardStateFollows(current: HardState, next: HardState, lastIndex: LogIndex): void {
  assert(next.term >= current.term, `term goes down from ${current.term} to ${next.term}`);
  assert(next.commit >= current.commit, `commit goes down from ${current.commit} to ${next.commit}`);
  if (next.term === current.term && current.vote !== NO_NODE) {
    assert.equal(next.vote, current.vote, `vote changes within term ${next.term}`);
  }
  assert(next.commit <= lastIndex, `commit ${next.commit} is past the last index ${lastIndex}`);
}
