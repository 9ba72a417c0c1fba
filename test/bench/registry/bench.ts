/**
 * npm run bench:registry: the registry's capacity figures on real 3-node clusters (agent processes,
 * fsync on), one fresh cluster per phase so no phase inherits another's state:
 *   reg   registrations/s through the leader at concurrency 1/16/64, next to KV puts of the same
 *         entry size (the baseline ratio);
 *   hb    sustained heartbeats for 10,000 instances (every TTL/3, via all three nodes), with every
 *         agent's CPU share and the leader's commit growth (renewals must not be log entries);
 *   mem   RSS of nodes holding 100,000 instances registered by 10,000 client sessions, plus 10,000
 *         KV keys, and a learner catching up through a snapshot;
 *   snap  snapshot() / restore() of a 100,000-instance RegistryStateMachine, in-process;
 *   watch fan-out latency of 200 writes to 1,000 watchers.
 *
 *   npm run bench:registry -- [--quick] [--only reg,hb,mem,snap,watch] [--json out.json]
 *     [--seconds 5] [--repeats 3] [--concurrency 1,16,64]
 *     [--hb-instances 10000] [--hb-ttl-ms 10000] [--hb-seconds 20]
 *     [--mem-instances 100000] [--mem-sessions 10000] [--mem-keys 10000] [--mem-concurrency 64] [--skip-learner]
 *     [--snap-instances 100000] [--snap-runs 5]
 *     [--watchers 1000] [--watch-channels 2] [--watch-writes 200] [--watch-gap-ms 50] [--tsx]
 *
 * Agents run from dist/ as deployed (the npm script builds first); --tsx runs them from the
 * sources through tsx instead (its loader adds ~55 MB of RSS to every agent). Agents log at warn;
 * BENCH_LOG_LEVEL=info (with KEEP_CLUSTER=1 to keep the logs) shows elections and snapshots.
 */
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { BenchCluster } from "./cluster.js";
import { type HeartbeatReport, runHeartbeatPhase } from "./phase-heartbeat.js";
import { type MemoryReport, runMemoryPhase } from "./phase-memory.js";
import { type RegisterReport, runRegisterPhase } from "./phase-register.js";
import { runSnapshotPhase, type SnapshotReport } from "./phase-snapshot.js";
import { runWatchPhase, type WatchReport } from "./phase-watch.js";
import { machineInfo, round2 } from "./procs.js";
import { printHeartbeat, printMemory, printRegister, printSnapshot, printWatch } from "./report.js";

const PHASES = ["snap", "reg", "hb", "mem", "watch"] as const;
type Phase = (typeof PHASES)[number];

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    json: { type: "string" },
    seconds: { type: "string" },
    repeats: { type: "string" },
    concurrency: { type: "string" },
    "hb-instances": { type: "string" },
    "hb-ttl-ms": { type: "string" },
    "hb-seconds": { type: "string" },
    "mem-instances": { type: "string" },
    "mem-concurrency": { type: "string" },
    "mem-sessions": { type: "string" },
    "mem-keys": { type: "string" },
    "skip-learner": { type: "boolean", default: false },
    "snap-instances": { type: "string" },
    "snap-runs": { type: "string" },
    watchers: { type: "string" },
    "watch-channels": { type: "string" },
    "watch-writes": { type: "string" },
    "watch-gap-ms": { type: "string" },
    tsx: { type: "boolean", default: false },
  },
  strict: true,
});

/** num reads a numeric flag: its value if given, else the quick or the full default; it must be a positive number. */
function num(name: keyof typeof values, full: number, quick: number): number {
  const raw = values[name];
  const x = typeof raw === "string" ? Number(raw) : values.quick ? quick : full;
  if (!(x > 0) || !Number.isFinite(x)) throw new Error(`--${name} must be a positive number, got ${raw}`);
  return x;
}

const settings = {
  quick: values.quick,
  agents: values.tsx ? "tsx" : "compiled",
  register: {
    durationMs: num("seconds", 5, 2) * 1000,
    repeats: num("repeats", 3, 1),
    concurrencies: (values.concurrency ?? "1,16,64").split(",").map(Number),
  },
  heartbeat: { instances: num("hb-instances", 10_000, 2_000), ttlMs: num("hb-ttl-ms", 10_000, 10_000), durationMs: num("hb-seconds", 20, 6) * 1000 },
  memory: {
    instances: num("mem-instances", 100_000, 10_000),
    sessions: num("mem-sessions", 10_000, 1_000),
    keys: num("mem-keys", 10_000, 1_000),
    concurrency: num("mem-concurrency", 64, 64),
    learner: !values["skip-learner"],
  },
  snapshot: { instances: num("snap-instances", 100_000, 10_000), runs: num("snap-runs", 5, 3) },
  watch: { watchers: num("watchers", 1_000, 100), channelsPerNode: num("watch-channels", 2, 2), writes: num("watch-writes", 200, 40), gapMs: num("watch-gap-ms", 50, 50) },
};
if (settings.register.concurrencies.some((c) => !(c >= 1))) throw new Error("--concurrency: a comma-separated list of positive integers");
const only = new Set((values.only ?? PHASES.join(",")).split(","));
for (const p of only) if (!PHASES.includes(p as Phase)) throw new Error(`--only: unknown phase "${p}" (phases: ${PHASES.join(", ")})`);

