/**
 * Phase 1: registrations per second through the leader, closed loop at several concurrencies, each
 * run next to a run of KV puts whose log entries are as large (the baseline: same path through
 * Raft, no registry logic). Runs alternate which goes first per repeat; the table shows medians.
 */
import { type LoadResult, runLoad } from "../raft/load.js";
import { median } from "../raft/stats.js";
import type { BenchCluster } from "./cluster.js";
import { instanceSpec, kvValueBytesMatching, registerEntryBytes, TTL_MS_LONG } from "./instances.js";

/** WARMUP_MS: a discarded first run of each kind opens the channel and warms the JIT on both sides. */
const WARMUP_MS = 1_000;
/** INSTANCES_PER_SERVICE: registrations spread over services of this size (INSTANCES_PER_SERVICE_MAX is 10,000). */
const INSTANCES_PER_SERVICE = 1_000;

/** RegisterOptions size the phase. */
export interface RegisterOptions {
  readonly concurrencies: readonly number[];
  readonly durationMs: number;
  readonly repeats: number;
}

/** RegisterRow is one concurrency's medians. */
export interface RegisterRow {
  readonly concurrency: number;
  readonly registersPerSec: number;
  readonly registerP50Ms: number;
  readonly registerP99Ms: number;
  readonly putsPerSec: number;
  readonly putP50Ms: number;
  readonly putP99Ms: number;
  /** ratio is registersPerSec / putsPerSec. */
  readonly ratio: number;
  readonly errors: number;
}

/** RegisterReport is the phase's result. */
export interface RegisterReport {
  readonly leader: string;
  readonly registerEntryBytes: number;
  readonly kvValueBytes: number;
  readonly rows: RegisterRow[];
  readonly runs: Record<string, LoadResult[]>;
}

/** seqOf reads the sequence number runLoad puts after the last "/" of a key. */
function seqOf(key: string): number {
  return Number(key.slice(key.lastIndexOf("/") + 1));
}

/** runRegisterPhase measures registrations and KV puts on cluster c. */
export async function runRegisterPhase(c: BenchCluster, o: RegisterOptions, log: (line: string) => void): Promise<RegisterReport> {
  const leader = await c.leader();
  const client = c.pc.client(leader);
  const entryBytes = registerEntryBytes(instanceSpec(123_456, "reg-r0-c16-123", "reg-r0-c16-123-123456", TTL_MS_LONG));
  const kvValueBytes = kvValueBytesMatching(entryBytes);
  // Every run registers under its own prefix, so each registration creates a new instance.
  const register = (prefix: string) => async (key: string) => {
    const seq = seqOf(key);
    const service = `${prefix}${Math.floor(seq / INSTANCES_PER_SERVICE)}`;
    await client.register(instanceSpec(seq, service, `${service}-${seq}`, TTL_MS_LONG));
  };
  const put = async (key: string, value: Uint8Array) => {
    await client.put(key, value);
  };
  await runLoad({ put: register("warm-reg-"), concurrency: 16, durationMs: WARMUP_MS, keyPrefix: "warm/" });
  await runLoad({ put, concurrency: 16, durationMs: WARMUP_MS, valueBytes: kvValueBytes, keyPrefix: "warm-kv/" });

  const runs: Record<string, LoadResult[]> = {};
  const record = (name: string, r: LoadResult) => {
    (runs[name] ??= []).push(r);
    log(`  ${name} run ${runs[name].length}: ${Math.round(r.opsPerSec)}/s, p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms${r.errors ? `, ${r.errors} errors (${r.firstError})` : ""}`);
  };
  for (let rep = 0; rep < o.repeats; rep++) {
    for (const concurrency of o.concurrencies) {
      const tag = `r${rep}-c${concurrency}`;
      const regRun = () => runLoad({ put: register(`reg-${tag}-`), concurrency, durationMs: o.durationMs, keyPrefix: `reg-${tag}` });
      const kvRun = () => runLoad({ put, concurrency, durationMs: o.durationMs, valueBytes: kvValueBytes, keyPrefix: `kv-${tag}-` });
      // Alternate who goes first, so neither always runs on the warmer (or busier) cluster.
      if (rep % 2 === 0) {
        record(`register/c${concurrency}`, await regRun());
        record(`kvput/c${concurrency}`, await kvRun());
      } else {
        record(`kvput/c${concurrency}`, await kvRun());
        record(`register/c${concurrency}`, await regRun());
      }
    }
  }
  const rows = o.concurrencies.map((concurrency) => {
    const reg = runs[`register/c${concurrency}`] ?? [];
    const kv = runs[`kvput/c${concurrency}`] ?? [];
    const registersPerSec = median(reg.map((r) => r.opsPerSec));
    const putsPerSec = median(kv.map((r) => r.opsPerSec));
    return {
      concurrency,
      registersPerSec,
      registerP50Ms: median(reg.map((r) => r.p50Ms)),
      registerP99Ms: median(reg.map((r) => r.p99Ms)),
      putsPerSec,
      putP50Ms: median(kv.map((r) => r.p50Ms)),
      putP99Ms: median(kv.map((r) => r.p99Ms)),
      ratio: registersPerSec / putsPerSec,
      errors: [...reg, ...kv].reduce((a, r) => a + r.errors, 0),
    };
  });
  return { leader, registerEntryBytes: entryBytes, kvValueBytes, rows, runs };
}
