/**
 * The master checker, on one clock (the host's monotonic clock converted to run time):
 *
 * - no two masters: no two instances' master intervals overlap. An interval runs from the
 *   instance's promoted event to its demotion, cut at the lease deadline it held then (past that
 *   deadline the session refuses to act, even if its demotion timer ran late).
 * - one master per epoch: every observer (the watchers' `master` events and the instances' own
 *   heartbeat answers) names the same master for an epoch; an instance told "standby" at an epoch
 *   another observer says it is master of is a disagreement too, when it was acting as master of
 *   that epoch as it sent the heartbeat. An instance not acting as master then (one that lost
 *   its lease, or a newly chosen one) may be told "standby" at its own epoch by design: the
 *   lease driver's handover fence answers "not yet" that way until the previous master's
 *   acknowledged lease, or one TTL after a new leader's election, has run out.
 * - epochs never go backwards in any observer's view: a watcher's events in delivery order, an
 *   instance's answers in real-time order (an answer received before another heartbeat was sent).
 * - no stale write, judged on the backends' own record of what they accepted and the epoch the
 *   balancing endpoint sent with it (x-raftmesh-epoch): each accepted write carried the endpoint's
 *   epoch, equal to the epoch the instance was master of; the observers name that instance as the
 *   master of that epoch; it was accepted inside one of the instance's master intervals of that
 *   epoch, and not after a newer epoch's master was already acting.
 */
import type { Anomaly, CheckerResult, Validity } from "./types.js";

/** MasterInterval is a span in which one instance acted as master of one epoch; `to` is +inf while open. */
export interface MasterInterval {
  readonly id: string;
  readonly epoch: number;
  readonly from: number;
  readonly to: number;
}

/** MasterEvent is a watcher's `master` event: master "" is no master. */
export interface MasterEvent {
  readonly observer: string;
  readonly time: number;
  readonly epoch: number;
  readonly master: string;
}

/** RoleAnswer is one heartbeat answer an instance received: sent at sentAt, received at time. */
export interface RoleAnswer {
  readonly id: string;
  readonly sentAt: number;
  readonly time: number;
  readonly role: string;
  readonly epoch: number;
}

/** AcceptedWrite is a write an instance accepted at time as master of epoch; headerEpoch is the x-raftmesh-epoch it carried (null: none). */
export interface AcceptedWrite {
  readonly id: string;
  readonly epoch: number;
  readonly headerEpoch: number | null;
  readonly time: number;
}

/** MasterCheckInput is everything checkMaster needs. */
export interface MasterCheckInput {
  readonly intervals: readonly MasterInterval[];
  readonly events: readonly MasterEvent[];
  readonly answers: readonly RoleAnswer[];
  readonly writes: readonly AcceptedWrite[];
}

const EXAMPLE_MAX = 6;

/** overlaps lists every pair of intervals of different instances that overlap. */
export function overlaps(intervals: readonly MasterInterval[]): [MasterInterval, MasterInterval][] {
  const sorted = [...intervals].sort((a, b) => a.from - b.from);
  const out: [MasterInterval, MasterInterval][] = [];
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i] as MasterInterval;
    for (let j = i + 1; j < sorted.length; j++) {
      const b = sorted[j] as MasterInterval;
      if (b.from >= a.to) continue;
      if (a.id !== b.id) out.push([a, b]);
    }
  }
  return out;
}

/** mastersByEpoch collects, per epoch, every master name observers gave (no-master as ""). */
function mastersByEpoch(input: MasterCheckInput): Map<number, Set<string>> {
  const named = new Map<number, Set<string>>();
  const add = (epoch: number, master: string) => {
    if (epoch <= 0) return;
    const set = named.get(epoch) ?? new Set<string>();
    set.add(master);
    named.set(epoch, set);
  };
  for (const e of input.events) add(e.epoch, e.master);
  for (const a of input.answers) if (a.role === "master") add(a.epoch, a.id);
  for (const i of input.intervals) add(i.epoch, i.id);
  return named;
}

