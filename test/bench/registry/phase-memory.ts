/**
 * Phase 3: memory of nodes holding n instances (100 per service, long TTL so nothing expires),
 * registered by `sessions` clients (each its own at-most-once session in the replicated session
 * table), plus `keys` KV keys:
 * every agent's RSS before and after registering them, bytes per instance, and the registry's
 * totals. Then, optionally, a new learner joins with an empty data directory and the time until
 * it has applied the leader's commit index is measured (it must catch up through a snapshot,
 * since the leader's log was compacted every RAFTMESH_SNAPSHOT_ENTRIES entries).
 */
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { RaftmeshClient } from "../../../src/client/index.js";
import { runLoad } from "../raft/load.js";
import { procCpuSeconds } from "../raft/proc-cpu.js";
import { waitFor } from "../../integration/harness/process-cluster.js";
import type { BenchCluster } from "./cluster.js";
import { instanceSpec, TTL_MS_LONG } from "./instances.js";
import { rssBytesOf } from "./procs.js";
import { countHealth, type HealthTotals, waitApplied } from "./registry-stats.js";

/** INSTANCES_PER_SERVICE: 100 instances per service, so 100,000 instances make 1,000 services. */
const INSTANCES_PER_SERVICE = 100;
/** REGISTER_TIME_MS_MAX bounds the registrations in time; the report says how many were made. */
const REGISTER_TIME_MS_MAX = 300_000;
/** SETTLE_MS lets the agents finish start-up (and later, snapshots and GC) before RSS is read. */
const SETTLE_MS = 3_000;
/**
 * REST_MS: RSS is read again after this long with no load ("at rest"). V8 gives a fragmented heap
 * back only through its memory reducer, which starts ~8 s after a major GC at a low allocation
 * rate and runs two or three GCs: the figure a quiet registry shows, next to the one just after load.
 */
const REST_MS = 30_000;
/** CONVERGE_MS_MAX bounds the wait for followers to apply everything. */
const CONVERGE_MS_MAX = 60_000;
/** LEARNER_JOIN_WAIT_MS bounds the wait for the new node to start and ask to be added. */
const LEARNER_JOIN_WAIT_MS = 60_000;
/** LEARNER_CATCHUP_MS_MAX bounds the learner's catch-up. */
const LEARNER_CATCHUP_MS_MAX = 180_000;
/** REST_CPU_WINDOW_MS: the members' CPU is sampled over this long before the learner is added. */
const REST_CPU_WINDOW_MS = 2_000;
/** LEARNER_PROF_PRELOAD starts V8's profiler in the learner when LEARNER_PROF_DIR is set. */
const LEARNER_PROF_PRELOAD = fileURLToPath(new URL("../raft/cpu-profile-preload.mjs", import.meta.url));
/** LEARNER_ID is the joining node's id. */
const LEARNER_ID = "n4";
/** KV_VALUE_PAD makes each key's value about 100 bytes. */
const KV_VALUE_PAD = 80;
/** SERVICE_PREFIX names this phase's services. */
const SERVICE_PREFIX = "mem-";

/** MemoryOptions size the phase. */
export interface MemoryOptions {
  readonly instances: number;
  /** sessions is how many clients register the instances (instance i by client i mod sessions). */
  readonly sessions: number;
  /** keys is how many KV keys are written after the instances. */
  readonly keys: number;
  readonly concurrency: number;
  readonly learner: boolean;
}

/** NodeMemory is one agent's RSS. */
export interface NodeMemory {
  readonly role: "leader" | "follower";
  readonly rssBeforeBytes: number;
  readonly rssAfterBytes: number;
  /** rssAtRestBytes is RSS after REST_MS more with no load. */
  readonly rssAtRestBytes: number;
  /** bytesPerInstance is (after - before) / instances registered. */
  readonly bytesPerInstance: number;
}

/** LearnerCatchUp is the optional learner measurement. */
export interface LearnerCatchUp {
  readonly targetIndex: number;
  readonly catchUpMs: number;
  /** snapshotIndex is the learner's snapshot index after catching up (> 0: it was installed from a snapshot). */
  readonly snapshotIndex: number;
  readonly rssBytes: number;
  /** receivedMs, installedMs: when the learner's log says it had the whole snapshot, and had installed it, in ms after the add (from its pino times; absent when not logged). */
  readonly receivedMs?: number;
  readonly installedMs?: number;
}

