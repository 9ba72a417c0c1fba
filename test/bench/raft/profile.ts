/**
 * npm run bench:raft-profile: a 3-node raftmesh cluster whose agents run under `node --cpu-prof`,
 * (through a preload, since NODE_OPTIONS refuses --cpu-prof), a closed loop of puts (256 bytes unless --value-bytes) to the leader at one concurrency, then a clean stop (so V8 writes
 * the profiles) and a table of the leader's and one follower's top frames by self time, counted over the load window
 * only (V8's profile clock and process.hrtime are both CLOCK_MONOTONIC on Linux), plus every
 * node's CPU over the window from /proc.
 *
 *   npm run bench:raft-profile -- [--concurrency 64] [--seconds 8] [--op put|register] [--preload 0] [--value-bytes 256]
 *                                 [--out dir] [--top 30]
 *
 * --op register sends the registrations bench.ts compares with puts (registration-load.ts) instead.
 * --preload N registers N instances first (at concurrency 64, not profiled), for what a loaded
 * registry adds to each write.
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ProcessCluster } from "../../integration/harness/process-cluster.js";
import { LOAD_VALUE_BYTES_DEFAULT, runLoad } from "./load.js";
import { registrationFor } from "./registration-load.js";
import { procCpuSeconds, threadCpuDelta, threadCpuSeconds } from "./proc-cpu.js";
import { type Profile, profileTable } from "./profile-table.js";

/** PRELOAD starts V8's profiler in each agent (see the file). */
const PRELOAD = fileURLToPath(new URL("./cpu-profile-preload.mjs", import.meta.url));
/** PRELOAD_MAX bounds --preload (the registry holds at most 10,000 instances per service, and the load spreads them over 100). */
const PRELOAD_MAX = 200_000;
/** PRELOAD_MS_MAX bounds the preload in time. */
const PRELOAD_MS_MAX = 300_000;

/** WARMUP_MS: a discarded first run gets the JIT past its cold start before the window opens. */
const WARMUP_MS = 2_000;

const { values } = parseArgs({
  options: {
    concurrency: { type: "string", default: "64" },
    seconds: { type: "string", default: "8" },
    out: { type: "string" },
    top: { type: "string", default: "30" },
    op: { type: "string", default: "put" },
    preload: { type: "string", default: "0" },
    "value-bytes": { type: "string", default: String(LOAD_VALUE_BYTES_DEFAULT) },
    // V8 or Node flags for the agents alone (not this load generator), e.g. "--max-semi-space-size=32".
    "agent-node-options": { type: "string", default: "" },
  },
  strict: true,
});
const concurrency = Number(values.concurrency);
const preload = Number(values.preload);
if (!Number.isInteger(preload) || preload < 0 || preload > PRELOAD_MAX) throw new RangeError(`--preload: an integer in [0, ${PRELOAD_MAX}], got "${values.preload}"`);
if (values.op !== "put" && values.op !== "register") throw new RangeError(`--op: put or register, got "${values.op}"`);
const valueBytes = Number(values["value-bytes"]);
if (!Number.isInteger(valueBytes) || valueBytes < 1) throw new RangeError(`--value-bytes: a positive integer, got "${values["value-bytes"]}"`);
const durationMs = Number(values.seconds) * 1000;
const top = Number(values.top);
const out = values.out ?? join(tmpdir(), `raftmesh-prof-${process.pid}`);
mkdirSync(out, { recursive: true });

/** counters reads the counts this table reports from a node's /metrics: synced writes and acknowledged appends. */
async function counters(adminPort: number): Promise<{ fsyncs: number; appendAcks: number }> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const sum = (re: RegExp) => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
  return {
    fsyncs: sum(/^raftmesh_storage_fsync_duration_seconds_count(?:\{[^}]*\})? (\S+)$/gm),
    appendAcks: sum(/^raftmesh_raft_append_round_trip_seconds_count(?:\{[^}]*\})? (\S+)$/gm),
  };
}

