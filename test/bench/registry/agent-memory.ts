/**
 * Where a loaded agent's memory goes: a cluster of compiled agents (npm run build first), n
 * instances registered through `sessions` clients at concurrency 64, then each agent's RSS beside
 * its V8 heap (used, total) and external memory from its own /metrics. With --heap-snapshot the
 * leader writes a V8 heap snapshot into the repository root (Node's --heapsnapshot-signal), to be
 * read with Chrome's DevTools or a script.
 *   npx tsx test/bench/registry/agent-memory.ts [--instances 100000] [--sessions 10000] [--nodes 1]
 *     [--heap-snapshot] [--forced-gc] [--settle-seconds 5] [--hold-seconds 0] [--agent-env N=V,...]
 *     [--json out.json]
 * It also counts the agents' CPU over the registrations (/proc), so a setting that trades memory
 * for collector work shows its price; --agent-env adds variables to the agents' environment only.
 * --hold-seconds keeps the cluster running after the figures, to read /proc/<pid>/smaps by hand.
 * --rest-curve 60,120,180 then reads each agent's RSS (from /proc only: a /metrics scrape allocates
 * in the agent, which is what decides whether V8 shrinks an idle heap) at those seconds after the
 * load: V8's memory reducer shrinks a heap only once it finds the allocation rate low, or 100 s
 * after its last full collection whatever the rate (its watchdog), so "at rest" depends on when.
 * --forced-gc also reads each agent's memory after two forced full collections (forced-gc.ts; run
 * with NODE_OPTIONS=--experimental-websocket): the comparable figure, where at-rest RSS swings
 * with the collector's timing.
 */
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { RaftmeshClient } from "../../../src/client/index.js";
import { ProcessCluster, REPO_ROOT } from "../../integration/harness/process-cluster.js";
import { runLoad } from "../raft/load.js";
import { instanceSpec, TTL_MS_LONG } from "./instances.js";
import { type ForcedGcFigures, forcedGcAvailable, forcedGcMemory } from "./forced-gc.js";
import { parseAgentEnv } from "../raft/agent-env.js";
import { procCpuSeconds } from "../raft/proc-cpu.js";
import { rssBytesOf } from "./procs.js";

/** REGISTER_TIME_MS_MAX bounds the registrations in time; the report says how many were made. */
const REGISTER_TIME_MS_MAX = 600_000;
/** SETTLE_MS lets the agents finish applying and collect garbage before memory is read. */
const SETTLE_MS = 5_000;
/** HEAP_SNAPSHOT_WAIT_MS bounds the wait for the heap snapshot file. */
const HEAP_SNAPSHOT_WAIT_MS = 120_000;

const { values } = parseArgs({
  options: {
    instances: { type: "string", default: "100000" },
    sessions: { type: "string", default: "10000" },
    nodes: { type: "string", default: "1" },
    "heap-snapshot": { type: "boolean", default: false },
    "forced-gc": { type: "boolean", default: false },
    "hold-seconds": { type: "string", default: "0" },
    "settle-seconds": { type: "string", default: String(SETTLE_MS / 1000) },
    "agent-env": { type: "string", default: "" },
    "rest-curve": { type: "string", default: "" },
    json: { type: "string" },
  },
  strict: true,
});
const agentEnv = parseAgentEnv(values["agent-env"]);
const positive = (name: string, raw: string): number => {
  const x = Number(raw);
  if (!Number.isInteger(x) || x < 1) throw new Error(`--${name} must be a positive integer, got ${raw}`);
  return x;
};
const instances = positive("instances", values.instances);
const sessions = positive("sessions", values.sessions);
const nodes = positive("nodes", values.nodes);
/** REST_CURVE_SECONDS_MAX bounds the curve (the bench stops by itself). */
const REST_CURVE_SECONDS_MAX = 1_800;
const restCurve = values["rest-curve"]
  .split(",")
  .filter((x) => x !== "")
  .map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 1 || n > REST_CURVE_SECONDS_MAX) throw new Error(`--rest-curve: whole seconds in [1, ${REST_CURVE_SECONDS_MAX}], got ${x}`);
    return n;
  })
  .sort((a, b) => a - b);
if (values["forced-gc"] && !forcedGcAvailable()) {
  console.error("--forced-gc needs the global WebSocket: run with NODE_OPTIONS=--experimental-websocket");
  process.exit(2);
}

const pc = await ProcessCluster.create({
  size: nodes,
  compiled: true,
  env: { ...agentEnv, RAFTMESH_LOG_LEVEL: "warn", ...(values["heap-snapshot"] ? { NODE_OPTIONS: "--heapsnapshot-signal=SIGUSR2" } : {}) },
});

