/**
 * The election-timeout floor: for each timing setting, a 3-node raftmesh cluster (real agent
 * processes, fsync on, pre-vote and check-quorum on) is watched for spurious elections while it is
 * (1) quiet, (2) under a closed loop of puts at concurrency 256 against the leader, and (3) under
 * the same load plus one busy-looping process per core; then (4) leader failover is timed. A
 * spurious election is an increase of the highest term any node reports (with pre-vote, a term only
 * moves when a pre-vote won, so this is an election attempt, won or not); leader changes are
 * counted too. Terms are monotonic, so a slow or missed status poll cannot hide an increase.
 *
 *   npx tsx test/bench/raft/election-floor.ts [--seconds 20] [--rounds 5] [--settings 10,10/3,15,20,30]
 *                                             [--instances 0] [--load-concurrency 256] [--value-bytes 256]
 *                                             [--json out.json]
 *
 * BENCH_LOG_LEVEL=info (with KEEP_CLUSTER=1 to keep the logs) logs elections and snapshots.
 *
 * --instances N registers N instances (100 per service, one-hour TTLs, the registry bench's shape)
 * before the phases, so the state machine is large: every node then writes snapshots of tens of MB
 * during the load phases (one per 10,000 entries), which once cost the leader its term.
 *
 * A setting is `electionTicks` or `electionTicks/heartbeatTicks` (heartbeat 5 ticks when omitted),
 * at a fixed tick of TICK_MS.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { runFailover } from "./failover.js";
import { type LoadResult, runLoad } from "./load.js";
import { RaftmeshCluster } from "./raftmesh-cluster.js";
import { trackChild, trackDir, untrackDir } from "./reaper.js";
import { formatTable } from "./stats.js";
import { instanceSpec, TTL_MS_LONG } from "../registry/instances.js";

/** TICK_MS is the agent's default tick; the sweep varies the tick counts, not the tick. */
const TICK_MS = 10;
/** HEARTBEAT_TICKS_DEFAULT is the agent's default heartbeat, used when a setting names none. */
const HEARTBEAT_TICKS_DEFAULT = 5;
/** POLL_INTERVAL_MS is the pace of the status polls: a tenth of a second resolves leader changes well below the shortest timeout tried. */
const POLL_INTERVAL_MS = 100;
/** STATUS_DEADLINE_MS bounds one status call; under load plus the hog an answer can take a while, and a late one is still worth its term. */
const STATUS_DEADLINE_MS = 1_000;
/** LOAD_CONCURRENCY (default of --load-concurrency) saturates both cores of the benchmark machine: the noisy condition the timeout must survive. */
const LOAD_CONCURRENCY = 256;
/** LOAD_VALUE_BYTES (default of --value-bytes) matches bench.ts; large values (--value-bytes 500000 --load-concurrency 4) test heartbeats behind big entries. */
const LOAD_VALUE_BYTES = 256;
/** PUT_DEADLINE_MS bounds one put of the load, so a put stuck on a deposed leader frees its worker. */
const PUT_DEADLINE_MS = 5_000;
/** WARMUP_MS is a discarded light load before the quiet phase, so JIT and channels are warm. */
const WARMUP_MS = 1_000;
/** WARMUP_CONCURRENCY drives the warm-up. */
const WARMUP_CONCURRENCY = 16;
/** HOG_EXIT_WAIT_MS bounds the wait for a SIGKILLed hog to be reaped. */
const HOG_EXIT_WAIT_MS = 5_000;
/** PRELOAD_CONCURRENCY is how many registrations of the preload are in flight at once. */
const PRELOAD_CONCURRENCY = 64;
/** PRELOAD_INSTANCES_PER_SERVICE spreads the preload as the registry bench does. */
const PRELOAD_INSTANCES_PER_SERVICE = 100;
/** PRELOAD_WATCH_MAX_MS bounds the election watch of the preload (which ends it sooner when it finishes). */
const PRELOAD_WATCH_MAX_MS = 3_600_000;
/** INSTANCES_MAX bounds the preload (the registry's own limit is 10,000 per service and 10,000 services). */
const INSTANCES_MAX = 500_000;
/** SETTINGS_MAX bounds the sweep, so a typo cannot start a run of hours. */
const SETTINGS_MAX = 16;

/** Setting is one timing configuration under test. */
interface Setting {
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
}

/** PhaseWatch is what the status polls saw during one phase. */
interface PhaseWatch {
  /** termIncreases is the rise of the highest term reported, from the first answered poll to the last. */
  readonly termIncreases: number;
  /** leaderChanges counts polls whose self-reported leader differs from the one before. */
  readonly leaderChanges: number;
  readonly polls: number;
  /** pollsFailed counts polls in which no node answered in time. */
  readonly pollsFailed: number;
}