const machine = machineInfo();
const log = (line: string) => console.log(line);
log(`${machine.cpu}, ${machine.cores} cores, ${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, node ${machine.node}, load average ${machine.loadavgAtStart.join(" ")} at start`);
log(`phases: ${PHASES.filter((p) => only.has(p)).join(", ")}${values.quick ? " (quick sizes)" : ""}\n`);

const report: {
  machine: typeof machine;
  settings: typeof settings;
  snapshot?: SnapshotReport;
  register?: RegisterReport;
  heartbeat?: HeartbeatReport;
  memory?: MemoryReport;
  watch?: WatchReport;
  loadavgByPhase: Record<string, readonly number[]>;
  errors: Record<string, string>;
  wallSeconds?: number;
} = { machine, settings, loadavgByPhase: {}, errors: {} };
const started = performance.now();

/** withCluster runs one phase on a fresh cluster and always stops it. */
async function withCluster<T>(name: string, f: (c: BenchCluster) => Promise<T>): Promise<T> {
  log(`[${name}] starting a 3-node cluster`);
  const c = await BenchCluster.start(process.env.BENCH_LOG_LEVEL ? { RAFTMESH_LOG_LEVEL: process.env.BENCH_LOG_LEVEL } : {}, !values.tsx);
  try {
    return await f(c);
  } finally {
    await c.stop();
    report.loadavgByPhase[name] = loadavg().map(round2);
  }
}

/** runPhase runs one phase; a failure is reported and recorded, and the remaining phases still run. */
async function runPhase(name: Phase, f: () => Promise<void>): Promise<void> {
  if (!only.has(name)) return;
  try {
    await f();
  } catch (err) {
    report.errors[name] = (err as Error).stack ?? String(err);
    log(`[${name}] failed: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  }
}

await runPhase("snap", async () => {
  log(`[snap] in-process RegistryStateMachine, ${settings.snapshot.instances} instances`);
  report.snapshot = runSnapshotPhase(settings.snapshot, log);
  report.loadavgByPhase.snap = loadavg().map(round2);
  printSnapshot(report.snapshot, log);
});
await runPhase("reg", async () => {
  report.register = await withCluster("reg", (c) => runRegisterPhase(c, settings.register, log));
  printRegister(report.register, settings.register.repeats, log);
});
await runPhase("hb", async () => {
  report.heartbeat = await withCluster("hb", (c) => runHeartbeatPhase(c, settings.heartbeat, log));
  printHeartbeat(report.heartbeat, log);
});
await runPhase("mem", async () => {
  report.memory = await withCluster("mem", (c) => runMemoryPhase(c, settings.memory, log));
  printMemory(report.memory, log);
});
await runPhase("watch", async () => {
  report.watch = await withCluster("watch", (c) => runWatchPhase(c, settings.watch, log));
  printWatch(report.watch, log);
});
machine.loadavgAtEnd = loadavg().map(round2);
report.wallSeconds = (performance.now() - started) / 1000;
log(`load average ${machine.loadavgAtEnd.join(" ")} at end; ${Math.round(report.wallSeconds)} s in all`);
log(JSON.stringify(summaryOf(report)));
if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);

/** summaryOf is the one-line digest: the headline figure of every phase. */
function summaryOf(r: typeof report): Record<string, unknown> {
  const h = r.heartbeat;
  const m = r.memory;
  const w = r.watch;
  const s = r.snapshot;
  return {
    machine: { cpu: r.machine.cpu, cores: r.machine.cores, node: r.machine.node, loadavgAtStart: r.machine.loadavgAtStart[0], loadavgAtEnd: r.machine.loadavgAtEnd?.[0] },
    registrations: r.register?.rows.map((x) => ({ concurrency: x.concurrency, perSec: Math.round(x.registersPerSec), kvPutsPerSec: Math.round(x.putsPerSec), ratio: round2(x.ratio) })),
    heartbeats: h && {
      instances: h.registered,
      achievedPerSec: Math.round(h.achievedPerSec),
      p50Ms: round2(h.p50Ms),
      p99Ms: round2(h.p99Ms),
      errors: h.errors,
      skipped: h.skipped,
      leaderCpuPercent: Math.round(h.cpuPercent[h.leader] ?? Number.NaN),
      commitGrowth: h.commitGrowth,
      critical: h.healthAfter.critical,
    },
    memory: m && {
      instances: m.registered,
      registersPerSec: Math.round(m.registersPerSec),
      rssAfterMiB: Object.fromEntries(Object.entries(m.nodes).map(([id, n]) => [id, Math.round(n.rssAfterBytes / 2 ** 20)])),
      bytesPerInstance: Object.fromEntries(Object.entries(m.nodes).map(([id, n]) => [id, Math.round(n.bytesPerInstance)])),
      learnerCatchUpMs: m.learner && "catchUpMs" in m.learner ? Math.round(m.learner.catchUpMs) : undefined,
    },
    snapshot: s && { instances: s.instances, bytes: s.snapshotBytes, snapshotMs: Math.round(s.snapshotMs), restoreMs: Math.round(s.restoreMs) },
    errors: Object.keys(r.errors),
    watch: w && { watchers: w.watchers, writes: w.writesWithEvent, p50Ms: round2(w.fromSend.p50Ms), p99Ms: round2(w.fromSend.p99Ms), maxMs: round2(w.fromSend.maxMs), missing: w.missing },
  };
}