/** MemoryReport is the phase's result. */
export interface MemoryReport {
  readonly leader: string;
  readonly instances: number;
  readonly sessions: number;
  readonly keysWritten: number;
  readonly registered: number;
  readonly registerSeconds: number;
  readonly registersPerSec: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly nodes: Record<string, NodeMemory>;
  readonly totals: HealthTotals;
  readonly leaderStatus: { commit: number; applied: number; snapshotIndex: number };
  readonly learner?: LearnerCatchUp | { error: string };
}

/** runMemoryPhase runs the phase on a fresh cluster c. */
export async function runMemoryPhase(c: BenchCluster, o: MemoryOptions, log: (line: string) => void): Promise<MemoryReport> {
  const leader = await c.leader();
  await sleep(SETTLE_MS);
  const before = new Map([...c.pids].map(([id, pid]) => [id, rssBytesOf(pid)]));
  const client = c.pc.client(leader);
  // Many sessions over one shared connection: the figure is the registry's, not that of 10,000
  // client sockets (~20 KB of native memory each on the node; README, memory).
  const sessionClients = Array.from({ length: o.sessions }, () => new RaftmeshClient([c.pc.api(leader)], { deadlineMs: 10_000, connection: "shared" }));
  const r = await runLoad({
    concurrency: o.concurrency,
    maxOps: o.instances,
    durationMs: REGISTER_TIME_MS_MAX,
    keyPrefix: "mem",
    put: async (key) => {
      const i = Number(key.slice(key.lastIndexOf("/") + 1));
      const service = `${SERVICE_PREFIX}${Math.floor(i / INSTANCES_PER_SERVICE)}`;
      await (sessionClients[i % o.sessions] as RaftmeshClient).register(instanceSpec(i, service, `${service}-${i % INSTANCES_PER_SERVICE}`, TTL_MS_LONG));
    },
  });
  for (const s of sessionClients) s.close();
  log(`  registered ${r.ops}/${o.instances} in ${r.seconds.toFixed(1)} s (${Math.round(r.opsPerSec)}/s)${r.errors ? `, ${r.errors} errors (${r.firstError})` : ""}`);
  const kv = await runLoad({
    concurrency: o.concurrency,
    maxOps: o.keys,
    durationMs: REGISTER_TIME_MS_MAX,
    keyPrefix: "mem",
    put: async (key) => {
      await client.put(`config/${key}`, Buffer.from(`value of ${key}: ${"x".repeat(KV_VALUE_PAD)}`));
    },
  });
  log(`  wrote ${kv.ops}/${o.keys} keys in ${kv.seconds.toFixed(1)} s${kv.errors ? `, ${kv.errors} errors (${kv.firstError})` : ""}`);
  const status = await client.status();
  if (Number.isNaN(await waitApplied(c, c.ids, status.commit, CONVERGE_MS_MAX))) log(`  warning: not every node applied ${status.commit} within ${CONVERGE_MS_MAX} ms`);
  await sleep(SETTLE_MS);
  const afterLoad = new Map([...c.pids].map(([id, pid]) => [id, rssBytesOf(pid)]));
  await sleep(REST_MS);
  const nodes: Record<string, NodeMemory> = {};
  for (const [id, pid] of c.pids) {
    const rssBeforeBytes = before.get(id) ?? Number.NaN;
    const rssAfterBytes = afterLoad.get(id) ?? Number.NaN;
    nodes[id] = { role: id === leader ? "leader" : "follower", rssBeforeBytes, rssAfterBytes, rssAtRestBytes: rssBytesOf(pid), bytesPerInstance: r.ops > 0 ? (rssAfterBytes - rssBeforeBytes) / r.ops : Number.NaN };
  }
  const totals = countHealth(await client.listServices(), SERVICE_PREFIX);
  const after = await client.status();
  const report: MemoryReport = {
    leader,
    instances: o.instances,
    sessions: o.sessions,
    keysWritten: kv.ops,
    registered: r.ops,
    registerSeconds: r.seconds,
    registersPerSec: r.opsPerSec,
    errors: r.errors,
    firstError: r.firstError,
    nodes,
    totals,
    leaderStatus: { commit: after.commit, applied: after.applied, snapshotIndex: after.snapshotIndex },
  };
  if (!o.learner) return report;
  try {
    return { ...report, learner: await learnerCatchUp(c, leader, log) };
  } catch (err) {
    log(`  learner catch-up failed: ${(err as Error).message}`);
    return { ...report, learner: { error: (err as Error).message } };
  }
}

