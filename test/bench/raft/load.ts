/**
 * A closed-loop load generator: `concurrency` workers, each sending one put and waiting for its
 * answer before sending the next, until either the op budget or the time budget is spent. It knows
 * nothing about the system under test; the caller hands in `put`.
 */
import { randomBytes } from "node:crypto";
import { summarizeLatencies } from "./stats.js";

/** LOAD_VALUE_BYTES_DEFAULT is the value size of every put: 256 bytes is a typical registry record. */
export const LOAD_VALUE_BYTES_DEFAULT = 256;

/** LOAD_DURATION_MS_DEFAULT bounds a run in time when the caller gives no duration: 5 s smooths out fsync jitter. */
export const LOAD_DURATION_MS_DEFAULT = 5_000;

/** LOAD_OPS_MAX_DEFAULT bounds a run in ops when the caller gives no budget: far above what 5 s can reach on this hardware, so time is what stops it. */
export const LOAD_OPS_MAX_DEFAULT = 1_000_000;

/** LOAD_OPS_LIMIT is the largest op budget accepted: latencies are kept in one Float64Array, and 10 M samples cost 80 MB. */
export const LOAD_OPS_LIMIT = 10_000_000;

/** LOAD_CONCURRENCY_LIMIT is the most workers accepted: more than this measures the client's queueing, not the server. */
export const LOAD_CONCURRENCY_LIMIT = 4_096;

/** LoadOptions configure one runLoad call. */
export interface LoadOptions {
  /** put writes one key; it must settle (resolve or reject) on its own, for example by a gRPC deadline. */
  readonly put: (key: string, value: Uint8Array) => Promise<void>;
  /** concurrency is the number of workers, each with at most one put outstanding; 1 ≤ concurrency ≤ LOAD_CONCURRENCY_LIMIT. */
  readonly concurrency: number;
  readonly valueBytes?: number;
  /** durationMs stops workers from starting new puts once this much time has passed. */
  readonly durationMs?: number;
  /** maxOps stops workers from starting new puts once this many have started (successes and failures both count). */
  readonly maxOps?: number;
  /** keyPrefix starts every key; a fresh random prefix by default, so two runs never overwrite each other's keys. */
  readonly keyPrefix?: string;
}

/** LoadResult is what one run measured; latencies count successful puts only. */
export interface LoadResult {
  readonly concurrency: number;
  /** ops counts puts that succeeded. */
  readonly ops: number;
  readonly errors: number;
  /** firstError is the first failure's message, to tell one cause from many; undefined when errors is 0. */
  readonly firstError: string | undefined;
  /** seconds runs from the first put sent to the last put settled. */
  readonly seconds: number;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** clientCpuPercent is this process's CPU time over the run's wall time (100 = one core busy): on a small machine the client competes with the servers. */
  readonly clientCpuPercent: number;
}

/** runLoad runs the closed loop and resolves when every worker has stopped. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { put, concurrency } = options;
  const valueBytes = options.valueBytes ?? LOAD_VALUE_BYTES_DEFAULT;
  const durationMs = options.durationMs ?? LOAD_DURATION_MS_DEFAULT;
  const maxOps = options.maxOps ?? LOAD_OPS_MAX_DEFAULT;
  checkOptions(concurrency, valueBytes, durationMs, maxOps);
  const keyPrefix = options.keyPrefix ?? `bench/${randomBytes(4).toString("hex")}`;
  // One random value shared by every put: the servers under test neither compress nor deduplicate.
  const value = new Uint8Array(randomBytes(valueBytes));
  const latenciesMs = new Float64Array(maxOps);
  let started = 0;
  let ops = 0;
  let errors = 0;
  let firstError: string | undefined;

  const startCpu = process.cpuUsage();
  const startNs = process.hrtime.bigint();
  const deadlineNs = startNs + BigInt(Math.round(durationMs * 1e6));
  const worker = async () => {
    // Invariant: started ≤ maxOps, so the loop runs at most maxOps times across all workers.
    while (started < maxOps && process.hrtime.bigint() < deadlineNs) {
      const seq = started++;
      const sentNs = process.hrtime.bigint();
      try {
        await put(`${keyPrefix}/${seq}`, value);
        latenciesMs[ops++] = Number(process.hrtime.bigint() - sentNs) / 1e6;
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
  const cpu = process.cpuUsage(startCpu);

  const summary = summarizeLatencies(latenciesMs.subarray(0, ops));
  return {
    concurrency,
    ops,
    errors,
    firstError,
    seconds,
    opsPerSec: seconds > 0 ? ops / seconds : 0,
    p50Ms: summary.p50Ms,
    p99Ms: summary.p99Ms,
    maxMs: summary.maxMs,
    clientCpuPercent: seconds > 0 ? (cpu.user + cpu.system) / 1e4 / seconds : 0,
  };
}

/** checkOptions rejects budgets outside the documented ranges; they are programmer errors. */
function checkOptions(concurrency: number, valueBytes: number, durationMs: number, maxOps: number): void {
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > LOAD_CONCURRENCY_LIMIT) {
    throw new RangeError(`concurrency ${concurrency} is outside [1, ${LOAD_CONCURRENCY_LIMIT}]`);
  }
  if (!Number.isInteger(valueBytes) || valueBytes < 0) throw new RangeError(`valueBytes ${valueBytes} is not a size`);
  if (!(durationMs > 0) || !Number.isFinite(durationMs)) throw new RangeError(`durationMs ${durationMs} must be positive and finite`);
  if (!Number.isInteger(maxOps) || maxOps < 1 || maxOps > LOAD_OPS_LIMIT) {
    throw new RangeError(`maxOps ${maxOps} is outside [1, ${LOAD_OPS_LIMIT}]`);
  }
}