/** PhaseResult is one phase: the watch, and the load's figures when it ran one. */
interface PhaseResult extends PhaseWatch {
  readonly putsPerSec?: number;
  readonly p99Ms?: number;
  readonly putErrors?: number;
}

/** SettingResult is everything measured for one setting; error says why it stopped early. */
interface SettingResult {
  readonly setting: Setting;
  readonly timeoutMs: readonly [number, number];
  /** preload: the instances registered before the phases, and how long it took. */
  preload?: { instances: number; seconds: number; errors: number; watch: PhaseWatch };
  quiet?: PhaseResult;
  load?: PhaseResult;
  loadHog?: PhaseResult;
  failover?: { medianMs: number; maxMs: number; roundsMs: readonly number[] };
  error?: string;
}

/** parseSettings reads "10,10/3,15": election ticks, optionally with heartbeat ticks after a slash. */
function parseSettings(text: string): Setting[] {
  const settings = text.split(",").map((part) => {
    const [e, h] = part.trim().split("/");
    const s = { electionTicks: Number(e), heartbeatTicks: h === undefined ? HEARTBEAT_TICKS_DEFAULT : Number(h) };
    if (!Number.isInteger(s.electionTicks) || !Number.isInteger(s.heartbeatTicks) || s.heartbeatTicks < 1 || s.electionTicks <= s.heartbeatTicks) {
      throw new RangeError(`--settings: "${part}" is not electionTicks[/heartbeatTicks] with electionTicks > heartbeatTicks ≥ 1`);
    }
    return s;
  });
  if (settings.length < 1 || settings.length > SETTINGS_MAX) throw new RangeError(`--settings: 1 to ${SETTINGS_MAX} settings, got ${settings.length}`);
  return settings;
}

/** label names a setting as election/heartbeat ticks. */
function label(s: Setting): string {
  return `${s.electionTicks}/${s.heartbeatTicks}`;
}

/**
 * watchElections polls every node's status each POLL_INTERVAL_MS until durationMs has passed, or
 * (with `until`) until that promise settles, whichever is first.
 */
async function watchElections(cluster: RaftmeshCluster, durationMs: number, until?: Promise<unknown>): Promise<PhaseWatch> {
  const endMs = performance.now() + durationMs;
  let settled = false;
  void until?.then(
    () => (settled = true),
    () => (settled = true),
  );
  let firstTerm: number | undefined;
  let lastTerm = 0;
  let lastLeader: string | undefined;
  let leaderChanges = 0;
  let polls = 0;
  let pollsFailed = 0;
  // Bounded in time: each poll settles within STATUS_DEADLINE_MS (plus scheduling), and the loop stops at endMs.
  while (performance.now() < endMs && !settled) {
    const startMs = performance.now();
    const views = await Promise.all(cluster.ids.map((id) => cluster.client(id).status({ deadlineMs: STATUS_DEADLINE_MS }).catch(() => undefined)));
    polls++;
    const answered = views.filter((v) => v !== undefined);
    if (answered.length === 0) pollsFailed++;
    for (const v of answered) lastTerm = Math.max(lastTerm, v.term);
    if (answered.length > 0) firstTerm ??= lastTerm;
    // The leader is the node that says it leads in the highest term among those that say so.
    const leading = answered.filter((v) => v.role === "leader").sort((a, b) => b.term - a.term)[0];
    if (leading && leading.id !== lastLeader) {
      if (lastLeader !== undefined) leaderChanges++;
      lastLeader = leading.id;
    }
    await sleep(Math.max(0, Math.min(POLL_INTERVAL_MS - (performance.now() - startMs), endMs - performance.now())));
  }
  return { termIncreases: lastTerm - (firstTerm ?? lastTerm), leaderChanges, polls, pollsFailed };
}

/** putVia writes through node id's client, each put bounded by PUT_DEADLINE_MS. */
function putVia(cluster: RaftmeshCluster, id: string): (key: string, value: Uint8Array) => Promise<void> {
  return async (key, value) => {
    await cluster.client(id).put(key, value, { deadlineMs: PUT_DEADLINE_MS });
  };
}

/** watchUnderLoad runs the closed-loop load against the current leader while watching for elections. */
async function watchUnderLoad(cluster: RaftmeshCluster, durationMs: number, keyPrefix: string): Promise<PhaseResult> {
  const leader = await cluster.leader();
  const put = putVia(cluster, leader);
  const [watch, load]: [PhaseWatch, LoadResult] = await Promise.all([
    watchElections(cluster, durationMs),
    runLoad({ put, concurrency: loadShape.concurrency, valueBytes: loadShape.valueBytes, durationMs, keyPrefix }),
  ]);
  if (load.errors > 0) console.log(`    ${load.errors} put errors, first: ${load.firstError}`);
  return { ...watch, putsPerSec: load.opsPerSec, p99Ms: load.p99Ms, putErrors: load.errors };
}

