/**
 * Cluster time: the registry's replicated clock, in ms. It is what every command is stamped with
 * (`at`) and all that decides session expiry and reaping; wall clocks decide nothing.
 *
 * - It advances only by a leader's monotonic clock: a leader stamps base + (mono - monoAtBase),
 *   where base is the cluster time it found applied once it had applied every entry of earlier
 *   terms (its first entry of its own term is applied). So between two stamps it never advances
 *   more than the real time between them, whatever any wall clock says.
 * - It never goes backwards: apply takes max(clusterTime, at), and a leader never stamps below the
 *   applied cluster time.
 * - A new leader does not know how long the cluster was without a leader, nor how long ago its
 *   predecessor stamped the last entry, so it does not count that time: until its first entry is
 *   applied it stamps the applied cluster time (time pauses), and then counts from there. Pausing
 *   only delays expiry and reaping, never brings them forward; an idle spell before a leader
 *   change is likewise not counted.
 *
 * A new cluster's time starts at 0. Clusters whose logs were stamped with wall time (before
 * cluster time) carry on from the largest of those stamps.
 */

/** ClusterTimeSource is what the stamper reads from the applied registry. */
export interface ClusterTimeSource {
  /** clusterTime is the applied cluster time: the largest stamp applied so far. */
  readonly clusterTime: number;
  /** appliedTerm is the term of the last entry applied (0 after a restore until the next entry). */
  readonly appliedTerm: number;
}

/** ClusterClockOptions wire the stamper to the node. */
export interface ClusterClockOptions {
  readonly source: ClusterTimeSource;
  /** monoMs is this node's monotonic clock in ms (performance.now in the agent; a fake in tests). */
  readonly monoMs: () => number;
}

/** ClusterClock stamps this node's proposals with cluster time while it leads. */
export class ClusterClock {
  /** base is the cluster time learned for `term` and the monotonic time it was learned at. */
  private base: { readonly term: number; readonly clusterMs: number; readonly monoMs: number } | undefined;

  constructor(private readonly opts: ClusterClockOptions) {}

  /**
   * now is the cluster time to stamp a proposal of `term` (this node's current term) with. Before
   * an entry of `term` is applied it is the applied cluster time (paused); after, it counts on
   * from the cluster time applied at that moment by this node's monotonic clock.
   */
  now(term: number): number {
    const { source, monoMs } = this.opts;
    const applied = source.clusterTime;
    if (source.appliedTerm < term) return applied;
    if (this.base?.term !== term) this.base = { term, clusterMs: applied, monoMs: monoMs() };
    // Within a term only this leader's stamps commit, so applied never passes the count; the max
    // keeps "never below applied" true even if it did.
    return Math.max(applied, this.base.clusterMs + Math.max(0, monoMs() - this.base.monoMs));
  }
}
