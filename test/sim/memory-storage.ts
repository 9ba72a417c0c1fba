import assert from "node:assert/strict";
import type { Entry, HardState, LogIndex, PersistedState, Ready, Snapshot } from "../../src/raft/index.js";
import { NO_NODE } from "../../src/raft/index.js";

/**
 * MemoryStorage is what survives a simulated crash: exactly what the host wrote with save() and
 * compact(). Anything a node held only in memory is gone after a crash. It keeps what the LevelDB
 * LogStore (src/storage/log-store.ts) keeps after the same writes, and refuses what that store
 * refuses with an assertion, so a core that breaks the storage contract fails in the simulator too
 * (memory-storage.test.ts compares the two).
 */
export class MemoryStorage {
  hardState: HardState = { term: 0, vote: NO_NODE, commit: 0 };
  snapshot: Snapshot | undefined;
  /** entries are the stored entries after the snapshot, without gaps. */
  entries: Entry[] = [];

  constructor(initial?: PersistedState) {
    if (initial) {
      this.hardState = initial.hardState;
      this.snapshot = initial.snapshot;
      this.entries = [...initial.entries];
    }
  }

  private snapshotIndex(): LogIndex {
    return this.snapshot?.meta.index ?? 0;
  }

  private lastIndex(): LogIndex {
    return this.entries.at(-1)?.index ?? this.snapshotIndex();
  }

  /**
   * save writes one ready's durable part as one atomic batch. A snapshot from the leader replaces
   * the whole stored log, as the store's planInstall does: entries after its index may disagree
   * with it, so none survive but those that come with it.
   */
  save(rd: Pick<Ready, "hardState" | "entries" | "snapshot">): void {
    const first = rd.entries[0];
    if (rd.snapshot) {
      const idx = rd.snapshot.meta.index;
      assert(idx > this.snapshotIndex(), `snapshot at ${idx} is not newer than the stored one at ${this.snapshotIndex()}`);
      if (first) assert.equal(first.index, idx + 1, "entries must follow the installed snapshot");
      this.snapshot = rd.snapshot;
      this.entries = [...rd.entries];
    } else if (first) {
      assert(first.index > this.snapshotIndex(), `entry ${first.index} would overwrite the snapshot at ${this.snapshotIndex()}`);
      assert(first.index <= this.lastIndex() + 1, `entry ${first.index} leaves a gap after ${this.lastIndex()}`);
      this.entries = this.entries.filter((e) => e.index < first.index);
      this.entries.push(...rd.entries);
    }
    if (rd.hardState) {
      assertHardStateFollows(this.hardState, rd.hardState, this.lastIndex());
      this.hardState = rd.hardState;
    }
  }

  /** compact records a local snapshot and drops the entries it covers (the store keeps none below it by default). */
  compact(snap: Snapshot): void {
    const { index, term } = snap.meta;
    assert(index > this.snapshotIndex(), `snapshot at ${index} is not newer than the stored one at ${this.snapshotIndex()}`);
    assert(index <= this.hardState.commit, `snapshot at ${index} is past commit ${this.hardState.commit}`);
    assert(index <= this.lastIndex(), `snapshot at ${index} is past the stored log`);
    assert.equal(this.entries.find((e) => e.index === index)?.term, term, `snapshot term ${term} disagrees with the entry at ${index}`);
    this.snapshot = snap;
    this.entries = this.entries.filter((e) => e.index > index);
  }

  /** load returns what a restarting node finds. */
  load(): PersistedState {
    return { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries] };
  }
}

/** assertHardStateFollows checks what the store checks: terms and commit never go down, one vote per term, commit within the log. */
function assertHardStateFollows(current: HardState, next: HardState, lastIndex: LogIndex): void {
  assert(next.term >= current.term, `term goes down from ${current.term} to ${next.term}`);
  assert(next.commit >= current.commit, `commit goes down from ${current.commit} to ${next.commit}`);
  if (next.term === current.term && current.vote !== NO_NODE) {
    assert.equal(next.vote, current.vote, `vote changes within term ${next.term}`);
  }
  assert(next.commit <= lastIndex, `commit ${next.commit} is past the last index ${lastIndex}`);
}
