/**
 * The lease checker, on run time (marks timed by markTimes from their healthSince cluster time):
 *
 * - safety: no instance is marked critical at a time m with an acknowledged heartbeat h such that
 *   h returned before m and m < h.call + ttl (judged with a lower bound of m for the first and an
 *   upper bound for the second, so a flag is never a guess). The leader renewed the lease somewhere inside
 *   [h.call, h.return], so its deadline was at least h.call + ttl: marking it before then is a
 *   false expiry. This holds across leader changes too (a new leader must not expire a lease a
 *   deposed leader acknowledged moments before). slackMs absorbs clock conversion error.
 * - liveness: every instance whose heartbeats stopped (last attempt returned at r) is critical at
 *   the end, marked no later than r + ttl + boundMs; a fault overlapping that window moves the
 *   deadline to the fault's end + ttl + boundMs (a new leader starts every lease afresh). The mark
 *   judged is the one that left it critical, which may precede r when its last attempts failed.
 * - confirmation: no heartbeat sent to a node while it was cut off from a majority of the cluster
 *   is acknowledged. A heartbeat is acknowledged only once a quorum confirmed, after it arrived,
 *   that its leader still leads (a write needs a quorum too); a node on the minority side of a
 *   partition can get neither. A deposed leader that acknowledges anyway (the unconfirmed-lease-ack
 *   control) breaks the safety rule above only when its answer lands in the few hundred ms before
 *   it notices and a new leader's expiry follows within the TTL, which a 60 s run often misses;
 *   this rule sees every such answer.
 */
import type { OpStatus } from "../checker/history.js";
import type { Anomaly, CheckerResult } from "./types.js";

/** LeaseHeartbeat is one heartbeat attempt; node is the node it was sent to. */
export interface LeaseHeartbeat {
  readonly id: string;
  readonly status: OpStatus;
  readonly call: number;
  readonly return: number;
  readonly node?: string;
}

/** CutOff is a time during which a node certainly could not reach a majority of the cluster. */
export interface CutOff {
  readonly node: string;
  readonly from: number;
  readonly to: number;
}

/** HealthTransition is one observed health value of an instance (from the watch), in index order. */
export interface HealthTransition {
  readonly id: string;
  readonly index: number;
  readonly health: string;
  /** at is when the health last changed, in run time (markTimes: at or a little after it, never before). */
  readonly at: number;
  /**
   * notBefore is a time the change certainly came after (markLowerBounds); absent: `at`. The
   * safety check asks whether a heartbeat was acknowledged before the mark, which only a lower
   * bound can answer: with `at` alone, a heartbeat acknowledged between the real mark and a late
   * estimate of it would be taken for one the mark ignored.
   */
  readonly notBefore?: number;
}

/** StoppedInstance is an instance whose heartbeats stopped; lastReturn is when its last attempt ended. */
export interface StoppedInstance {
  readonly id: string;
  readonly lastReturn: number;
}

/** LeaseCheckInput is everything checkLease needs. */
export interface LeaseCheckInput {
  readonly ttlMs: number;
  readonly boundMs: number;
  readonly slackMs: number;
  readonly heartbeats: readonly LeaseHeartbeat[];
  readonly transitions: readonly HealthTransition[];
  readonly stopped: readonly StoppedInstance[];
  readonly faults: readonly { readonly from: number; readonly to: number }[];
  /** endAt is when the transitions were last known complete. */
  readonly endAt: number;
  /** cutOff are the windows in which a node could not reach a majority (cutOffWindows); none: not checked. */
  readonly cutOff?: readonly CutOff[];
}

const EXAMPLE_MAX = 6;

/** SeenHealth is one instance event as the watcher got it: receipt run time and the instance's healthSince (cluster time). */
export interface SeenHealth {
  readonly time: number;
  readonly clusterMs: number;
}

/**
 * markTimes turns healthSince (cluster time) into run time, for events in delivery order. Cluster
 * time runs at the leaders' monotonic rate, which is the run clock's (one host), and pauses across
 * leader changes, so offset = run time − cluster time at a stamp never decreases; each event's
 * receipt gives an upper bound on the offset at its stamp and at every earlier one (healthSince is
 * at most the cluster time of the entry that carried it). The least bound from an event on gives
 * a time at or after the real change and at or before its receipt: never early, so never a false
 * early expiry, and tight to the commit and delivery time of the next fresh stamp.
 */
