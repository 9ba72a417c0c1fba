/**
 * results.json and the console summary: the run's settings, statistics and verdicts, and the
 * exit status (0 all valid, 1 any invalid, 2 any unknown).
 */
import type { TermChange } from "./elections.js";
import type { HistoryEntry, NemesisRecord, OpRecord, PhaseRecord } from "./history.js";
import type { RunOptions } from "./options.js";
import { type Counts, type FaultInterval, faultIntervals, healToFirstWriteMs, type LatencySummary, latencies, longestUnavailable, opCounts, type Window } from "./stats.js";
import type { CheckerResult, Validity } from "../workloads/types.js";
import { combineValidity } from "../workloads/types.js";

/** RunResults is the content of results.json. */
export interface RunResults {
  readonly seed: number;
  readonly workload: string;
  readonly cluster: string;
  readonly options: RunOptions;
  readonly runDir: string;
  readonly durationMs: number;
  readonly valid: Validity;
  readonly verdicts: readonly CheckerResult[];
  readonly ops: Record<string, Counts>;
  readonly latency: Record<string, LatencySummary>;
  readonly healAt?: number;
  readonly healToFirstWriteMs?: number;
  readonly longestUnavailable: Window;
  readonly elections: number;
  readonly termsElapsed: number;
  readonly termChanges: readonly TermChange[];
  readonly faults: readonly FaultInterval[];
  readonly phases: readonly PhaseRecord[];
  readonly notes: readonly string[];
}

/** ResultInputs are what buildResults needs from a finished run. */
export interface ResultInputs {
  readonly options: RunOptions;
  readonly runDir: string;
  readonly entries: readonly HistoryEntry[];
  readonly verdicts: readonly CheckerResult[];
  readonly writeFs: readonly string[];
  readonly loadFrom: number;
  readonly loadTo: number;
  readonly durationMs: number;
  readonly elections: { elections: number; termsElapsed: number; changes: readonly TermChange[] };
  readonly notes: readonly string[];
}

/** buildResults computes results.json from a finished run (pure). */
export function buildResults(r: ResultInputs): RunResults {
  const ops = r.entries.filter((e): e is OpRecord => e.type === "op");
  const nemesis = r.entries.filter((e): e is NemesisRecord => e.type === "nemesis");
  const phases = r.entries.filter((e): e is PhaseRecord => e.type === "phase");
  const heal = nemesis.find((e) => e.f === "heal");
  const htfw = heal ? healToFirstWriteMs(ops, heal.time, r.writeFs) : undefined;
  return {
    seed: r.options.seed,
    workload: r.options.workload,
    cluster: r.options.cluster,
    options: r.options,
    runDir: r.runDir,
    durationMs: Math.round(r.durationMs),
    valid: combineValidity(r.verdicts.map((v) => v.valid)),
    verdicts: r.verdicts,
    ops: opCounts(ops),
    latency: latencies(ops),
    ...(heal ? { healAt: Math.round(heal.time) } : {}),
    ...(htfw !== undefined ? { healToFirstWriteMs: Math.round(htfw) } : {}),
    longestUnavailable: roundWindow(longestUnavailable(ops, r.loadFrom, r.loadTo)),
    elections: r.elections.elections,
    termsElapsed: r.elections.termsElapsed,
    termChanges: r.elections.changes,
    faults: faultIntervals(nemesis, r.loadTo),
    phases,
    notes: r.notes,
  };
}

function roundWindow(w: Window): Window {
  return { from: Math.round(w.from), to: Math.round(w.to), ms: Math.round(w.ms) };
}

/** exitStatus is 0 if every verdict is valid, 1 if any is invalid, 2 if any is unknown. */
export function exitStatus(valid: Validity): 0 | 1 | 2 {
  return valid === true ? 0 : valid === false ? 1 : 2;
}

const show = (v: Validity) => (v === true ? "VALID" : v === false ? "INVALID" : "UNKNOWN");

/** formatSummary renders the console summary (pure). */
export function formatSummary(res: RunResults): string {
  const lines: string[] = [];
  lines.push(`seed ${res.seed}   workload ${res.workload}   cluster ${res.cluster}   duration ${(res.durationMs / 1000).toFixed(1)} s`);
  lines.push(`run folder ${res.runDir}`);
  lines.push("operations (ok / fail / info):");
  for (const [f, c] of Object.entries(res.ops)) {
    const l = res.latency[f];
    const lat = l?.p50Ms !== undefined ? `   latency p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, max ${l.maxMs} ms` : "";
    lines.push(`  ${f.padEnd(10)} ${String(c.ok).padStart(6)} / ${String(c.fail).padStart(5)} / ${String(c.info).padStart(5)}${lat}`);
  }
  lines.push(`faults: ${res.faults.length} (${[...new Set(res.faults.map((f) => f.f))].join(", ") || "none"})`);
  lines.push(`elections seen: ${res.elections} (terms elapsed ${res.termsElapsed})`);
  lines.push(`heal -> first acknowledged write: ${res.healToFirstWriteMs === undefined ? "none" : `${res.healToFirstWriteMs} ms`}`);
  const w = res.longestUnavailable;
  lines.push(`longest unavailable window: ${w.ms} ms (from ${w.from} to ${w.to} ms)`);
  for (const n of res.notes) lines.push(`note: ${n}`);
  lines.push("verdicts:");
  for (const v of res.verdicts) {
    lines.push(`  ${show(v.valid).padEnd(8)} ${v.name}: ${v.summary}`);
    for (const a of v.anomalies.slice(0, 5)) {
      lines.push(`    - ${a.kind}: ${a.message.split("\n")[0]}`);
      for (const e of a.example.slice(0, 8)) lines.push(`        ${JSON.stringify(e)}`);
    }
    if (v.anomalies.length > 5) lines.push(`    ... ${v.anomalies.length - 5} more in results.json`);
  }
  lines.push(`RESULT: ${show(res.valid)}`);
  return lines.join("\n");
}
