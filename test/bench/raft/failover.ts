/**
 * Failover measurement for any 3-member cluster behind the Cluster interface. Each round keeps a
 * light open-loop write load on the followers, fails the leader at T0, and takes as the failover
 * time the moment the first write *sent after T0* is acknowledged: the outage a client sees. Then
 * the member is brought back and the round waits for the cluster to be whole again.
 *
 * Two kinds of failure: "kill" SIGKILLs the leader (a process crash: the kernel closes its
 * connections at once, so its peers see them end) and restarts it; "stop" SIGSTOPs it (a silent
 * failure, as a network partition or a hung host: connections stay open and say nothing, so only
 * timeouts find it) and SIGCONTs it after the failover.
 *
 * Run on its own, it measures a 3-node raftmesh cluster at the agent's defaults:
 *
 *   npx tsx test/bench/raft/failover.ts [--rounds 20] [--kinds kill,stop] [--json out.json]
 *
 * BENCH_LOG_LEVEL=info (with KEEP_CLUSTER=1 to keep the logs) logs each node's elections and the
 * moment it saw its leader's connection end.
 */
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { WRITE_PASSES_MAX } from "../../../src/client/client.js";
import { ClusterUnhealthyError, FailoverTimeoutError } from "./errors.js";
import { PacedWriter } from "./paced-writer.js";
import { formatTable, median, percentile } from "./stats.js";

/**
 * Cluster is what runFailover needs from the system under test. Member ids are the harness's own
 * names (for example "e1"), stable across restarts.
 */
export interface Cluster {
  /** leader resolves to the id of the live member a majority reports as leader; rejects (NoLeaderError) when there is none. */
  leader(): Promise<string>;
  /** kill sends SIGKILL to the member's process synchronously, before its first await, and resolves once the process has exited. */
  kill(id: string): Promise<void>;
  /** restart starts a killed member on its old data and resolves once its process runs; it need not have caught up yet. */
  restart(id: string): Promise<void>;
  /** put writes one key through a live member other than viaNotId; with timeoutMs it must settle (reject) within that time. */
  put(key: string, value: Uint8Array, opts?: ClusterPutOptions): Promise<void>;
  /** pause SIGSTOPs the member synchronously, before its first await (needed for fault "stop"). */
  pause?(id: string): void;
  /** resume SIGCONTs a paused member. */
  resume?(id: string): void;
  /** waitHealthy, when present, resolves once every member runs, all agree on one leader and each accepts a write; it rejects after timeoutMs. */
  waitHealthy?(timeoutMs: number): Promise<void>;
}

/** ClusterPutOptions steer one Cluster.put. */
export interface ClusterPutOptions {
  /** viaNotId excludes one member as the entry point (the leader, to write through followers). */
  readonly viaNotId?: string;
  /** timeoutMs is the put's deadline. */
  readonly timeoutMs?: number;
}

/** FAILOVER_WRITE_INTERVAL_MS is the pace of the light load: one put each 5 ms resolves the failover time to about 5 ms at 200 puts/s, far below saturation. */
export const FAILOVER_WRITE_INTERVAL_MS = 5;

/** FAILOVER_PUT_TIMEOUT_MS is each put's deadline: 500 ms is short against a 1 s election timeout, so a put lost with the old leader does not hold a slot long. */
export const FAILOVER_PUT_TIMEOUT_MS = 500;

/** FAILOVER_WARMUP_MS runs the load before the kill so channels are connected and the followers are answering. */
export const FAILOVER_WARMUP_MS = 500;

/** FAILOVER_ROUND_TIMEOUT_MS gives up on a round: 30 s is many election timeouts, so reaching it means the cluster is stuck. */
export const FAILOVER_ROUND_TIMEOUT_MS = 30_000;

/** FAILOVER_HEALTHY_TIMEOUT_MS bounds the wait for the restarted member to rejoin; etcd replays its WAL and catches up in a few seconds. */
export const FAILOVER_HEALTHY_TIMEOUT_MS = 30_000;

/** FAILOVER_ROUNDS_MAX bounds the number of rounds one call runs. */
export const FAILOVER_ROUNDS_MAX = 100;

/** HEALTH_POLL_MS is the pause between health probes in the fallback used when a Cluster has no waitHealthy. */
const HEALTH_POLL_MS = 100;

/** FAILOVER_VALUE_BYTES matches the load generator's value size. */
const FAILOVER_VALUE_BYTES = 256;

/** FailoverFault is how the leader fails: "kill" (SIGKILL, then restart) or "stop" (SIGSTOP, then SIGCONT). */
export type FailoverFault = "kill" | "stop";