/** hogs are the running busy-loop processes; module-level so the signal handler can kill them. */
const hogs = new Set<ChildProcess>();

/** startHogs spawns one busy-looping node process per core; the reaper kills them if this process dies first. */
function startHogs(count: number): void {
  for (let i = 0; i < count; i++) {
    const child = spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" });
    trackChild(child);
    hogs.add(child);
    child.once("exit", () => hogs.delete(child));
  }
}

/** stopHogs SIGKILLs every hog and waits (bounded) until each has exited. */
async function stopHogs(): Promise<void> {
  const exits = [...hogs].map((child) => {
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    return Promise.race([exited, sleep(HOG_EXIT_WAIT_MS)]);
  });
  await Promise.all(exits);
}

/** current is the cluster being measured; module-level so the signal handler can stop it. */
let current: RaftmeshCluster | undefined;

/** measureSetting starts a cluster with the setting and runs the four phases; the cluster and hogs are always stopped. */
/** preload registers n instances through the leader, PRELOAD_CONCURRENCY at a time. */
async function preload(cluster: RaftmeshCluster, n: number): Promise<{ instances: number; seconds: number; errors: number }> {
  const client = cluster.client(await cluster.leader());
  const started = performance.now();
  let next = 0;
  let errors = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) {
      const service = `floor-${Math.floor(i / PRELOAD_INSTANCES_PER_SERVICE)}`;
      await client.register(instanceSpec(i, service, `${service}-${i % PRELOAD_INSTANCES_PER_SERVICE}`, TTL_MS_LONG), { deadlineMs: PUT_DEADLINE_MS }).catch(() => {
        errors++;
      });
    }
  };
  await Promise.all(Array.from({ length: PRELOAD_CONCURRENCY }, worker));
  return { instances: n, seconds: Math.round((performance.now() - started) / 100) / 10, errors };
}

async function measureSetting(setting: Setting, phaseMs: number, rounds: number, instances: number): Promise<SettingResult> {
  const result: SettingResult = { setting, timeoutMs: [setting.electionTicks * TICK_MS, 2 * setting.electionTicks * TICK_MS] };
  const tag = label(setting);
  let cluster: RaftmeshCluster;
  try {
    cluster = await RaftmeshCluster.start({
      ...(process.env.BENCH_LOG_LEVEL ? { RAFTMESH_LOG_LEVEL: process.env.BENCH_LOG_LEVEL } : {}),
      RAFTMESH_TICK_MS: String(TICK_MS),
      RAFTMESH_ELECTION_TICKS: String(setting.electionTicks),
      RAFTMESH_HEARTBEAT_TICKS: String(setting.heartbeatTicks),
    });
  } catch (err) {
    result.error = `start: ${errorText(err)}`;
    return result;
  }
  current = cluster;
  trackDir(cluster.pc.root);
  try {
    const leader = await cluster.leader();
    await runLoad({ put: putVia(cluster, leader), concurrency: WARMUP_CONCURRENCY, valueBytes: LOAD_VALUE_BYTES, durationMs: WARMUP_MS });
    if (instances > 0) {
      // The preload is watched too: every node snapshots the growing registry during it.
      const loading = preload(cluster, instances);
      const [loaded, watch] = await Promise.all([loading, watchElections(cluster, PRELOAD_WATCH_MAX_MS, loading)]);
      result.preload = { ...loaded, watch };
      console.log(`  ${tag} preload: ${instances} instances in ${loaded.seconds} s, ${loaded.errors} errors; ${describe(watch)}`);
    }
    result.quiet = await watchElections(cluster, phaseMs);
    console.log(`  ${tag} quiet: ${describe(result.quiet)}`);
    result.load = await watchUnderLoad(cluster, phaseMs, `floor/${tag}/load`);
    console.log(`  ${tag} load: ${describe(result.load)}`);
    startHogs(availableParallelism());
    try {
      result.loadHog = await watchUnderLoad(cluster, phaseMs, `floor/${tag}/hog`);
    } finally {
      await stopHogs();
    }
    console.log(`  ${tag} load+hog: ${describe(result.loadHog)}`);
    const f = await runFailover({ cluster, rounds, onRound: (r) => console.log(`  ${tag} failover round ${r.round}: ${Math.round(r.failoverMs)} ms (${r.killedId} killed at ${new Date(r.killedAtEpochMs).toISOString()})`) });
    result.failover = { medianMs: f.medianMs, maxMs: f.maxMs, roundsMs: f.failoverMs };
  } catch (err) {
    result.error = errorText(err);
    console.log(`  ${tag} stopped early: ${result.error}`);
  } finally {
    await stopHogs();
    await cluster.stop();
    untrackDir(cluster.pc.root);
    current = undefined;
  }
  return result;
}

