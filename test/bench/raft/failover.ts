/**
 * Failover measurement for any 3-member cluster behind the Cluster interface. Each round keeps a
 * light open-loop write load on the followers, SIGKILLs the leader at T0, and takes as the failover
 * time the moment the first write *sent after T0* is acknowledged: the outage a client sees. Then
 * the killed member is restarted and the round waits for the cluster to be whole again.
 */
import { ClusterUnhealthyError, FailoverTimeoutError } from "./errors.js";
import { PacedWriter } from "./paced-writer.js";
import { median } from "./stats.js";

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

/** FailoverOptions configure runFailover; every field but cluster has the default named above. */
export interface FailoverOptions {
  readonly cluster: Cluster;
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
  const killedId = await cluster.leader();
  const writer = new PacedWriter({
    put: (key, value) => cluster.put(key, value, { viaNotId: killedId, timeoutMs: putTimeoutMs }),
    intervalMs: options.writeIntervalMs ?? FAILOVER_WRITE_INTERVAL_MS,
    valueBytes: FAILOVER_VALUE_BYTES,
    keyPrefix: `failover/${Date.now()}/r${round}`,
  });
  let killed = false;
  let failoverMs: number;
  try {
    writer.start();
    await sleep(options.warmupMs ?? FAILOVER_WARMUP_MS);
    if (writer.snapshot().acked === 0) throw new ClusterUnhealthyError(options.warmupMs ?? FAILOVER_WARMUP_MS, "no write acknowledged before the kill");
    // mark and the signal happen in one synchronous step (kill signals before its first await), so no put is sent between them.
    const t0Ms = writer.mark();
    const exited = cluster.kill(killedId);
    killed = true;
    await exited;
    const ackMs = await writer.firstAckAfterMark(roundTimeoutMs);
    if (ackMs === undefined) throw new FailoverTimeoutError(round, roundTimeoutMs);
    failoverMs = ackMs - t0Ms;
  } finally {
    await writer.stop();
    if (killed) await cluster.restart(killedId);
  }
  const newLeaderId = await cluster.leader().catch(() => "?");
  const rejoinStartMs = performance.now();
  await waitHealthy(cluster, options.healthyTimeoutMs ?? FAILOVER_HEALTHY_TIMEOUT_MS);
  const rejoinMs = performance.now() - rejoinStartMs;
  return { round, killedId, newLeaderId, failoverMs, writesFailed: writer.snapshot().failed, rejoinMs };
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
