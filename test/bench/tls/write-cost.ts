/**
 * The cost of TLS on the write path: a 3-node process cluster (real agents, real LevelDB) with
 * plaintext and with mutual TLS, run alternately, the same load each time: `--concurrency` clients
 * put 100-byte values through the leader's client API for `--seconds`. Reports writes/s and latency
 * percentiles per mode, the server CPU per write (user + system CPU-seconds of the three node
 * processes, all their threads, from /proc/<pid>/stat over the measured window, divided by the
 * writes; and the leader's alone), the TLS/plaintext ratios of the medians over the repeats, and the
 * load average (a loaded machine inflates both modes' latency, less their CPU per write).
 *
 *   npm run bench:tls -- [--seconds 5] [--concurrency 16] [--repeats 2] [--json file]
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
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
  /** cpuSeconds: user + system CPU of the three node processes over the measured window. */
  readonly cpuSeconds: number;
  /** cpuMsPerWrite: cpuSeconds per acknowledged write, in ms; leaderCpuMsPerWrite the leader's share alone. */
  readonly cpuMsPerWrite: number;
  readonly leaderCpuMsPerWrite: number;
}

/** CLK_TCK is the unit of /proc/<pid>/stat's utime and stime (100 on Linux; getconf says). */
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** cpuSeconds is a process's user + system CPU so far (every thread: Raft, gRPC, the balancer's workers), from /proc. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) throw new Error("a node is not running");
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after "(comm)": state is the 3rd field, utime the 14th and stime the 15th.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
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
      const cpu = () => NODES.map((id) => cpuSeconds(cluster.pid(id)));
      const cpu0 = cpu();
      const t0 = performance.now();
      await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
      const elapsed = (performance.now() - t0) / 1000;
      const cpu1 = cpu();
      const used = cpu1.map((c, i) => c - cpu0[i]!);
      const total = used.reduce((a, b) => a + b, 0);
      const leaderUsed = used[NODES.indexOf(leader)]!;
      latencies.sort((a, b) => a - b);
      const n = latencies.length;
      return { mode, writes: n, perSecond: n / elapsed, p50Ms: pct(latencies, 50), p99Ms: pct(latencies, 99), errors, cpuSeconds: total, cpuMsPerWrite: (total * 1000) / n, leaderCpuMsPerWrite: (leaderUsed * 1000) / n };
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
const loadBefore = loadavg();
try {
  tlsInit({ dir: certs, nodes: NODES });
  const results: Result[] = [];
  for (let r = 0; r < repeats; r++) {
    for (const mode of ["plaintext", "tls"] as const) {
      const res = await runOnce(mode, certs);
      results.push(res);
      process.stdout.write(
        `${mode.padEnd(9)} run ${r + 1}: ${res.perSecond.toFixed(0)} writes/s, p50 ${res.p50Ms.toFixed(1)} ms, p99 ${res.p99Ms.toFixed(1)} ms, ${res.writes} writes, ${res.errors} errors; ` +
          `server CPU ${res.cpuSeconds.toFixed(2)} s = ${res.cpuMsPerWrite.toFixed(3)} ms/write (leader ${res.leaderCpuMsPerWrite.toFixed(3)})\n`,
      );
    }
  }
  const of = (mode: string, f: (r: Result) => number) => median(results.filter((r) => r.mode === mode).map(f));
  const summary = {
    seconds,
    concurrency,
    repeats,
    plaintext: { perSecond: of("plaintext", (r) => r.perSecond), p50Ms: of("plaintext", (r) => r.p50Ms), p99Ms: of("plaintext", (r) => r.p99Ms), cpuMsPerWrite: of("plaintext", (r) => r.cpuMsPerWrite), leaderCpuMsPerWrite: of("plaintext", (r) => r.leaderCpuMsPerWrite) },
    tls: { perSecond: of("tls", (r) => r.perSecond), p50Ms: of("tls", (r) => r.p50Ms), p99Ms: of("tls", (r) => r.p99Ms), cpuMsPerWrite: of("tls", (r) => r.cpuMsPerWrite), leaderCpuMsPerWrite: of("tls", (r) => r.leaderCpuMsPerWrite) },
    cpuPerWriteRatio: 0,
    loadavg: { before: loadBefore.map((x) => Number(x.toFixed(2))), after: loadavg().map((x) => Number(x.toFixed(2))) },
  };
  summary.cpuPerWriteRatio = summary.tls.cpuMsPerWrite / summary.plaintext.cpuMsPerWrite;
  process.stdout.write(
    `median of ${repeats}: plaintext ${summary.plaintext.perSecond.toFixed(0)} writes/s (p50 ${summary.plaintext.p50Ms.toFixed(1)} ms), ` +
      `TLS ${summary.tls.perSecond.toFixed(0)} writes/s (p50 ${summary.tls.p50Ms.toFixed(1)} ms): TLS/plaintext throughput ${(summary.tls.perSecond / summary.plaintext.perSecond).toFixed(2)}\n` +
      `server CPU per write (3 nodes): plaintext ${summary.plaintext.cpuMsPerWrite.toFixed(3)} ms, TLS ${summary.tls.cpuMsPerWrite.toFixed(3)} ms: TLS/plaintext ${summary.cpuPerWriteRatio.toFixed(2)}; ` +
      `leader alone ${summary.plaintext.leaderCpuMsPerWrite.toFixed(3)} / ${summary.tls.leaderCpuMsPerWrite.toFixed(3)} ms; load average before ${summary.loadavg.before.join(" ")}, after ${summary.loadavg.after.join(" ")}\n`,
  );
  if (values.json) writeFileSync(values.json, `${JSON.stringify({ summary, results }, null, 2)}\n`);
} finally {
  await rm(certs, { recursive: true, force: true });
}
