/**
 * How long a snapshot holds a node's event loop, with 100,000 instances, 10,000 KV keys and
 * 10,000 sessions (in-process, one node's machine and snapshot store):
 *   idle     the probe alone (the machine's own noise: other processes share its cores);
 *   whole    the machine's snapshot() and the file's CRC in one go (how nodes snapshotted before);
 *   sliced   what RaftNode does now: beginSnapshot(), one step per loop turn, then the snapshot
 *            file written from its chunks, never joined, by SnapshotStore (CRC a slice per
 *            turn), while a registration is applied
 *            every millisecond; the bytes are then checked to be the state at the snapshot's index;
 *   restore  restore() of that snapshot into an empty machine in one task (how learners installed it before), timed;
 *   restoreSliced  what RaftNode does now: beginRestore(), one step per loop turn, checked to
 *            give the machine the snapshot's state.
 * The probe is a 1 ms timer whose lateness is the loop's delay, and monitorEventLoopDelay at 1 ms.
 *
 *   npx tsx test/bench/registry/snapshot-stall.ts [--instances 100000] [--runs 3] [--json out.json]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { ClusterStateMachine } from "../../../src/node/cluster-state-machine.js";
import { NODE_SCHEDULER } from "../../../src/node/scheduler.js";
import { joinChunks } from "../../../src/node/state-machine.js";
import { EntryKind, type NodeId } from "../../../src/raft/index.js";
import { encodeCommand } from "../../../src/registry/codec.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import type { CommandEnvelope } from "../../../src/registry/types.js";
import { encodeSnapshotHeader } from "../../../src/storage/snapshot-codec.js";
import { SnapshotStore } from "../../../src/storage/snapshot-store.js";
import { median } from "../raft/stats.js";
import { machineInfo } from "./procs.js";
import { instanceSpec, TTL_MS_LONG } from "./instances.js";

const { values } = parseArgs({
  options: { instances: { type: "string", default: "100000" }, runs: { type: "string", default: "3" }, json: { type: "string" } },
  strict: true,
});
const INSTANCES = Number(values.instances);
const RUNS = Number(values.runs);
/** INSTANCES_PER_SERVICE, KV_KEYS, SESSIONS: the registry of issue 15's figures. */
const INSTANCES_PER_SERVICE = 100;
const KV_KEYS = 10_000;
const SESSIONS = 10_000;
/** IDLE_MS: how long the probe runs alone for the noise figure. */
const IDLE_MS = 2_000;

const registry = new RegistryStateMachine();
const machine = new ClusterStateMachine(registry);
let index = 0;
const apply = (env: CommandEnvelope) => machine.apply({ term: 1, index: ++index, kind: EntryKind.Normal, data: Uint8Array.of(0x02, ...encodeCommand(env)) });
const register = (i: number, at: number) => {
  const service = `mem-${Math.floor(i / INSTANCES_PER_SERVICE)}`;
  apply({ v: 1, at, session: { client: `client-${i % SESSIONS}`, seq: Math.floor(i / SESSIONS) + 1 }, cmd: { op: "instance.register", instance: instanceSpec(i, service, `${service}-${i % INSTANCES_PER_SERVICE}`, TTL_MS_LONG) } });
};

const t0 = performance.now();
for (let i = 0; i < INSTANCES; i++) register(i, 1_700_000_000_000 + i);
for (let i = 0; i < KV_KEYS; i++) apply({ v: 1, at: 1_700_000_100_000 + i, cmd: { op: "kv.put", key: `config/app-${i}`, value: Buffer.from(`value-${i}`).toString("base64") } });
const buildMs = performance.now() - t0;
console.log(`built ${JSON.stringify(registry.stats())} in ${Math.round(buildMs)} ms`);

/** GC_KINDS names perf_hooks' gc entry kinds (NODE_PERFORMANCE_GC_*). */
const GC_KINDS: Record<number, string> = { 1: "minor", 4: "major", 8: "incremental", 16: "weakcb" };