/** FailoverOptions configure runFailover; every field but cluster has the default named above. */
export interface FailoverOptions {
  readonly cluster: Cluster;
  /** fault is how the leader fails (default "kill"). */
  readonly fault?: FailoverFault;
  readonly rounds?: number;
  readonly writeIntervalMs?: number;
  readonly putTimeoutMs?: number;
  readonly warmupMs?: number;
  readonly roundTimeoutMs?: number;
  readonly healthyTimeoutMs?: number;
  /** onRound is told about each round as it ends, for progress output. */
  readonly onRound?: (round: FailoverRound) => void;
}

/** FailoverRound is one kill and its outcome. */
export interface FailoverRound {
  readonly round: number;
  readonly killedId: string;
  /** newLeaderId is the leader after the failover, or "?" when it could not be asked. */
  readonly newLeaderId: string;
  readonly failoverMs: number;
  /** killedAtEpochMs is the wall-clock time of the signal, to line the round up with the nodes' logs. */
  readonly killedAtEpochMs: number;
  /** writesFailed counts puts that failed or timed out during the round, before and after the kill. */
  readonly writesFailed: number;
  /** rejoinMs is how long the restarted member took until the cluster was healthy again. */
  readonly rejoinMs: number;
}

/** FailoverResult lists every round with the median and maximum failover time. */
export interface FailoverResult {
  readonly rounds: readonly FailoverRound[];
  readonly failoverMs: readonly number[];
  readonly medianMs: number;
  readonly maxMs: number;
}

/** runFailover runs the rounds one after another; the cluster must be healthy when it is called. */
export async function runFailover(options: FailoverOptions): Promise<FailoverResult> {
  const rounds = options.rounds ?? 5;
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > FAILOVER_ROUNDS_MAX) {
    throw new RangeError(`rounds ${rounds} is outside [1, ${FAILOVER_ROUNDS_MAX}]`);
  }
  // A cluster just out of a heavy phase may still be working off its backlog: start from health.
  await waitHealthy(options.cluster, options.healthyTimeoutMs ?? FAILOVER_HEALTHY_TIMEOUT_MS);
  const done: FailoverRound[] = [];
  for (let round = 1; round <= rounds; round++) {
    const result = await runRound(options, round);
    done.push(result);
    options.onRound?.(result);
  }
  const failoverMs = done.map((r) => r.failoverMs);
  return { rounds: done, failoverMs, medianMs: median(failoverMs), maxMs: Math.max(...failoverMs) };
}

/** runRound kills the current leader once and measures; it restarts the member even when the measurement fails. */
async function runRound(options: FailoverOptions, round: number): Promise<FailoverRound> {
  const { cluster } = options;
  const putTimeoutMs = options.putTimeoutMs ?? FAILOVER_PUT_TIMEOUT_MS;
  const roundTimeoutMs = options.roundTimeoutMs ?? FAILOVER_ROUND_TIMEOUT_MS;
  const fault = options.fault ?? "kill";
  if (fault === "stop" && (!cluster.pause || !cluster.resume)) throw new RangeError("fault stop needs a cluster with pause and resume");
  const killedId = await cluster.leader();
  const writer = new PacedWriter({
    put: (key, value) => cluster.put(key, value, { viaNotId: killedId, timeoutMs: putTimeoutMs }),
    intervalMs: options.writeIntervalMs ?? FAILOVER_WRITE_INTERVAL_MS,
    valueBytes: FAILOVER_VALUE_BYTES,
    keyPrefix: `failover/${Date.now()}/r${round}`,
  });
  let killed = false;
  let failoverMs: number;
  let killedAtEpochMs = Number.NaN;
  try {
    writer.start();
    await sleep(options.warmupMs ?? FAILOVER_WARMUP_MS);
    if (writer.snapshot().acked === 0) throw new ClusterUnhealthyError(options.warmupMs ?? FAILOVER_WARMUP_MS, "no write acknowledged before the kill");
    // mark and the signal happen in one synchronous step (kill signals before its first await), so no put is sent between them.
    const t0Ms = writer.mark();
    killedAtEpochMs = Date.now();
    if (fault === "stop") {
      cluster.pause?.(killedId);
      killed = true;
    } else {
      const exited = cluster.kill(killedId);
      killed = true;
      await exited;
    }
    const ackMs = await writer.firstAckAfterMark(roundTimeoutMs);
    if (ackMs === undefined) throw new FailoverTimeoutError(round, roundTimeoutMs);
    failoverMs = ackMs - t0Ms;
  } finally {
    await writer.stop();
    if (killed && fault === "stop") cluster.resume?.(killedId);
    else if (killed) await cluster.restart(killedId);
  }
  const newLeaderId = await cluster.leader().catch(() => "?");
  const rejoinStartMs = performance.now();
  await waitHealthy(cluster, options.healthyTimeoutMs ?? FAILOVER_HEALTHY_TIMEOUT_MS);
  const rejoinMs = performance.now() - rejoinStartMs;
  return { round, killedId, newLeaderId, failoverMs, killedAtEpochMs, writesFailed: writer.snapshot().failed, rejoinMs };
}