/** memoryOf is node id's RSS (from /proc) and its V8 figures (from its /metrics), in MiB. */
async function memoryOf(id: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${pc.specs.get(id)?.adminPort}/metrics`)).text();
  const metric = (name: string) => Number(text.match(new RegExp(`^${name} (\\S+)`, "m"))?.[1]) / 2 ** 20;
  const mib = (x: number) => Math.round(x * 10) / 10;
  // The balancing workers' isolates, summed over the workers (not in the nodejs_heap_* series).
  const workers = (kind: string) => [...text.matchAll(new RegExp(`^raftmesh_balancer_worker_heap_bytes\\{[^}]*kind="${kind}"[^}]*\\} (\\S+)`, "gm"))].reduce((sum, m) => sum + Number(m[1]), 0) / 2 ** 20;
  return {
    rssMiB: mib(rssBytesOf(pc.pid(id) as number) / 2 ** 20),
    heapUsedMiB: mib(metric("nodejs_heap_size_used_bytes")),
    heapTotalMiB: mib(metric("nodejs_heap_size_total_bytes")),
    externalMiB: mib(metric("nodejs_external_memory_bytes")),
    workerHeapUsedMiB: mib(workers("used")),
    workerHeapTotalMiB: mib(workers("total")),
  };
}

try {
  pc.startAll();
  const leader = await pc.waitForLeader(60_000);
  const before = Object.fromEntries(await Promise.all(pc.runningIds().map(async (id) => [id, await memoryOf(id)] as const)));
  const cpuBefore = pc.runningIds().reduce((sum, id) => sum + procCpuSeconds(pc.pid(id)), 0);
  // Many sessions over one shared connection: the figure is the registry's, not 10,000 sockets' (~20 KB each).
  const clients = Array.from({ length: sessions }, () => new RaftmeshClient([pc.api(leader)], { deadlineMs: 10_000, connection: "shared" }));
  const r = await runLoad({
    concurrency: 64,
    maxOps: instances,
    durationMs: REGISTER_TIME_MS_MAX,
    keyPrefix: "m",
    put: async (key) => {
      const i = Number(key.slice(key.lastIndexOf("/") + 1));
      const service = `mem-${Math.floor(i / 100)}`;
      await (clients[i % sessions] as RaftmeshClient).register(instanceSpec(i, service, `${service}-${i % 100}`, TTL_MS_LONG));
    },
  });
  for (const c of clients) c.close();
  const loadEnded = Date.now();
  // The three agents' CPU over the registrations (all threads, from /proc): a setting that trades
  // memory for collector work shows here, where registrations/s alone is noisy.
  const serverCpuSeconds = pc.runningIds().reduce((sum, id) => sum + procCpuSeconds(pc.pid(id)), 0) - cpuBefore;
  const cpuMsPerRegistration = r.ops > 0 ? (serverCpuSeconds * 1000) / r.ops : 0;
  console.log(`registered ${r.ops}/${instances} through ${sessions} sessions in ${r.seconds.toFixed(1)} s (${Math.round(r.opsPerSec)}/s, ${cpuMsPerRegistration.toFixed(3)} ms of server CPU each)${r.errors ? `, ${r.errors} errors (${r.firstError})` : ""}`);
  await new Promise((resolve) => setTimeout(resolve, Number(values["settle-seconds"]) * 1000));
  const after = Object.fromEntries(await Promise.all(pc.runningIds().map(async (id) => [id, await memoryOf(id)] as const)));
  for (const id of pc.runningIds()) console.log(`${id}${id === leader ? " (leader)" : ""}: before ${JSON.stringify(before[id])}, after ${JSON.stringify(after[id])}`);
  const curve: { seconds: number; rssMiB: Record<string, number> }[] = [];
  for (const seconds of restCurve) {
    const wait = loadEnded + seconds * 1000 - Date.now();
    if (wait < 0) continue;
    await new Promise((resolve) => setTimeout(resolve, wait));
    const rssMiB = Object.fromEntries(pc.runningIds().map((id) => [id, Math.round((rssBytesOf(pc.pid(id) as number) / 2 ** 20) * 10) / 10]));
    curve.push({ seconds, rssMiB });
    console.log(`${seconds} s after the load: RSS ${pc.runningIds().map((id) => `${id}${id === leader ? "*" : ""} ${rssMiB[id]} MiB`).join(", ")}`);
  }
  const forcedGc: Record<string, ForcedGcFigures> = {};
  if (values["forced-gc"]) {
    for (const id of pc.runningIds()) {
      forcedGc[id] = await forcedGcMemory(pc.pid(id) as number);
      console.log(`${id}${id === leader ? " (leader)" : ""} after two forced full GCs: ${JSON.stringify(forcedGc[id])}`);
    }
  }
  if (values["heap-snapshot"]) {
    const pid = pc.pid(leader) as number;
    process.kill(pid, "SIGUSR2");
    const started = Date.now();
    // The agents run in the repository root (ProcessCluster's cwd), where Node writes the file.
    const mine = () => readdirSync(REPO_ROOT).filter((f) => f.endsWith(".heapsnapshot") && f.includes(`.${pid}.`)).map((f) => join(REPO_ROOT, f));
    // The file appears when V8 starts writing it: wait until it exists and stops growing.
    let size = -1;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const f = mine()[0];
      const now = f === undefined ? -1 : statSync(f).size;
      if ((now > 0 && now === size) || Date.now() - started > HEAP_SNAPSHOT_WAIT_MS) break;
      size = now;
    }
    console.log(`heap snapshot: ${mine().join(", ") || "none within the wait"}`);
  }
  const holdSeconds = Number(values["hold-seconds"]);
  if (holdSeconds > 0) {
    console.log(`holding for ${holdSeconds} s: pids ${pc.runningIds().map((id) => `${id}=${pc.pid(id)}`).join(" ")}`);
    await new Promise((resolve) => setTimeout(resolve, holdSeconds * 1000));
  }
  const report = { machine: { loadavg: loadavg() }, agentEnv, instances, sessions, nodes, registered: r.ops, seconds: r.seconds, registersPerSec: r.opsPerSec, serverCpuSeconds, cpuMsPerRegistration, errors: r.errors, leader, before, after, restCurve: curve, forcedGc };
  if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
} finally {
  await pc.cleanup();
}