export function markTimes(seen: readonly SeenHealth[]): number[] {
  const out = new Array<number>(seen.length);
  let offset = Number.POSITIVE_INFINITY;
  for (let i = seen.length - 1; i >= 0; i--) {
    const s = seen[i] as SeenHealth;
    offset = Math.min(offset, s.time - s.clusterMs);
    out[i] = s.clusterMs + offset;
  }
  return out;
}

/** SeenChange is one instance event in index order: its index and healthSince (cluster time). */
export interface SeenChange {
  readonly index: number;
  readonly clusterMs: number;
  /** fresh: the event changed the health, so healthSince is its own entry's cluster time. */
  readonly fresh: boolean;
}

/**
 * markLowerBounds gives each change a run time it certainly came after. An entry caused by a
 * heartbeat (its answer names the entry's index) was stamped after that heartbeat was called, so
 * at its stamp offset = run time − cluster time ≥ call − healthSince; the offset never decreases
 * (cluster time runs no faster than the run clock), so every later change k has run time ≥
 * clusterMs_k + the largest such bound before it. Changes before any known cause get −∞.
 */
export function markLowerBounds(seen: readonly SeenChange[], causeCalls: ReadonlyMap<number, number>): number[] {
  let offsetLow = Number.NEGATIVE_INFINITY;
  return seen.map((s) => {
    const call = causeCalls.get(s.index);
    if (call !== undefined && s.fresh) offsetLow = Math.max(offsetLow, call - s.clusterMs);
    return s.clusterMs + offsetLow;
  });
}

/** criticalMarks are the moments each instance became critical (a change of health to critical). */
export function criticalMarks(transitions: readonly HealthTransition[]): HealthTransition[] {
  const last = new Map<string, string>();
  const out: HealthTransition[] = [];
  for (const t of [...transitions].sort((a, b) => a.index - b.index)) {
    if (t.health === "critical" && last.get(t.id) !== "critical") out.push(t);
    last.set(t.id, t.health);
  }
  return out;
}

/** PartitionFault is a nemesis fault interval as faultIntervals gives it. */
export interface PartitionFault {
  readonly f: string;
  readonly value: unknown;
  readonly from: number;
  readonly to: number;
}

/**
 * cutOffWindows finds, for each symmetric partition whose groups divide the whole cluster, the
 * nodes of every group smaller than a majority, and the window in which they were certainly cut
 * off: from the fault's start (recorded once the cut was in place) for holdMinMs (the nemesis holds
 * a fault at least that long before it heals it). A fault that ended sooner (cut short by the end
 * of the load) gives none: its heal may have begun before its end was recorded. Other shapes
 * (one-way cuts, a bridge node in no group) give none, and neither does any fault of a run that
 * changed membership (a majority of which configuration?).
 */
export function cutOffWindows(faults: readonly PartitionFault[], nodes: readonly string[], holdMinMs: number): CutOff[] {
  if (faults.some((f) => f.f.startsWith("membership"))) return [];
  const out: CutOff[] = [];
  const majority = Math.floor(nodes.length / 2) + 1;
  for (const f of faults) {
    if (!f.f.startsWith("partition:") || f.to < f.from + holdMinMs || !Array.isArray(f.value)) continue;
    const groups = f.value as unknown[];
    if (!groups.every((g) => Array.isArray(g) && g.every((n) => typeof n === "string"))) continue;
    const members = (groups as string[][]).flat();
    // Disjoint groups that name every node exactly once (a list of one-way cuts names nodes twice).
    if (members.length !== nodes.length || new Set(members).size !== nodes.length || !nodes.every((n) => members.includes(n))) continue;
    for (const g of groups as string[][]) {
      if (g.length < majority) for (const node of g) out.push({ node, from: f.from, to: f.from + holdMinMs });
    }
  }
  return out;
}

/** livenessDeadline is r + ttl + bound, pushed past every fault that overlaps the window. */
export function livenessDeadline(lastReturn: number, ttlMs: number, boundMs: number, faults: LeaseCheckInput["faults"]): number {
  let deadline = lastReturn + ttlMs + boundMs;
  for (const f of [...faults].sort((a, b) => a.from - b.from)) {
    if (f.from < deadline && f.to > lastReturn) deadline = Math.max(deadline, f.to + ttlMs + boundMs);
  }
  return deadline;
}