/** gcKind is a gc entry's kind (NODE_PERFORMANCE_GC_*), 0 when it has none. */
const gcKind = (e: PerformanceEntry) => (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0;

/** Probe measures the event loop's largest delay while it runs, and the longest GC pause in it (what a gap that no task explains is). */
class Probe {
  private readonly h = monitorEventLoopDelay({ resolution: 1 });
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  maxGapMs = 0;
  private gcMaxMs = 0;
  private gcMaxKind = "";
  private gcTotalMs = 0;
  private readonly gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      this.gcTotalMs += e.duration;
      if (e.duration > this.gcMaxMs) {
        this.gcMaxMs = e.duration;
        this.gcMaxKind = GC_KINDS[gcKind(e)] ?? "other";
      }
    }
  });
  start(): void {
    this.h.reset();
    this.h.enable();
    this.last = performance.now();
    this.maxGapMs = 0;
    this.gcMaxMs = 0;
    this.gcMaxKind = "";
    this.gcTotalMs = 0;
    this.gc.observe({ entryTypes: ["gc"] });
    this.timer = setInterval(() => {
      const now = performance.now();
      this.maxGapMs = Math.max(this.maxGapMs, now - this.last - 1);
      this.last = now;
    }, 1);
  }
  stop(): { maxGapMs: number; histMaxMs: number; p99Ms: number; gcMaxMs: number; gcMaxKind: string; gcTotalMs: number } {
    clearInterval(this.timer);
    this.h.disable();
    // Entries are delivered on a later turn: take those still queued.
    for (const e of this.gc.takeRecords()) {
      this.gcTotalMs += e.duration;
      if (e.duration > this.gcMaxMs) {
        this.gcMaxMs = e.duration;
        this.gcMaxKind = GC_KINDS[gcKind(e)] ?? "other";
      }
    }
    this.gc.disconnect();
    return {
      maxGapMs: round1(this.maxGapMs),
      histMaxMs: round1(this.h.max / 1e6),
      p99Ms: round1(this.h.percentile(99) / 1e6),
      gcMaxMs: round1(this.gcMaxMs),
      gcMaxKind: this.gcMaxKind,
      gcTotalMs: round1(this.gcTotalMs),
    };
  }
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const probe = new Probe();
const dir = mkdtempSync(join(tmpdir(), "raftmesh-stall-"));
const store = await SnapshotStore.open(dir, { warn: () => {}, info: () => {}, error: () => {} } as never);

/** cpuMs is the process's CPU time since `from` (all its threads: an upper bound of the main thread's). */
const cpuMs = (from: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
};

/**
 * Figures: the probe's largest delay (wall time, which on a shared machine includes waiting for a
 * core) and, for the snapshot's own tasks, the CPU time of the longest one (what it holds the loop
 * for on a free core).
 */
type Figures = { maxGapMs: number; histMaxMs: number; p99Ms: number; ms: number; longestTaskCpuMs: number; gcMaxMs: number; gcMaxKind: string; gcTotalMs: number };
const idle: Figures[] = [];
const whole: Figures[] = [];
const sliced: (Figures & { beginCpuMs: number; stepCpuMsMax: number; slices: number; appliedMeanwhile: number })[] = [];
const restore: Figures[] = [];
const restoreSliced: (Figures & { slices: number })[] = [];
let bytes = 0;

/** timeRestore restores `out` into an empty machine in one task (how learners installed it before) and returns its stats. */
async function timeRestore(out: Uint8Array): Promise<string> {
  probe.start();
  await sleep(20);
  const a = performance.now();
  const cpu = process.cpuUsage();
  const restoredWhole = new RegistryStateMachine();
  new ClusterStateMachine(restoredWhole).restore(out);
  const ms = performance.now() - a;
  const restoreCpu = cpuMs(cpu);
  await sleep(20);
  restore.push({ ...probe.stop(), ms, longestTaskCpuMs: round1(restoreCpu) });
  return JSON.stringify(restoredWhole.stats());
}

/** timeRestoreSliced restores `out` as RaftNode does, a step per loop turn, and checks it gives the whole restore's state. */
async function timeRestoreSliced(out: Uint8Array, at: number, wholeStats: string): Promise<void> {
  probe.start();
  await sleep(20);
  const a = performance.now();
  const learner = new RegistryStateMachine();
  const restoring = new ClusterStateMachine(learner).beginRestore(out);
  let restoreSlices = 0;
  let restoreLongest = 0;
  for (;;) {
    restoreSlices++;
    const cpu = process.cpuUsage();
    const done = restoring.step();
    restoreLongest = Math.max(restoreLongest, cpuMs(cpu));
    if (done) break;
    await new Promise<void>((resolve) => NODE_SCHEDULER.after(0, resolve));
  }
  const ms = performance.now() - a;
  await sleep(20);
  restoreSliced.push({ ...probe.stop(), ms, longestTaskCpuMs: round1(restoreLongest), slices: restoreSlices });
  if (learner.applied !== at || JSON.stringify(learner.stats()) !== wholeStats) {
    throw new Error(`the sliced restore is not the snapshot's state: ${JSON.stringify(learner.stats())}`);
  }
}

