/**
 * The cost of TLS on the write path: a 3-node process cluster (real agents, real LevelDB) with
 * plaintext and with mutual TLS, run alternately, the same load each time: `--concurrency` clients
 * put 100-byte values through the leader's client API for `--seconds`. Reports writes/s and latency
 * percentiles per mode and the TLS/plaintext ratio of the medians over the repeats.
 *
 *   npm run bench:tls -- [--seconds 5] [--concurrency 16] [--repeats 2] [--json file]
 */
import { writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RaftmeshClient } from "../../../src/client/index.js";
import { tlsInit } from "../../../src/cli/tls-command.js";
import { ProcessCluster } from "../../integration/harness/process-cluster.js";

/** SECONDS_MAX and CONCURRENCY_MAX bound a run: the bench shares the machine. */
const SECONDS_MAX = 120;
const CONCURRENCY_MAX = 256;
const NODES = ["n1", "n2", "n3"];
const VALUE = "x".repeat(100);

const { values } = parseArgs({ options: { seconds: { type: "string" }, concurrency: { type: "string" }, repeats: { type: "string" }, json: { type: "string" } } });
const seconds = Math.min(SECONDS_MAX, Number(values.seconds ?? 5));
const concurrency = Math.min(CONCURRENCY_MAX, Number(values.concurrency ?? 16));
const repeats = Math.min(10, Number(values.repeats ?? 2));

interface Result {
  readonly mode: "plaintext" | "tls";
  readonly writes: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

function pct(sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number);
}

async function runOnce(mode: "plaintext" | "tls", certs: string): Promise<Result> {
  const ca = join(certs, "ca.pem");
  const cluster = await ProcessCluster.create({ size: 3, clientTls: mode === "tls" ? { ca } : undefined, env: { RAFTMESH_LOG_LEVEL: "warn" } });
  try {
    for (const id of NODES) {
      cluster.start(id, mode === "tls" ? { RAFTMESH_TLS_CA: ca, RAFTMESH_TLS_CERT: join(certs, `${id}.pem`), RAFTMESH_TLS_KEY: join(certs, `${id}-key.pem`) } : {});
    }
    const leader = await cluster.waitForLeader(60_000);
    const client = new RaftmeshClient([cluster.api(leader)], { deadlineMs: 5_000, tls: mode === "tls" ? { ca } : undefined });
    try {
      // Warm-up: connections open and the first entries committed before the clock starts.
      for (let i = 0; i < 20; i++) await client.put(`warm/${i}`, VALUE);
      const latencies: number[] = [];
      let errors = 0;
      const end = performance.now() + seconds * 1000;
      const worker = async (w: number) => {
        for (let i = 0; performance.now() < end; i++) {
          const t0 = performance.now();
          try {
            await client.put(`bench/${w}/${i % 1000}`, VALUE);
            latencies.push(performance.now() - t0);
          } catch {
            errors++;
          }
        }
      };
      const t0 = performance.now();
      await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
      const elapsed = (performance.now() - t0) / 1000;
      latencies.sort((a, b) => a - b);
      return { mode, writes: latencies.length, perSecond: latencies.length / elapsed, p50Ms: pct(latencies, 50), p99Ms: pct(latencies, 99), errors };
    } finally {
      client.close();
    }
  } finally {
    await cluster.cleanup();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
}

const certs = await mkdtemp(join(tmpdir(), "raftmesh-bench-tls-"));
try {
  tlsInit({ dir: certs, nodes: NODES });
  const results: Result[] = [];
  for (let r = 0; r < repeats; r++) {
    for (const mode of ["plaintext", "tls"] as const) {
      const res = await runOnce(mode, certs);
      results.push(res);
      process.stdout.write(`${mode.padEnd(9)} run ${r + 1}: ${res.perSecond.toFixed(0)} writes/s, p50 ${res.p50Ms.toFixed(1)} ms, p99 ${res.p99Ms.toFixed(1)} ms, ${res.writes} writes, ${res.errors} errors\n`);
    }
  }
  const of = (mode: string, f: (r: Result) => number) => median(results.filter((r) => r.mode === mode).map(f));
  const summary = {
    seconds,
    concurrency,
    repeats,
    plaintext: { perSecond: of("plaintext", (r) => r.perSecond), p50Ms: of("plaintext", (r) => r.p50Ms), p99Ms: of("plaintext", (r) => r.p99Ms) },
    tls: { perSecond: of("tls", (r) => r.perSecond), p50Ms: of("tls", (r) => r.p50Ms), p99Ms: of("tls", (r) => r.p99Ms) },
  };
  process.stdout.write(
    `median of ${repeats}: plaintext ${summary.plaintext.perSecond.toFixed(0)} writes/s (p50 ${summary.plaintext.p50Ms.toFixed(1)} ms), ` +
      `TLS ${summary.tls.perSecond.toFixed(0)} writes/s (p50 ${summary.tls.p50Ms.toFixed(1)} ms): TLS/plaintext throughput ${(summary.tls.perSecond / summary.plaintext.perSecond).toFixed(2)}\n`,
  );
  if (values.json) writeFileSync(values.json, `${JSON.stringify({ summary, results }, null, 2)}\n`);
} finally {
  await rm(certs, { recursive: true, force: true });
}
