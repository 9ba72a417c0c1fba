import { invariant } from "./errors.js";
import { ENTRY_OVERHEAD_BYTES } from "./limits.js";
import { type ConfState, type Entry, type LogIndex, SNAPSHOT_DATA_RELEASED, type Snapshot, type Term } from "./types.js";

/** entryBytes is the size an entry counts for in every byte limit. */
export function entryBytes(e: Entry): number {
  return e.data.length + ENTRY_OVERHEAD_BYTES;
}

/**
 * RaftLog is a node's whole log since its last snapshot, in memory. The host keeps a durable copy;
 * the core tells it what to write through Ready.entries and learns it is durable through advance().
 *
 * Invariant: entries[i].index === snapIndex + 1 + i.
 * Invariant: applied <= committed <= lastIndex(); snapIndex <= committed.
 * Invariant: stableIndex() <= lastIndex(); entries above stableIndex() are not yet durable.
 */
export class RaftLog {
  private snapIndex: LogIndex;
  private snapTerm: Term;
  private snapConf: ConfState;
  private entries: Entry[];
  /** committed is the highest index known to be committed. */
  committed: LogIndex;
  /** applied is the highest index handed to the state machine and acknowledged by advance(). */
  applied: LogIndex;
  /** unstableFrom is the lowest index that still has to be written; lastIndex()+1 when all is durable. */
  private unstableFrom: LogIndex;
  /**
   * snapshot is the newest snapshot this node holds, kept to send to followers that fell behind. Its
   * data is SNAPSHOT_DATA_RELEASED once the host took over keeping the bytes (releaseData).
   */
  snapshot: Snapshot | undefined;
  /** pendingSnapshot is a snapshot received from the leader that is not yet durable and installed. */
  pendingSnapshot: Snapshot | undefined;

  constructor(snapshot: Snapshot | undefined, entries: readonly Entry[], committed: LogIndex) {
    this.snapIndex = snapshot?.meta.index ?? 0;
    this.snapTerm = snapshot?.meta.term ?? 0;
    this.snapConf = snapshot?.meta.conf ?? { voters: [], learners: [] };
    this.snapshot = snapshot;
    this.entries = entries.filter((e) => e.index > this.snapIndex);
    this.entries.forEach((e, i) => {
      invariant(e.index === this.snapIndex + 1 + i, () => `log not contiguous at ${e.index}`);
    });
    this.committed = Math.max(committed, this.snapIndex);
    invariant(this.committed <= this.lastIndex(), () => `commit ${committed} beyond last index ${this.lastIndex()}`);
    this.applied = this.snapIndex;
    this.unstableFrom = this.lastIndex() + 1;
  }

  /** firstIndex is the first index held as an entry (snapshot index + 1). */
  firstIndex(): LogIndex {
    return this.snapIndex + 1;
  }

  /** lastIndex is the index of the last entry, or the snapshot index when there is none. */
  lastIndex(): LogIndex {
    return this.snapIndex + this.entries.length;
  }