function backwards(input: MasterCheckInput): unknown[] {
  const out: unknown[] = [];
  const byObserver = new Map<string, MasterEvent[]>();
  for (const e of input.events) byObserver.set(e.observer, [...(byObserver.get(e.observer) ?? []), e]);
  for (const [observer, evs] of byObserver) {
    for (let i = 1; i < evs.length; i++) {
      const [p, c] = [evs[i - 1] as MasterEvent, evs[i] as MasterEvent];
      if (c.epoch < p.epoch) out.push({ observer, before: p, after: c });
    }
  }
  const byId = new Map<string, RoleAnswer[]>();
  for (const a of input.answers) byId.set(a.id, [...(byId.get(a.id) ?? []), a]);
  for (const [id, as] of byId) {
    // b came after a in real time when a was received before b was sent.
    let best: RoleAnswer | undefined;
    const byReturn = [...as].sort((x, y) => x.time - y.time);
    let k = 0;
    for (const b of [...as].sort((x, y) => x.sentAt - y.sentAt)) {
      while (k < byReturn.length && (byReturn[k] as RoleAnswer).time < b.sentAt) {
        const a = byReturn[k] as RoleAnswer;
        if (!best || a.epoch > best.epoch) best = a;
        k++;
      }
      if (best && b.epoch < best.epoch) out.push({ observer: id, before: best, after: b });
    }
  }
  return out;
}

/** checkMaster: see the module comment (pure). */
export function checkMaster(input: MasterCheckInput): CheckerResult {
  const anomalies: Anomaly[] = [];
  const two = overlaps(input.intervals);
  if (two.length > 0) {
    const ex = two.slice(0, EXAMPLE_MAX).map(([a, b]) => ({ a, b, overlapMs: Math.round(Math.min(a.to, b.to) - b.from) }));
    anomalies.push({ kind: "two-masters", message: `${two.length} pairs of master intervals overlap`, example: ex });
  }
  const named = mastersByEpoch(input);
  const disagree: unknown[] = [];
  for (const [epoch, set] of named) if (set.size > 1) disagree.push({ epoch, masters: [...set].sort() });
  const acting = (id: string, epoch: number, t: number) => input.intervals.some((i) => i.id === id && i.epoch === epoch && i.from <= t && t < i.to);
  for (const a of input.answers) {
    if (a.role === "standby" && named.get(a.epoch)?.has(a.id) && acting(a.id, a.epoch, a.sentAt)) disagree.push({ epoch: a.epoch, toldStandby: a.id, at: Math.round(a.time) });
  }
  if (disagree.length > 0) anomalies.push({ kind: "masters-disagree", message: `${disagree.length} epochs with more than one master named`, example: disagree.slice(0, EXAMPLE_MAX) });
  const back = backwards(input);
  if (back.length > 0) anomalies.push({ kind: "epoch-went-back", message: `${back.length} times an observer saw an older epoch after a newer one`, example: back.slice(0, EXAMPLE_MAX) });
  const stale = staleWrites(input, named);
  if (stale.length > 0) anomalies.push({ kind: "stale-write", message: `${stale.length} writes accepted outside the writer's mastery of their epoch`, example: stale.slice(0, EXAMPLE_MAX) });
  const epochs = new Set(input.intervals.map((i) => i.epoch));
  const stats = { intervals: input.intervals.length, epochs: epochs.size, masters: new Set(input.intervals.map((i) => i.id)).size, watchEvents: input.events.length, answers: input.answers.length, writes: input.writes.length };
  // A run in which nobody was ever master tested nothing.
  const valid: Validity = anomalies.length > 0 ? false : input.intervals.length === 0 ? "unknown" : true;
  const summary =
    valid === false
      ? anomalies.map((a) => a.message).join("; ")
      : `${input.intervals.length} master intervals over ${epochs.size} epochs, none overlapping; ${input.writes.length} writes, none stale${valid === "unknown" ? " (no instance was ever master)" : ""}`;
  return { name: "master", valid, summary, anomalies, stats };
}

function staleWrites(input: MasterCheckInput, named: ReadonlyMap<number, ReadonlySet<string>>): unknown[] {
  const out: unknown[] = [];
  for (const w of input.writes) {
    // The fencing token is the epoch the endpoint sent; a write without one was not fenced at all.
    if (w.headerEpoch === null) {
      out.push({ write: w, why: "accepted without the endpoint's epoch" });
      continue;
    }
    const e = w.headerEpoch;
    if (e !== w.epoch) {
      out.push({ write: w, why: "accepted for another epoch than the endpoint sent" });
      continue;
    }
    const masters = named.get(e);
    const inside = input.intervals.some((i) => i.id === w.id && i.epoch === e && i.from <= w.time && w.time <= i.to);
    const newer = input.intervals.find((i) => i.epoch > e && i.from < w.time);
    if (!masters?.has(w.id) || masters.size > 1) out.push({ write: w, why: "not the master of its epoch", masters: [...(masters ?? [])] });
    else if (!inside) out.push({ write: w, why: "outside the writer's master intervals" });
    else if (newer) out.push({ write: w, why: "a newer epoch's master was already acting", newer });
  }
  return out;
}