/** learnerCatchUp adds an empty node as a learner and times its catch-up to the leader's commit index at the time it was added. */
async function learnerCatchUp(c: BenchCluster, leader: string, log: (line: string) => void): Promise<LearnerCatchUp> {
  await c.pc.allocate(LEARNER_ID);
  // The line we wait for is logged at info; the benchmark's agents otherwise log warnings only.
  // LEARNER_PROF_DIR (env) runs the learner under V8's profiler (the preload of bench:raft-profile) and stops it cleanly after the measurement, so the profile is written there.
  const profDir = process.env.LEARNER_PROF_DIR;
  const profEnv: Record<string, string> = profDir ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${LEARNER_PROF_PRELOAD}`, RAFTMESH_BENCH_CPU_PROF_DIR: profDir } : {};
  c.pc.start(LEARNER_ID, { RAFTMESH_LOG_LEVEL: "info", ...profEnv });
  await waitFor(`${LEARNER_ID} to wait in join mode`, async () => (await c.pc.logOf(LEARNER_ID)).includes("waiting for the leader to add this node"), LEARNER_JOIN_WAIT_MS);
  const pid = c.trackPid(LEARNER_ID);
  // The members' CPU at rest just before the add: whatever they still do competes with the learner for the cores.
  const members = [...c.pids].filter(([id]) => id !== LEARNER_ID);
  const cpu0 = members.map(([, p]) => procCpuSeconds(p));
  await sleep(REST_CPU_WINDOW_MS);
  const restCpu = members.map(([id, p], k) => `${id} ${Math.round((100 * (procCpuSeconds(p) - (cpu0[k] as number))) / (REST_CPU_WINDOW_MS / 1000))} %`);
  log(`  members' CPU at rest before the add (${REST_CPU_WINDOW_MS} ms): ${restCpu.join(", ")}; load average ${loadavg()[0]?.toFixed(2)}`);
  const targetIndex = (await c.pc.client(leader).status()).commit;
  const start = performance.now();
  const startWallMs = Date.now();
  await c.pc.client(leader).addMember({ id: LEARNER_ID, peer: c.pc.peer(LEARNER_ID), api: c.pc.api(LEARNER_ID), learner: true }, { deadlineMs: 10_000 });
  const waitedMs = await waitApplied(c, [LEARNER_ID], targetIndex, LEARNER_CATCHUP_MS_MAX);
  if (Number.isNaN(waitedMs)) throw new Error(`${LEARNER_ID} did not apply index ${targetIndex} within ${LEARNER_CATCHUP_MS_MAX} ms`);
  const catchUpMs = performance.now() - start;
  const st = await c.pc.client(LEARNER_ID).status();
  const logText = await c.pc.logOf(LEARNER_ID);
  const loggedAt = (msg: string) => {
    const line = logText.split("\n").find((l) => l.includes(`"msg":"${msg}"`));
    const time = line === undefined ? undefined : (JSON.parse(line) as { time?: number }).time;
    return time === undefined ? undefined : time - startWallMs;
  };
  const learner = { targetIndex, catchUpMs, snapshotIndex: st.snapshotIndex, rssBytes: rssBytesOf(pid), receivedMs: loggedAt("snapshot received"), installedMs: loggedAt("installed snapshot from leader") };
  log(`  learner ${LEARNER_ID} applied ${targetIndex} ${Math.round(catchUpMs)} ms after being added (snapshot index ${st.snapshotIndex}; snapshot received at ${learner.receivedMs} ms, installed at ${learner.installedMs} ms)`);
  if (profDir) await c.pc.stop(LEARNER_ID);
  return learner;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