const pc = await ProcessCluster.create({ size: 3, env: { RAFTMESH_LOG_LEVEL: "warn", NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} ${values["agent-node-options"]} --import ${PRELOAD}`, RAFTMESH_BENCH_CPU_PROF_DIR: out } });
try {
  pc.startAll();
  // Three agents compiling through tsx on a busy shared machine have taken over 30 s to elect.
  const leader = await pc.waitForLeader(120_000);
  const client = pc.client(leader);
  const put =
    values.op === "register"
      ? async (key: string) => {
          await client.register(registrationFor(key).request);
        }
      : async (key: string, value: Uint8Array) => {
          await client.put(key, value);
        };
  if (preload > 0) {
    const r = await runLoad({ put: async (key: string) => void (await client.register(registrationFor(key).request)), concurrency: 64, durationMs: PRELOAD_MS_MAX, maxOps: preload, keyPrefix: "preload" });
    console.log(`preloaded ${r.ops} instances in ${r.seconds.toFixed(1)} s (${r.errors} errors)`);
  }
  await runLoad({ put, concurrency: Math.min(16, concurrency), valueBytes, durationMs: WARMUP_MS });
  const pids = new Map(pc.runningIds().map((id) => [id, pc.pid(id) as number]));
  const cpu0 = new Map([...pids].map(([id, pid]) => [id, procCpuSeconds(pid)]));
  const threads0 = new Map([...pids].map(([id, pid]) => [id, threadCpuSeconds(pid)]));
  const adminPort = (id: string) => (pc.specs.get(id) as { adminPort: number }).adminPort;
  const m0 = new Map(await Promise.all(pc.runningIds().map(async (id) => [id, await counters(adminPort(id))] as const)));
  const fromUs = Number(process.hrtime.bigint() / 1000n);
  const r = await runLoad({ put, concurrency, valueBytes, durationMs });
  const toUs = Number(process.hrtime.bigint() / 1000n);
  const cpu = [...pids].map(([id, pid]) => [id, procCpuSeconds(pid) - (cpu0.get(id) as number)] as const);
  const threads = [...pids].map(([id, pid]) => [id, threadCpuDelta(threads0.get(id) as Map<string, number>, threadCpuSeconds(pid))] as const);
  const serverCpu = cpu.reduce((a, [, s]) => a + s, 0);
  console.log(
    `c=${concurrency}: ${Math.round(r.opsPerSec)} ${values.op}s/s, p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, errors ${r.errors}; load average ${loadavg()[0]?.toFixed(2)}`,
  );
  console.log(`server CPU ${serverCpu.toFixed(2)} s (${cpu.map(([id, s]) => `${id}${id === leader ? "*" : ""} ${s.toFixed(2)}`).join(", ")}), ${((1000 * serverCpu) / r.ops).toFixed(3)} ms per put`);
  // Where each agent's CPU went, by thread: the main thread against V8's helpers and the thread pool.
  for (const [id, byName] of threads) {
    const perOp = (s: number) => ((1000 * s) / r.ops).toFixed(3);
    const main = byName.find(([name]) => name === "main")?.[1] ?? 0;
    const others = byName.filter(([name]) => name !== "main");
    const rest = others.reduce((a, [, s]) => a + s, 0);
    const largest = others.slice(0, 4).map(([, s]) => perOp(s));
    console.log(`${id}${id === leader ? "*" : ""} CPU ms per ${values.op}: main thread ${perOp(main)}, ${others.length} other threads ${perOp(rest)} (largest ${largest.join(", ")}; the profiler's own thread is one)`);
  }
  for (const id of pc.runningIds()) {
    const a = m0.get(id) as { fsyncs: number; appendAcks: number };
    const b = await counters(adminPort(id));
    console.log(
      `${id}${id === leader ? "*" : ""}: ${((b.fsyncs - a.fsyncs) / r.ops).toFixed(3)} synced writes per put${id === leader ? `, ${((b.appendAcks - a.appendAcks) / r.ops).toFixed(3)} appends acknowledged per put (all peers)` : ""}`,
    );
  }
  for (const id of pc.runningIds()) await pc.stop(id);
  // The leader first, then one follower: a follower's cost per put is paid twice in a 3-node cluster.
  const follower = [...pids.keys()].find((id) => id !== leader) as string;
  for (const [role, id] of [["leader", leader], ["follower", follower]] as const) {
    const pid = pids.get(id) as number;
    const file = readdirSync(out).find((f) => f === `${pid}.cpuprofile`);
    if (!file) throw new Error(`no profile for the ${role} (pid ${pid}) in ${out}`);
    const profile = JSON.parse(readFileSync(join(out, file), "utf8")) as Profile;
    console.log(`\n${role} ${id} profile ${join(out, file)}\n${profileTable(profile, fromUs, toUs, top)}`);
  }
} finally {
  await pc.cleanup();
}