for (let r = 0; r < RUNS; r++) {
  probe.start();
  await sleep(IDLE_MS);
  idle.push({ ...probe.stop(), ms: IDLE_MS, longestTaskCpuMs: 0 });

  // Before: the whole snapshot and its CRC in one task.
  probe.start();
  await sleep(20);
  let a = performance.now();
  let cpu = process.cpuUsage();
  const data = machine.snapshot();
  encodeSnapshotHeader({ meta: { index, term: 1, conf: { voters: ["n1" as NodeId], learners: [] } }, data });
  let ms = performance.now() - a;
  const wholeCpu = cpuMs(cpu);
  await sleep(20);
  whole.push({ ...probe.stop(), ms, longestTaskCpuMs: round1(wholeCpu) });
  bytes = data.length;

  // After: as RaftNode does it, with registrations applied between the slices.
  probe.start();
  await sleep(20);
  a = performance.now();
  const at = index;
  const expected = data; // nothing was applied since: the sliced bytes must equal these
  cpu = process.cpuUsage();
  const job = machine.beginSnapshot();
  let longest = cpuMs(cpu);
  const beginCpuMs = longest;
  let slices = 0;
  let applying = true;
  let appliedMeanwhile = 0;
  const applier = (async () => {
    while (applying) {
      register(INSTANCES + appliedMeanwhile, 1_700_000_200_000 + appliedMeanwhile);
      appliedMeanwhile++;
      await sleep(1);
    }
  })();
  let chunks: readonly Uint8Array[] | undefined;
  let stepCpuMsMax = 0;
  for (;;) {
    slices++;
    cpu = process.cpuUsage();
    chunks = job.step();
    stepCpuMsMax = Math.max(stepCpuMsMax, cpuMs(cpu));
    longest = Math.max(longest, cpuMs(cpu));
    if (chunks !== undefined) break;
    await new Promise<void>((resolve) => NODE_SCHEDULER.after(0, resolve));
  }
  // The chunks go to the file as they are, never joined (RaftNode.finishSnapshot).
  await store.save({ meta: { index: at, term: 1, conf: { voters: ["n1" as NodeId], learners: [] } }, chunks });
  ms = performance.now() - a;
  applying = false;
  await applier;
  await sleep(20);
  sliced.push({ ...probe.stop(), ms, longestTaskCpuMs: round1(longest), beginCpuMs: round1(beginCpuMs), stepCpuMsMax: round1(stepCpuMsMax), slices, appliedMeanwhile });
  const out = joinChunks(chunks);
  if (Buffer.compare(Buffer.from(out), Buffer.from(expected)) !== 0) throw new Error("the sliced snapshot is not the state at its index");

  // The restores run in functions of their own: the machines they build are garbage once each
  // returns, as on a node (a learner holds one registry), not kept into the next run's snapshot.
  const wholeStats = await timeRestore(out);
  await timeRestoreSliced(out, at, wholeStats);
  console.log(`run ${r + 1}: idle ${JSON.stringify(idle.at(-1))} whole ${JSON.stringify(whole.at(-1))} sliced ${JSON.stringify(sliced.at(-1))} restore ${JSON.stringify(restore.at(-1))} restoreSliced ${JSON.stringify(restoreSliced.at(-1))}`);
}
rmSync(dir, { recursive: true, force: true });

type NumericFigure = { [K in keyof Figures]: Figures[K] extends number ? K : never }[keyof Figures];
const med = (xs: Figures[], k: NumericFigure) => round1(median(xs.map((x) => x[k])));
const summary = (xs: Figures[]) => ({ gcMaxMsMedian: med(xs, "gcMaxMs"), longestTaskCpuMsMedian: med(xs, "longestTaskCpuMs"), longestTaskCpuMsMax: round1(Math.max(...xs.map((x) => x.longestTaskCpuMs))), maxGapMsMedian: med(xs, "maxGapMs"), maxGapMsMax: round1(Math.max(...xs.map((x) => x.maxGapMs))), histMaxMsMedian: med(xs, "histMaxMs"), msMedian: med(xs, "ms") });
const report = {
  machine: machineInfo(),
  instances: INSTANCES,
  kvKeys: KV_KEYS,
  stats: registry.stats(),
  snapshotBytes: bytes,
  runs: RUNS,
  idle: summary(idle),
  whole: summary(whole),
  sliced: summary(sliced),
  restore: summary(restore),
  restoreSliced: summary(restoreSliced),
  all: { idle, whole, sliced, restore, restoreSliced },
};
console.log(JSON.stringify({ idle: report.idle, whole: report.whole, sliced: report.sliced, restore: report.restore, restoreSliced: report.restoreSliced, snapshotBytes: bytes }));
if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
