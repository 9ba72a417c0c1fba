import type { Entry, HardState, PersistedState, Ready, Snapshot } from "../../src/raft/index.js";
import { NO_NODE } from "../../src/raft/index.js";

/**
 * MemoryStorage is what survives a simulated crash: exactly what the host wrote with save() and
 * compact(). Anything a node held only in memory is gone after a crash.
 */
export class MemoryStorage {
  hardState: HardState = { term: 0, vote: NO_NODE, commit: 0 };
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];

  constructor(initial?: PersistedState) {
    if (initial) {
      this.hardState = initial.hardState;
      this.snapshot = initial.snapshot;
      this.entries = [...initial.entries];
    }
  }

  /** save writes one ready's durable part as one atomic batch. */
  save(rd: Pick<Ready, "hardState" | "entries" | "snapshot">): void {
    if (rd.snapshot) {
      this.snapshot = rd.snapshot;
      const idx = rd.snapshot.meta.index;
      this.entries = this.entries.filter((e) => e.index > idx);
      const first = this.entries[0];
      if (first && first.index !== idx + 1) this.entries = [];
    }
    const first = rd.entries[0];
    if (first) {
      this.entries = this.entries.filter((e) => e.index < first.index);
      this.entries.push(...rd.entries);
    }
    if (rd.hardState) this.hardState = rd.hardState;
  }

  /** compact records a local snapshot and drops the entries it covers. */
  compact(snap: Snapshot): void {
    this.snapshot = snap;
    this.entries = this.entries.filter((e) => e.index > snap.meta.index);
  }

  /** load returns what a restarting node finds. */
  load(): PersistedState {
    return { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries] };
  }
}
