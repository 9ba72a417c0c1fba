/**
 * Summary statistics of a history, all pure: operation counts by type and outcome, latency
 * quantiles, throughput per second, time from the heal to the first acknowledged write, and the
 * longest window in which no operation succeeded.
 */
import type { OpStatus } from "../checker/history.js";
import type { NemesisRecord, OpRecord } from "./history.js";

/** Counts are operations by outcome. */
export type Counts = Record<OpStatus, number>;

/** opCounts counts operations by f and outcome, f in first-seen order. */
export function opCounts(ops: readonly OpRecord[]): Record<string, Counts> {
  const out: Record<string, Counts> = {};
  for (const op of ops) {
    const c = (out[op.f] ??= { ok: 0, fail: 0, info: 0 });
    c[op.status]++;
  }
  return out;
}

/** quantile is the q-quantile (nearest rank) of sorted values; undefined when empty. */
export function quantile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

/** LatencySummary is the latency of ok operations of one f, in ms. */
export interface LatencySummary {
  readonly count: number;
  readonly p50Ms?: number;
  readonly p95Ms?: number;
  readonly p99Ms?: number;
  readonly maxMs?: number;
}

/** latencies summarizes the latency of ok operations by f. */
export function latencies(ops: readonly OpRecord[]): Record<string, LatencySummary> {
  const byF = new Map<string, number[]>();
  for (const op of ops) if (op.status === "ok") (byF.get(op.f) ?? byF.set(op.f, []).get(op.f))?.push(op.return - op.call);
  const out: Record<string, LatencySummary> = {};
  for (const [f, xs] of byF) {
    xs.sort((a, b) => a - b);
    const r = (v: number | undefined) => (v === undefined ? undefined : Math.round(v * 10) / 10);
    out[f] = { count: xs.length, p50Ms: r(quantile(xs, 0.5)), p95Ms: r(quantile(xs, 0.95)), p99Ms: r(quantile(xs, 0.99)), maxMs: r(xs[xs.length - 1]) };
  }
  return out;
}

/**
 * healToFirstWriteMs is the time from `healAt` to the first acknowledgement of a write invoked at
 * or after it (a write invoked before the heal may have committed before it, so it proves
 * nothing about recovery); undefined if none.
 */
export function healToFirstWriteMs(ops: readonly OpRecord[], healAt: number, writeFs: readonly string[]): number | undefined {
  let best: number | undefined;
  for (const op of ops) {
    if (op.status !== "ok" || !writeFs.includes(op.f) || op.call < healAt) continue;
    if (best === undefined || op.return < best) best = op.return;
  }
  return best === undefined ? undefined : best - healAt;
}

/** Window is an interval of run time. */
export interface Window {
  readonly from: number;
  readonly to: number;
  readonly ms: number;
}

/**
 * longestUnavailable is the longest interval inside [from, to] in which no operation of the given
 * kinds (all when undefined) completed ok: the gaps between consecutive ok returns, and the edges.
 */
export function longestUnavailable(ops: readonly OpRecord[], from: number, to: number, fs?: readonly string[]): Window {
  const times = ops
    .filter((o) => o.status === "ok" && (fs === undefined || fs.includes(o.f)) && o.return >= from && o.return <= to)
    .map((o) => o.return)
    .sort((a, b) => a - b);
  let best: Window = { from, to, ms: to - from };
  if (times.length === 0) return best;
  best = { from, to: times[0] as number, ms: (times[0] as number) - from };
  const points = [...times, to];
  for (let i = 1; i < points.length; i++) {
    const gap = (points[i] as number) - (points[i - 1] as number);
    if (gap > best.ms) best = { from: points[i - 1] as number, to: points[i] as number, ms: gap };
  }
  return best;
}

/** ThroughputBucket counts completions by outcome in one bucket of run time. */
export interface ThroughputBucket {
  readonly t: number;
  readonly ok: number;
  readonly fail: number;
  readonly info: number;
}

/** throughput buckets completions (by return time) into bucketMs-wide buckets from 0 to endAt. */
export function throughput(ops: readonly OpRecord[], endAt: number, bucketMs: number): ThroughputBucket[] {
  const n = Math.max(1, Math.ceil(endAt / bucketMs));
  const out = Array.from({ length: n }, (_, i) => ({ t: i * bucketMs, ok: 0, fail: 0, info: 0 }));
  for (const op of ops) {
    if (!Number.isFinite(op.return)) continue;
    const b = out[Math.min(n - 1, Math.max(0, Math.floor(op.return / bucketMs)))];
    if (b) b[op.status]++;
  }
  return out;
}

/** FaultInterval is one fault from its start to its stop (or the heal). */
export interface FaultInterval {
  readonly f: string;
  readonly value: unknown;
  readonly from: number;
  readonly to: number;
}

/** faultIntervals pairs nemesis starts with their stops; a fault never stopped ends at endAt. */
export function faultIntervals(events: readonly NemesisRecord[], endAt: number): FaultInterval[] {
  const out: FaultInterval[] = [];
  let open: NemesisRecord | undefined;
  for (const e of events) {
    if (e.phase === "start") {
      if (open) out.push({ f: open.f, value: open.value, from: open.time, to: e.time });
      open = e;
    } else if (open && (e.f === open.f || e.f === "heal")) {
      out.push({ f: open.f, value: open.value, from: open.time, to: e.time });
      open = undefined;
    }
  }
  if (open) out.push({ f: open.f, value: open.value, from: open.time, to: endAt });
  return out;
}
