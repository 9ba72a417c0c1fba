/**
 * Phase 2: sustained heartbeats. Register n instances with a TTL, then heartbeat every one of them
 * once per TTL/3 (n·3/TTL heartbeats a second, evenly paced, open loop), each instance always
 * through the same node, instances spread over the three nodes so followers batch to the leader.
 * After two warm-up rounds, a measured window records achieved rate, latency, errors, every agent's
 * CPU share, and how far the leader's commit index moved (renewals are not log entries: ~0).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { runLoad } from "../raft/load.js";
import { summarizeLatencies } from "../raft/stats.js";
import type { BenchCluster } from "./cluster.js";
import { instanceSpec } from "./instances.js";
import { CpuMeter } from "./procs.js";
import { countHealth, type HealthTotals } from "./registry-stats.js";

/** INSTANCES_PER_SERVICE groups heartbeating instances into services of this size. */
const INSTANCES_PER_SERVICE = 1_000;
/** REGISTER_CONCURRENCY drives the setup registrations (the phase measures heartbeats, not these). */
const REGISTER_CONCURRENCY = 64;
/** REGISTER_TIME_MS_MAX bounds the setup registrations in time. */
const REGISTER_TIME_MS_MAX = 120_000;
/** PACER_TICK_MS: the pacer wakes this often and sends every heartbeat that fell due. */
const PACER_TICK_MS = 5;
/** INFLIGHT_MAX bounds heartbeats awaiting an answer; past it a due heartbeat is skipped and counted, never queued without bound. */
const INFLIGHT_MAX = 10_000;
/** DRAIN_MS_MAX bounds the wait for the last answers after the window (the client's deadline is 3 s). */
const DRAIN_MS_MAX = 5_000;
/** SERVICE_PREFIX names this phase's services. */
const SERVICE_PREFIX = "hb-";

/** HeartbeatOptions size the phase. */
export interface HeartbeatOptions {
  readonly instances: number;
  readonly ttlMs: number;
  readonly durationMs: number;
}

/** HeartbeatReport is the phase's result. */
export interface HeartbeatReport {
  readonly leader: string;
  readonly instances: number;
  readonly registered: number;
  readonly registerSeconds: number;
  readonly ttlMs: number;
  readonly windowSeconds: number;
  readonly offeredPerSec: number;
  readonly achievedPerSec: number;
  readonly sent: number;
  readonly ok: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly skipped: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** viaLeader / viaFollowers: latency split by the node a heartbeat was sent to. */
  readonly byNode: Record<string, { role: "leader" | "follower"; ok: number; p50Ms: number; p99Ms: number }>;
  /** cpuPercent is each agent's CPU over the window, percent of one core; "client" is the benchmark process. */
  readonly cpuPercent: Record<string, number>;
  readonly leaderCommitBefore: number;
  readonly leaderCommitAfter: number;
  readonly commitGrowth: number;
  readonly healthAfter: HealthTotals;
  /** termBefore / termAfter and leaderAfter: an election during the window shows here. */
  readonly termBefore: number;
  readonly termAfter: number;
  readonly leaderAfter: string;
  /** eventsInWindow counts instance events a watch on the leader saw in the window, by health (what the commit growth was); eventsInWarmup the same before it. */
  readonly eventsInWindow: { passing: number; warning: number; critical: number; other: number };
  readonly eventsInWarmup: { passing: number; warning: number; critical: number; other: number };
  /** clientLoopDelayMs is the benchmark process's event-loop delay over the window: high means the client, not the cluster, was the bottleneck. */
  readonly clientLoopDelayMs: { p50: number; p99: number; max: number };
  /** perSecond: heartbeats sent in each second of the window that succeeded / failed. */
  readonly perSecond: { ok: number[]; failed: number[] };
  /** statusFailures are failed (then retried) status and list reads of the leader: each is a transport failure worth knowing about. */
  readonly statusFailures: string[];
}

