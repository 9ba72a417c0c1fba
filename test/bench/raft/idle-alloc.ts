/**
 * npx tsx test/bench/raft/idle-alloc.ts: what a quiet cluster's nodes allocate, and where. A
 * 3-node cluster (optionally with --instances registered first), left idle, each agent's main
 * thread sampled by V8's sampling heap profiler (heap-sample-preload.mjs) for --seconds; prints
 * KiB/s per node and the leader's top allocation sites by bytes (self), and writes the profiles.
 *
 *   npx tsx test/bench/raft/idle-alloc.ts [--seconds 20] [--instances 0] [--top 25] [--compiled] [--json file]
 *
 * The allocation rate at rest is what V8's memory reducer weighs before it shrinks a heap: a
 * node that allocates "too much" while idle keeps its grown heap until the reducer's watchdog.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ProcessCluster } from "../../integration/harness/process-cluster.js";
import { runLoad } from "./load.js";
import { registrationFor } from "./registration-load.js";

const PRELOAD = fileURLToPath(new URL("./heap-sample-preload.mjs", import.meta.url));
/** SETTLE_MS: after start (and the registrations), the cluster rests this long before sampling. */
const SETTLE_MS = 10_000;
/** INSTANCES_MAX and REGISTER_MS_MAX bound the registrations. */
const INSTANCES_MAX = 200_000;
const REGISTER_MS_MAX = 300_000;

interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: Node[];
}

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "20" },
    instances: { type: "string", default: "0" },
    top: { type: "string", default: "25" },
    compiled: { type: "boolean", default: false },
    json: { type: "string" },
  },
  strict: true,
});
const seconds = Number(values.seconds);
const instances = Number(values.instances);
if (!(seconds > 0 && seconds <= 600)) throw new RangeError(`--seconds: in (0, 600], got "${values.seconds}"`);
if (!Number.isInteger(instances) || instances < 0 || instances > INSTANCES_MAX) throw new RangeError(`--instances: an integer in [0, ${INSTANCES_MAX}]`);
const out = join(tmpdir(), `raftmesh-idle-alloc-${process.pid}`);
mkdirSync(out, { recursive: true });

const pc = await ProcessCluster.create({
  size: 3,
  compiled: values.compiled,
  env: { RAFTMESH_LOG_LEVEL: "warn", NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${PRELOAD}`, RAFTMESH_BENCH_HEAP_SAMPLE_DIR: out, RAFTMESH_BENCH_HEAP_SAMPLE_MS: String(seconds * 1000) },
});
let leaderPid = "";
try {
  pc.startAll();
  const leader = await pc.waitForLeader();
  if (instances > 0) {
    const client = pc.client(leader);
    const r = await runLoad({ put: async (key: string) => void (await client.register(registrationFor(key).request)), concurrency: 64, durationMs: REGISTER_MS_MAX, maxOps: instances, keyPrefix: "idle" });
    console.log(`registered ${r.ops} instances in ${r.seconds.toFixed(1)} s`);
  }
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  for (const id of ["n1", "n2", "n3"]) process.kill(pc.pid(id) as number, "SIGUSR2");
  const until = Date.now() + seconds * 1000 + 10_000;
  while (Date.now() < until && readdirSync(out).filter((f) => f.endsWith(".heapprofile")).length < 3) await new Promise((r) => setTimeout(r, 500));
  leaderPid = String(pc.pid(await pc.waitForLeader()) ?? "");
} finally {
  await pc.cleanup();
}

const files = readdirSync(out).filter((f) => f.endsWith(".heapprofile"));
const results: { pid: string; leader: boolean; kibPerSecond: number; top: { site: string; kib: number; share: number }[] }[] = [];
for (const f of files) {
  const root = JSON.parse(readFileSync(join(out, f), "utf8")).head as Node;
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (n: Node) => {
    if (n.selfSize > 0) {
      const url = n.callFrame.url.replace(/^.*\/(node_modules|src)\//, "$1/").replace(/^file:\/\//, "");
      const site = `${n.callFrame.functionName || "(anonymous)"} ${url}:${n.callFrame.lineNumber + 1}`;
      bySite.set(site, (bySite.get(site) ?? 0) + n.selfSize);
      total += n.selfSize;
    }
    for (const c of n.children) walk(c);
  };
  walk(root);
  const pid = f.replace(".heapprofile", "");
  const top = [...bySite.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top)).map(([site, bytes]) => ({ site, kib: bytes / 1024, share: bytes / total }));
  results.push({ pid, leader: pid === leaderPid, kibPerSecond: total / 1024 / seconds, top });
}
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, node ${process.version}; ${seconds} s sampled at rest, ${instances} instances; profiles in ${out}`);
for (const r of results.sort((a, b) => Number(b.leader) - Number(a.leader))) {
  console.log(`\n${r.leader ? "leader" : "node"} pid ${r.pid}: ${r.kibPerSecond.toFixed(0)} KiB/s allocated (main thread)`);
  if (!r.leader && results.some((x) => x.leader)) continue;
  for (const t of r.top) console.log(`${t.kib.toFixed(0).padStart(8)} KiB ${(t.share * 100).toFixed(1).padStart(5)} %  ${t.site}`);
}
if (values.json) writeFileSync(values.json, JSON.stringify({ machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, seconds, instances, nodes: results }, null, 2));
