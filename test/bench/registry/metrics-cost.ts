/**
 * The write path's cost of metrics: two 3-node clusters at once, one with metrics on and one with
 * them off (RAFTMESH_METRICS), take registrations through their leaders in interleaved runs (on,
 * off, off, on, ...), so both see the same machine load. Reports medians of registrations/s and
 * of the agents' CPU time per registration (all three agents of a cluster, from /proc), which a
 * busy machine disturbs far less than throughput.
 *
 *   npx tsx test/bench/registry/metrics-cost.ts [--seconds 4] [--repeats 6] [--concurrency 16] [--control]
 *
 * --control runs both clusters with metrics off (an A/A run): the difference it reports is what
 * two identical clusters differ by on this machine, the noise floor of the A/B figure.
 */
import { parseArgs } from "node:util";
import { runLoad } from "../raft/load.js";
import { median } from "../raft/stats.js";
import { BenchCluster } from "./cluster.js";
import { instanceSpec, TTL_MS_LONG } from "./instances.js";
import { cpuSecondsOf } from "./procs.js";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "4" }, repeats: { type: "string", default: "6" }, concurrency: { type: "string", default: "16" }, control: { type: "boolean", default: false } } });
const SECONDS = Number(values.seconds);
const REPEATS = Number(values.repeats);
const CONCURRENCY = Number(values.concurrency);
/** WARMUP_MS: a discarded first run per cluster (channels, JIT). */
const WARMUP_MS = 1_000;

interface Side {
  readonly name: string;
  readonly cluster: BenchCluster;
  readonly runs: { perSec: number; cpuUsPerOp: number; errors: number }[];
}

async function run(side: Side, tag: string, record: boolean): Promise<void> {
  const leader = await side.cluster.leader();
  const client = side.cluster.pc.client(leader);
  const pids = [...side.cluster.pids.values()];
  const cpu0 = pids.reduce((a, p) => a + cpuSecondsOf(p), 0);
  const r = await runLoad({
    concurrency: CONCURRENCY,
    durationMs: record ? SECONDS * 1000 : WARMUP_MS,
    keyPrefix: `${tag}/`,
    put: async (key) => {
      const seq = Number(key.slice(key.lastIndexOf("/") + 1));
      const service = `${tag}-${Math.floor(seq / 1000)}`;
      await client.register(instanceSpec(seq, service, `${service}-${seq}`, TTL_MS_LONG));
    },
  });
  const cpu = pids.reduce((a, p) => a + cpuSecondsOf(p), 0) - cpu0;
  if (record) side.runs.push({ perSec: r.opsPerSec, cpuUsPerOp: (cpu * 1e6) / Math.max(r.ops, 1), errors: r.errors });
  process.stdout.write(`  ${side.name} ${tag}: ${Math.round(r.opsPerSec)}/s, ${((cpu * 1e6) / Math.max(r.ops, 1)).toFixed(0)} CPU-µs per registration${r.errors ? `, ${r.errors} errors (${r.firstError})` : ""}\n`);
}

async function main(): Promise<void> {
  const on: Side = { name: values.control ? "control    " : "metrics on ", cluster: await BenchCluster.start({ RAFTMESH_METRICS: values.control ? "false" : "true" }), runs: [] };
  const off: Side = { name: "metrics off", cluster: await BenchCluster.start({ RAFTMESH_METRICS: "false" }), runs: [] };
  try {
    await run(on, "warm", false);
    await run(off, "warm", false);
    for (let i = 0; i < REPEATS; i++) for (const s of i % 2 === 0 ? [on, off] : [off, on]) await run(s, `r${i}`, true);
    process.stdout.write(`registrations through the leader, concurrency ${CONCURRENCY}, ${SECONDS} s runs, ${REPEATS} interleaved runs each, medians\n`);
    const row = (s: Side) => ({ perSec: median(s.runs.map((r) => r.perSec)), cpu: median(s.runs.map((r) => r.cpuUsPerOp)), errors: s.runs.reduce((a, r) => a + r.errors, 0) });
    for (const s of [on, off]) {
      const r = row(s);
      process.stdout.write(`${s.name}  ${r.perSec.toFixed(0).padStart(6)} registrations/s  ${r.cpu.toFixed(0).padStart(6)} agent CPU-µs per registration  ${r.errors} errors\n`);
    }
    const a = row(on);
    const b = row(off);
    process.stdout.write(`metrics cost: registrations/s ${((1 - a.perSec / b.perSec) * 100).toFixed(1)} %, CPU per registration ${((a.cpu / b.cpu - 1) * 100).toFixed(1)} % (negative: metrics on measured cheaper)\n`);
  } finally {
    await on.cluster.stop();
    await off.cluster.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`metrics-cost failed: ${(err as Error).stack}\n`);
  process.exitCode = 1;
});