/** runHeartbeatPhase runs the phase on cluster c. */
export async function runHeartbeatPhase(c: BenchCluster, o: HeartbeatOptions, log: (line: string) => void): Promise<HeartbeatReport> {
  const leader = await c.leader();
  const { registered, seconds: registerSeconds } = await registerAll(c, leader, o, log);
  const ids = c.ids;
  const n = registered.length;
  const periodMs = o.ttlMs / 3;
  // Two rounds of warm-up: an instance that expired before its first heartbeat (registering took
  // close to a TTL) is revived in the first, and its revival has committed before the window opens.
  const warmupMs = 2 * periodMs;
  // The k-th heartbeat goes to instance k mod n at t0 + k·period/n: every instance once per period, evenly spread.
  const totalBeats = Math.ceil(((warmupMs + o.durationMs) / periodMs) * n);
  const latencyMs = new Float64Array(totalBeats);
  const nodeOf = new Uint8Array(totalBeats);
  const okFlag = new Uint8Array(totalBeats);
  let inflight = 0;
  let sent = 0;
  let errors = 0;
  let skipped = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const windowStart = t0 + warmupMs;
  const windowEnd = windowStart + o.durationMs;
  let windowFirstK = -1;
  let meter: CpuMeter | undefined;
  let commitBefore = 0;
  let termBefore = 0;
  const statusFailures: string[] = [];
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  const events = { passing: 0, warning: 0, critical: 0, other: 0 };
  const warmupEvents = { passing: 0, warning: 0, critical: 0, other: 0 };
  let counting = false;
  let stopped = false;
  const watch = c.pc.client(leader).watch(
    { fromIndex: (await statusOf(c, leader, statusFailures)).applied, kinds: ["instance"] },
    {
      onMessage: (m) => {
        if (stopped) return;
        const into = counting ? events : warmupEvents;
        for (const e of m.events) {
          const h = e.instance?.health;
          if (h === "passing" || h === "warning" || h === "critical") into[h]++;
          else into.other++;
        }
      },
      onEnd: () => undefined,
    },
  );
  log(`  heartbeating ${n} instances every ${Math.round(periodMs)} ms (${Math.round((n * 1000) / periodMs)}/s); warm-up ${Math.round(warmupMs)} ms, window ${o.durationMs} ms`);

  const beat = (k: number) => {
    const i = registered[k % n] as number;
    const node = i % ids.length;
    nodeOf[k] = node;
    if (inflight >= INFLIGHT_MAX) {
      skipped++;
      return;
    }
    inflight++;
    sent++;
    const service = `${SERVICE_PREFIX}${Math.floor(i / INSTANCES_PER_SERVICE)}`;
    const start = performance.now();
    c.pc
      .client(ids[node] as string)
      .heartbeat(service, `${service}-${i}`)
      .then(
        () => {
          latencyMs[k] = performance.now() - start;
          okFlag[k] = 1;
        },
        (err: Error) => {
          errors++;
          firstError ??= err.message;
        },
      )
      .finally(() => inflight--);
  };

  let k = 0;
  // Bounded: k only grows, up to totalBeats, and the loop ends at windowEnd.
  while (k < totalBeats) {
    const now = performance.now();
    if (now >= windowEnd) break;
    if (now >= windowStart && windowFirstK < 0) {
      windowFirstK = k;
      const st = await statusOf(c, leader, statusFailures);
      commitBefore = st.commit;
      termBefore = st.term;
      meter = new CpuMeter([...c.pids.values()]);
      loopDelay.enable();
      counting = true;
    }
    while (k < totalBeats && t0 + (k * periodMs) / n <= now) beat(k++);
    await sleep(PACER_TICK_MS);
  }
  const windowLastK = k;
  const cpu = meter?.read();
  loopDelay.disable();
  const stAfter = await statusOf(c, leader, statusFailures);
  stopped = true;
  watch.cancel();
  const commitAfter = stAfter.commit;
  const drainEnd = performance.now() + DRAIN_MS_MAX;
  while (inflight > 0 && performance.now() < drainEnd) await sleep(50);
  const healthAfter = countHealth(await retried(() => c.pc.client(leader).listServices(), statusFailures), SERVICE_PREFIX);

  const inWindow = (kk: number) => kk >= windowFirstK && kk < windowLastK && okFlag[kk] === 1;
  const pick = (node?: number) => {
    const out: number[] = [];
    for (let kk = Math.max(0, windowFirstK); kk < windowLastK; kk++) if (inWindow(kk) && (node === undefined || nodeOf[kk] === node)) out.push(latencyMs[kk] as number);
    return out;
  };
  const all = summarizeLatencies(pick());
  const windowSeconds = cpu?.wallSec ?? o.durationMs / 1000;
  const byNode = Object.fromEntries(
    ids.map((id, node) => {
      const s = summarizeLatencies(pick(node));
      return [id, { role: id === leader ? ("leader" as const) : ("follower" as const), ok: s.count, p50Ms: s.p50Ms, p99Ms: s.p99Ms }];
    }),
  );
  const seconds = Math.ceil(o.durationMs / 1000);
  const perSecond = { ok: new Array<number>(seconds).fill(0), failed: new Array<number>(seconds).fill(0) };
  for (let kk = Math.max(0, windowFirstK); kk < windowLastK; kk++) {
    // Heartbeat kk was due (and sent) at t0 + kk·period/n.
    const sec = Math.min(seconds - 1, Math.floor((t0 + (kk * periodMs) / n - windowStart) / 1000));
    if (okFlag[kk] === 1) perSecond.ok[sec]!++;
    else perSecond.failed[sec]!++;
  }
  const cpuPercent: Record<string, number> = {};
  for (const [id, pid] of c.pids) cpuPercent[id] = cpu?.percentByPid.get(pid) ?? Number.NaN;
  cpuPercent.client = cpu?.selfPercent ?? Number.NaN;
  return {
    leader,
    instances: o.instances,
    registered: n,
    registerSeconds,
    ttlMs: o.ttlMs,
    windowSeconds,
    offeredPerSec: (n * 1000) / periodMs,
    achievedPerSec: all.count / windowSeconds,
    sent,
    ok: all.count,
    errors,
    firstError,
    skipped,
    p50Ms: all.p50Ms,
    p99Ms: all.p99Ms,
    maxMs: all.maxMs,
    byNode,
    cpuPercent,
    leaderCommitBefore: commitBefore,
    leaderCommitAfter: commitAfter,
    commitGrowth: commitAfter - commitBefore,
    healthAfter,
    termBefore,
    termAfter: stAfter.term,
    leaderAfter: stAfter.leader,
    eventsInWindow: events,
    eventsInWarmup: warmupEvents,
    clientLoopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
    perSecond,
    statusFailures,
  };
}