/** checkLease: see the module comment (pure). */
export function checkLease(input: LeaseCheckInput): CheckerResult {
  const { ttlMs, boundMs, slackMs } = input;
  const anomalies: Anomaly[] = [];
  const marks = criticalMarks(input.transitions);
  const early: unknown[] = [];
  for (const m of marks) {
    // Flagged only when certain: acknowledged before the mark's earliest time, and the mark's
    // latest time still inside that heartbeat's TTL.
    const markedAfter = Math.min(m.notBefore ?? m.at, m.at);
    const renewed = input.heartbeats.filter((h) => h.id === m.id && h.status === "ok" && h.return + slackMs < markedAfter && m.at < h.call + ttlMs - slackMs);
    const h = renewed.sort((a, b) => b.call - a.call)[0];
    if (h) early.push({ id: m.id, markedAt: Math.round(m.at), markedAfter: Math.round(markedAfter), index: m.index, heartbeat: { call: Math.round(h.call), return: Math.round(h.return) }, leaseAtLeastUntil: Math.round(h.call + ttlMs), earlyByMs: Math.round(h.call + ttlMs - m.at) });
  }
  if (early.length > 0) anomalies.push({ kind: "critical-while-renewed", message: `${early.length} instances marked critical before the TTL of an acknowledged heartbeat ran out`, example: early.slice(0, EXAMPLE_MAX) });

  const unconfirmed: unknown[] = [];
  for (const h of input.heartbeats) {
    if (h.status !== "ok" || h.node === undefined) continue;
    const w = input.cutOff?.find((c) => c.node === h.node && h.call > c.from && h.return < c.to);
    if (w) unconfirmed.push({ id: h.id, node: h.node, heartbeat: { call: Math.round(h.call), return: Math.round(h.return) }, cutOff: { from: Math.round(w.from), to: Math.round(w.to) }, afterCutMs: Math.round(h.call - w.from) });
  }
  if (unconfirmed.length > 0) anomalies.push({ kind: "acknowledged-while-cut-off", message: `${unconfirmed.length} heartbeats acknowledged by a node cut off from a majority (no quorum could confirm them)`, example: unconfirmed.slice(0, EXAMPLE_MAX) });

  const notMarked: unknown[] = [];
  const late: unknown[] = [];
  let undecided = 0;
  const finalHealth = new Map<string, HealthTransition>();
  for (const t of [...input.transitions].sort((a, b) => a.index - b.index)) finalHealth.set(t.id, t);
  for (const s of input.stopped) {
    const deadline = livenessDeadline(s.lastReturn, ttlMs, boundMs, input.faults);
    const final = finalHealth.get(s.id);
    // The mark that left it critical is its last one (marks are in index order). It may come before
    // the last attempt: an instance cut off with its node is marked while its heartbeats fail, and
    // stays critical through every later failed attempt.
    const mark = marks.filter((m) => m.id === s.id).at(-1);
    if (final?.health === "critical" && mark) {
      if (mark.at > deadline + slackMs) late.push({ id: s.id, lastHeartbeatReturn: Math.round(s.lastReturn), markedAt: Math.round(mark.at), deadline: Math.round(deadline), lateByMs: Math.round(mark.at - deadline) });
    } else if (input.endAt < deadline) undecided++;
    else notMarked.push({ id: s.id, lastHeartbeatReturn: Math.round(s.lastReturn), deadline: Math.round(deadline), finalHealth: final?.health ?? "unknown" });
  }
  if (notMarked.length > 0) anomalies.push({ kind: "never-marked", message: `${notMarked.length} instances with stopped heartbeats were not critical by their deadline`, example: notMarked.slice(0, EXAMPLE_MAX) });
  if (late.length > 0) anomalies.push({ kind: "marked-late", message: `${late.length} instances marked critical after TTL + ${boundMs} ms`, example: late.slice(0, EXAMPLE_MAX) });
  const stats = { ttlMs, boundMs, heartbeats: input.heartbeats.length, acked: input.heartbeats.filter((h) => h.status === "ok").length, criticalMarks: marks.length, stopped: input.stopped.length, undecided, cutOffWindows: input.cutOff?.length ?? 0, sentWhileCutOff: input.heartbeats.filter((h) => h.node !== undefined && input.cutOff?.some((c) => c.node === h.node && h.call > c.from && h.return < c.to)).length };
  const valid = anomalies.length > 0 ? false : undecided > 0 ? "unknown" : true;
  const summary =
    valid === false
      ? anomalies.map((a) => a.message).join("; ")
      : `${marks.length} critical marks, none while renewed; ${input.stopped.length - undecided} of ${input.stopped.length} stopped instances marked within TTL + ${boundMs} ms${input.cutOff ? `; none of ${stats.sentWhileCutOff} heartbeats sent to a cut-off node acknowledged` : ""}`;
  return { name: "lease", valid, summary, anomalies, stats };
}