/** waitHealthy uses the cluster's own check, or else polls until a leader is agreed and a write succeeds. */
async function waitHealthy(cluster: Cluster, timeoutMs: number): Promise<void> {
  if (cluster.waitHealthy) return cluster.waitHealthy(timeoutMs);
  const startMs = performance.now();
  let reason = "not checked yet";
  while (performance.now() - startMs < timeoutMs) {
    try {
      await cluster.leader();
      await cluster.put(`failover/health/${Date.now()}`, new Uint8Array(1), { timeoutMs: FAILOVER_PUT_TIMEOUT_MS });
      return;
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err);
    }
    await sleep(HEALTH_POLL_MS);
  }
  throw new ClusterUnhealthyError(timeoutMs, reason);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** CLI_HEALTHY_TIMEOUT_MS bounds the wait for a freshly started cluster to take writes on every node. */
const CLI_HEALTHY_TIMEOUT_MS = 60_000;

/** FaultSummary is one kind of failure over its rounds, for the report. */
interface FaultSummary {
  readonly fault: FailoverFault;
  readonly rounds: number;
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly maxMs: number;
  readonly failoverMs: readonly number[];
  /** killedAtEpochMs is each round's signal time, to line the rounds up with the nodes' logs. */
  readonly killedAtEpochMs: readonly number[];
  readonly writesFailed: number;
  readonly loadavgBefore: number;
  readonly loadavgAfter: number;
}

/** main measures a 3-node raftmesh cluster at the agent's defaults, each fault kind in turn on the same cluster. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rounds: { type: "string", default: "20" }, kinds: { type: "string", default: "kill,stop" }, "write-rounds": { type: "string" }, json: { type: "string" } },
    strict: true,
  });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > FAILOVER_ROUNDS_MAX) throw new RangeError(`--rounds: an integer in [1, ${FAILOVER_ROUNDS_MAX}], got "${values.rounds}"`);
  const kinds = values.kinds.split(",").map((k) => k.trim());
  for (const k of kinds) if (k !== "kill" && k !== "stop") throw new RangeError(`--kinds: kill and/or stop, got "${k}"`);
  // --write-rounds sets the SDK's writeRounds for the writer's clients (1: each put tries its one endpoint once).
  const writeRounds = values["write-rounds"] === undefined ? undefined : Number(values["write-rounds"]);
  if (writeRounds !== undefined && !(Number.isInteger(writeRounds) && writeRounds >= 1 && writeRounds <= WRITE_PASSES_MAX))
    throw new RangeError(`--write-rounds: an integer in [1, ${WRITE_PASSES_MAX}], got "${values["write-rounds"]}"`);
  const { RaftmeshCluster } = await import("./raftmesh-cluster.js");
  console.log(`${cpus()[0]?.model ?? "unknown"}, ${cpus().length} cores, node ${process.version}, load average ${loadavg()[0]?.toFixed(2)} at start`);
  // BENCH_LOG_LEVEL=info (with KEEP_CLUSTER=1 to keep the logs) shows each round's elections.
  const cluster = await RaftmeshCluster.start(process.env.BENCH_LOG_LEVEL ? { RAFTMESH_LOG_LEVEL: process.env.BENCH_LOG_LEVEL } : {}, writeRounds);
  // A fresh cluster on a busy machine may take a while before every node takes writes.
  await cluster.waitHealthy(CLI_HEALTHY_TIMEOUT_MS);
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void cluster.stop().finally(() => process.exit(130)));
  const summaries: FaultSummary[] = [];
  try {
    for (const fault of kinds as FailoverFault[]) {
      const loadavgBefore = loadavg()[0] ?? 0;
      const r = await runFailover({ cluster, rounds, fault, onRound: (x) => console.log(`${fault} round ${x.round}: ${Math.round(x.failoverMs)} ms (${x.killedId} -> ${x.newLeaderId})`) });
      summaries.push({
        fault,
        rounds,
        medianMs: r.medianMs,
        p90Ms: percentile(r.failoverMs, 90),
        maxMs: r.maxMs,
        failoverMs: r.failoverMs.map((x) => Math.round(x)),
        killedAtEpochMs: r.rounds.map((x) => x.killedAtEpochMs),
        writesFailed: r.rounds.reduce((a, x) => a + x.writesFailed, 0),
        loadavgBefore,
        loadavgAfter: loadavg()[0] ?? 0,
      });
    }
  } finally {
    await cluster.stop();
  }
  const rows = summaries.map((x) => [x.fault, x.rounds, Math.round(x.medianMs), Math.round(x.p90Ms), Math.round(x.maxMs), x.loadavgBefore.toFixed(1), x.loadavgAfter.toFixed(1)]);
  console.log(`\n${formatTable(["fault", "rounds", "median ms", "p90 ms", "max ms", "load before", "load after"], rows)}`);
  if (values.json) writeFileSync(values.json, `${JSON.stringify({ machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }, summaries }, null, 2)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