  /** lastTerm is the term of the last entry. */
  lastTerm(): Term {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** stableIndex is the last index known to be durable. */
  stableIndex(): LogIndex {
    return this.unstableFrom - 1;
  }

  /** snapshotConf is the configuration at the snapshot index (empty for a log that starts at 1). */
  snapshotConf(): ConfState {
    return this.snapConf;
  }

  /** snapshotIndex is the index the log was last compacted to. */
  snapshotIndex(): LogIndex {
    return this.snapIndex;
  }

  /** term returns the term at index i, or undefined when i is compacted away or past the end. */
  term(i: LogIndex): Term | undefined {
    if (i === this.snapIndex) return this.snapTerm;
    if (i < this.snapIndex || i > this.lastIndex()) return undefined;
    return this.entries[i - this.snapIndex - 1]?.term;
  }

  /** entry returns the entry at index i, if held. */
  entry(i: LogIndex): Entry | undefined {
    if (i <= this.snapIndex) return undefined;
    return this.entries[i - this.snapIndex - 1];
  }

  /** matchTerm says whether the entry at i has term t. */
  matchTerm(i: LogIndex, t: Term): boolean {
    return this.term(i) === t;
  }

  /** isUpToDate says whether a log ending at (index, term) is at least as up to date as this one (Raft §5.4.1). */
  isUpToDate(index: LogIndex, term: Term): boolean {
    const lastTerm = this.lastTerm();
    return term > lastTerm || (term === lastTerm && index >= this.lastIndex());
  }

  /**
   * findConflictByTerm returns the largest index j <= index whose term is <= term, so a leader can
   * skip a whole term of mismatching entries per round trip instead of one entry.
   */
  findConflictByTerm(index: LogIndex, term: Term): LogIndex {
    let j = Math.min(index, this.lastIndex());
    while (j > this.snapIndex) {
      const t = this.term(j);
      if (t === undefined || t <= term) break;
      j--;
    }
    return j;
  }

  /**
   * maybeAppend appends entries that follow (prevIndex, prevTerm) when the log matches there, and
   * returns the index of the last entry this append verified; undefined when the log does not match.
   */
  maybeAppend(prevIndex: LogIndex, prevTerm: Term, entries: readonly Entry[]): LogIndex | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      invariant(conflict > this.committed, () => `conflict at ${conflict} inside committed prefix ${this.committed}`);
      const first = entries[0];
      invariant(first !== undefined, "conflict with no entries");
      this.append(entries.slice(conflict - first.index));
    }
    return lastNew;
  }

  /** findConflict returns the index of the first entry that is new or differs in term, or 0. */
  private findConflict(entries: readonly Entry[]): LogIndex {
    for (const e of entries) {
      if (e.index <= this.snapIndex) continue;
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /** append truncates the log after entries[0].index - 1 and appends entries. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    invariant(first.index > this.committed, () => `append at ${first.index} would rewrite committed ${this.committed}`);
    invariant(first.index <= this.lastIndex() + 1, () => `append at ${first.index} leaves a gap after ${this.lastIndex()}`);
    this.entries.length = first.index - this.snapIndex - 1;
    for (const e of entries) this.entries.push(e);
    this.unstableFrom = Math.min(this.unstableFrom, first.index);
  }

  /** commitTo raises the commit index; it never lowers it. */
  commitTo(index: LogIndex): void {
    if (index <= this.committed) return;
    invariant(index <= this.lastIndex(), () => `commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** slice returns entries in [lo, hi), at most maxBytes of them but always at least one. */
  slice(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    invariant(lo > this.snapIndex, () => `slice from ${lo} is compacted (snapshot ${this.snapIndex})`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi && i <= this.lastIndex(); i++) {
      const e = this.entry(i);
      invariant(e !== undefined, () => `missing entry ${i}`);
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** hasUnstable says whether some entries still have to be written. */
  hasUnstable(): boolean {
    return this.unstableFrom <= this.lastIndex();
  }

  /** unstableEntries returns the entries that still have to be written. */
  unstableEntries(): Entry[] {
    if (this.unstableFrom > this.lastIndex()) return [];
    return this.entries.slice(this.unstableFrom - this.snapIndex - 1);
  }

  /** stableTo records that entries up to (index, term) are durable, unless they were overwritten since. */
  stableTo(index: LogIndex, term: Term): void {
    if (this.term(index) === term && index >= this.unstableFrom) this.unstableFrom = index + 1;
  }

  /** nextCommittedEntries returns the committed entries not yet applied, up to maxBytes (at least one). */
  nextCommittedEntries(maxBytes: number): Entry[] {
    if (this.pendingSnapshot) return [];
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (lo > this.committed) return [];
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  /** appliedTo records that entries up to index were applied. */
  appliedTo(index: LogIndex): void {
    if (index <= this.applied) return;
    invariant(index <= this.committed, () => `applied ${index} beyond commit ${this.committed}`);
    this.applied = index;
  }

  /** restore replaces the whole log with a snapshot received from the leader. */
  restore(snapshot: Snapshot): void {
    this.snapIndex = snapshot.meta.index;
    this.snapTerm = snapshot.meta.term;
    this.snapConf = snapshot.meta.conf;
    this.entries = [];
    this.committed = snapshot.meta.index;
    this.applied = snapshot.meta.index;
    this.unstableFrom = snapshot.meta.index + 1;
    this.snapshot = snapshot;
    this.pendingSnapshot = snapshot;
  }

  /**
   * releaseData drops the bytes of the snapshot at index, which the host keeps durably from now on;
   * only the metadata stays. Not while that snapshot is pending: the host has yet to install it.
   * Returns whether it released them.
   */
  releaseData(index: LogIndex): boolean {
    const snap = this.snapshot;
    if (snap === undefined || snap.meta.index !== index || snap.data === SNAPSHOT_DATA_RELEASED || this.pendingSnapshot === snap) return false;
    this.snapshot = { meta: snap.meta, data: SNAPSHOT_DATA_RELEASED };
    return true;
  }

  /** stableSnapTo records that the pending snapshot at index is durable and installed. */
  stableSnapTo(index: LogIndex): void {
    if (this.pendingSnapshot?.meta.index === index) this.pendingSnapshot = undefined;
  }

  /**
   * compact records a snapshot the host took at an applied index and drops entries up to
   * snapshot.index - keepEntries (kept so that followers slightly behind need no snapshot).
   */
  compact(snapshot: Snapshot, keepEntries: number, confAt: (index: LogIndex) => ConfState): void {
    const index = snapshot.meta.index;
    invariant(index <= this.applied, () => `snapshot ${index} beyond applied ${this.applied}`);
    invariant(this.term(index) === snapshot.meta.term, () => `snapshot term mismatch at ${index}`);
    this.snapshot = snapshot;
    const cut = Math.max(this.snapIndex, Math.min(index - keepEntries, this.stableIndex()));
    if (cut <= this.snapIndex) return;
    const cutTerm = this.term(cut);
    invariant(cutTerm !== undefined, () => `no term at compaction point ${cut}`);
    this.snapConf = confAt(cut);
    this.entries = this.entries.slice(cut - this.snapIndex);
    this.snapIndex = cut;
    this.snapTerm = cutTerm;
  }
}
