import { Inflights } from "./inflights.js";
import type { LogIndex } from "./types.js";

/** ProgressState is how the leader currently replicates to one follower. */
export const ProgressState = {
  /** Probe sends one append at a time until the follower's match is found. */
  Probe: "probe",
  /** Replicate streams appends optimistically, within the inflight window. */
  Replicate: "replicate",
  /** Snapshot waits for a snapshot to be installed. */
  Snapshot: "snapshot",
} as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

/**
 * Progress is the leader's view of one follower.
 * Invariant: 0 <= match < next.
 */
export class Progress {
  match: LogIndex = 0;
  next: LogIndex;
  state: ProgressState = ProgressState.Probe;
  /** probeSent pauses a probing follower until it answers, so probes do not pile up. */
  probeSent = false;
  /** pendingSnapshot is the index of the snapshot being sent, in Snapshot state. */
  pendingSnapshot: LogIndex = 0;
  /** snapshotTicks counts ticks in Snapshot state, to retry a snapshot that was lost. */
  snapshotTicks = 0;
  /** recentActive is set by any response and cleared by each check-quorum round. */
  recentActive = false;
  /** activeLastRound is recentActive as the last check-quorum round found it, so "heard lately" never blinks off at a round. */
  activeLastRound = false;
  readonly inflights: Inflights;

  constructor(
    next: LogIndex,
    public isLearner: boolean,
    inflightCountMax: number,
    inflightBytesMax: number,
  ) {
    this.next = Math.max(next, 1);
    this.inflights = new Inflights(inflightCountMax, inflightBytesMax);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
    this.state = state;
    this.inflights.reset();
  }

  /** becomeProbe starts probing after match (or after the snapshot that was being sent). */
  becomeProbe(): void {
    const after = this.state === ProgressState.Snapshot ? Math.max(this.match, this.pendingSnapshot) : this.match;
    this.resetState(ProgressState.Probe);
    this.next = after + 1;
  }

  /** becomeReplicate starts streaming right after match. */
  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  /** becomeSnapshot waits for the snapshot at index to be installed. */
  becomeSnapshot(index: LogIndex): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = index;
  }

  /** maybeUpdate records an acknowledgement up to index; it returns false when it was stale. */
  maybeUpdate(index: LogIndex): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * maybeDecrTo handles a rejection of the append after `rejected`; hint is the follower's guess at
   * the last index where the logs may match. It returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: LogIndex, hint: LogIndex): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** sentEntries records an append whose last entry is lastIndex (when it carried entries). */
  sentEntries(count: number, lastIndex: LogIndex, bytes: number): void {
    if (this.state === ProgressState.Replicate) {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === ProgressState.Probe) {
      this.probeSent = true;
    }
  }

  /** isPaused says whether the leader must not send this follower another append now. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      default:
        return true;
    }
  }
}