/** errorText names an error by class and message. */
function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** describe is one progress line for a phase. */
function describe(p: PhaseResult): string {
  const load = p.putsPerSec === undefined ? "" : `, ${Math.round(p.putsPerSec)} puts/s, p99 ${Math.round(p.p99Ms ?? Number.NaN)} ms`;
  return `${p.termIncreases} term increases, ${p.leaderChanges} leader changes, ${p.pollsFailed}/${p.polls} polls unanswered${load}`;
}

/** elections is a table cell: term increases / leader changes, "-" when the phase did not run. */
function elections(p: PhaseResult | undefined): string {
  return p ? `${p.termIncreases}/${p.leaderChanges}` : "-";
}

/** printReport prints the table and one JSON line. */
function printReport(results: readonly SettingResult[], phaseMs: number, rounds: number, jsonPath: string | undefined): void {
  const round = (x: number | undefined) => (x === undefined ? Number.NaN : Math.round(x));
  const header = ["setting e/hb", "timeout ms", "hb ms", "instances (preload elections)", "quiet", "load", "load+hog", "puts/s load", "puts/s hog", "failover med ms", "max ms"];
  const rows = results.map((r) => [
    label(r.setting),
    `${r.timeoutMs[0]}-${r.timeoutMs[1]}`,
    r.setting.heartbeatTicks * TICK_MS,
    r.preload ? `${r.preload.instances} (${elections(r.preload.watch)})` : 0,
    elections(r.quiet),
    elections(r.load),
    elections(r.loadHog),
    round(r.load?.putsPerSec),
    round(r.loadHog?.putsPerSec),
    round(r.failover?.medianMs),
    round(r.failover?.maxMs),
  ]);
  console.log(`\nspurious elections as term increases/leader changes in ${phaseMs / 1000} s per phase; failover over ${rounds} rounds`);
  console.log(formatTable(header, rows));
  for (const r of results) if (r.error) console.log(`${label(r.setting)}: ${r.error}`);
  const json = JSON.stringify({ machine: `${cpus()[0]?.model ?? "unknown"}, ${cpus().length} cores, node ${process.version}`, tickMs: TICK_MS, phaseMs, rounds, loadConcurrency: loadShape.concurrency, valueBytes: loadShape.valueBytes, loadavgAtEnd: loadavg()[0], results });
  console.log(`\n${json}`);
  if (jsonPath !== undefined) writeFileSync(jsonPath, `${json}\n`);
}

/** stopOnSignal kills hogs and the cluster's agents (both signal synchronously) before the reaper exits the process. */
function stopOnSignal(): void {
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      void stopHogs();
      if (current === undefined) process.exit(130);
      void current.stop().finally(() => process.exit(130));
    });
  }
}

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "20" },
    rounds: { type: "string", default: "5" },
    settings: { type: "string", default: "10,10/3,15,20,30" },
    instances: { type: "string", default: "0" },
    "load-concurrency": { type: "string", default: String(LOAD_CONCURRENCY) },
    "value-bytes": { type: "string", default: String(LOAD_VALUE_BYTES) },
    json: { type: "string" },
  },
  strict: true,
});
const phaseMs = Number(values.seconds) * 1000;
const rounds = Number(values.rounds);
if (!(phaseMs > 0) || !Number.isFinite(phaseMs) || !Number.isInteger(rounds) || rounds < 1) throw new RangeError("--seconds and --rounds must be positive numbers");
const settings = parseSettings(values.settings);
const loadShape = { concurrency: Number(values["load-concurrency"]), valueBytes: Number(values["value-bytes"]) };
if (!Number.isInteger(loadShape.concurrency) || loadShape.concurrency < 1 || !Number.isInteger(loadShape.valueBytes) || loadShape.valueBytes < 1) {
  throw new RangeError("--load-concurrency and --value-bytes must be positive integers");
}
const instances = Number(values.instances);
if (!Number.isInteger(instances) || instances < 0 || instances > INSTANCES_MAX) throw new RangeError(`--instances must be 0..${INSTANCES_MAX}`);

// Registered before the reaper installs its own handlers, so these run first and the agents get their SIGKILL.
stopOnSignal();
console.log(`${cpus()[0]?.model ?? "unknown"}, ${cpus().length} cores, node ${process.version}, load average ${(loadavg()[0] ?? 0).toFixed(2)} at start`);
console.log(`tick ${TICK_MS} ms, ${phaseMs / 1000} s per phase, load concurrency ${loadShape.concurrency} of ${loadShape.valueBytes}-byte puts, ${availableParallelism()} hog processes, ${rounds} failover rounds\n`);
const results: SettingResult[] = [];
for (const setting of settings) results.push(await measureSetting(setting, phaseMs, rounds, instances));
printReport(results, phaseMs, rounds, values.json);