/** registerAll registers the phase's instances through the leader and returns the numbers of those that were acknowledged, in order. */
async function registerAll(c: BenchCluster, leader: string, o: HeartbeatOptions, log: (line: string) => void): Promise<{ registered: number[]; seconds: number }> {
  const client = c.pc.client(leader);
  const done = new Uint8Array(o.instances);
  const r = await runLoad({
    concurrency: REGISTER_CONCURRENCY,
    maxOps: o.instances,
    durationMs: REGISTER_TIME_MS_MAX,
    keyPrefix: "hb",
    put: async (key) => {
      const i = Number(key.slice(key.lastIndexOf("/") + 1));
      const service = `${SERVICE_PREFIX}${Math.floor(i / INSTANCES_PER_SERVICE)}`;
      await client.register(instanceSpec(i, service, `${service}-${i}`, o.ttlMs));
      done[i] = 1;
    },
  });
  log(`  registered ${r.ops}/${o.instances} in ${r.seconds.toFixed(1)} s (${Math.round(r.opsPerSec)}/s)${r.errors ? `, ${r.errors} errors (${r.firstError})` : ""}`);
  if (r.seconds * 1000 > o.ttlMs * 0.8) log(`  warning: registering took ${r.seconds.toFixed(1)} s, close to the TTL; early instances may expire before their first heartbeat`);
  const out: number[] = [];
  for (let i = 0; i < o.instances; i++) if (done[i]) out.push(i);
  return { registered: out, seconds: r.seconds };
}

/** STATUS_ATTEMPTS_MAX bounds retries of a status read: one failed read (e.g. a reset HTTP/2 session) must not end the phase. */
const STATUS_ATTEMPTS_MAX = 5;

/** statusOf reads node id's status, retrying a failed read up to STATUS_ATTEMPTS_MAX times; failures are recorded in failures. */
function statusOf(c: BenchCluster, id: string, failures: string[]) {
  return retried(() => c.pc.client(id).status({ deadlineMs: 2_000 }), failures);
}

/** retried runs f until it succeeds, at most STATUS_ATTEMPTS_MAX times, recording each failure. */
async function retried<T>(f: () => Promise<T>, failures: string[]): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await f();
    } catch (err) {
      failures.push((err as Error).message);
      if (attempt >= STATUS_ATTEMPTS_MAX) throw err;
      await sleep(100);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
