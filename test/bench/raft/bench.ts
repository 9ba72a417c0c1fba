/**
 * npm run bench:raft: a 3-node raftmesh cluster (real agent processes, fsync on) under a closed
 * loop of 256-byte puts at several concurrencies, then leader failover rounds (SIGKILL the leader
 * under a light write load; time to the first acknowledged write sent after the kill).
 * With --vs etcd, a 3-member etcd cluster runs the same load in the same run, interleaved run by
 * run (order alternating per repeat), and the table gives raftmesh/etcd ratios of medians.
 * Every run also counts the CPU time all three server processes spent (from /proc), so the table
 * gives puts per server CPU-second too, which a busy shared machine distorts far less than puts/s.
 * Unless --skip-register, raftmesh also runs instance registrations of the same size at each
 * concurrency (etcd has none), for registrations/s against its own puts/s.
 *
 *   npm run bench:raft -- [--vs etcd] [--seconds 5] [--repeats 3] [--concurrency 1,16,64,256]
 *                         [--rounds 10] [--target leader|all] [--etcd-heartbeat-ms 100]
 *                         [--etcd-election-ms 1000] [--skip-load] [--skip-failover] [--skip-register]
 *                         [--agent-env NAME=VALUE,...] [--json out.json]
 * --agent-env adds variables to the raftmesh agents' environment only (not the load generator's),
 * e.g. glibc's MALLOC_ARENA_MAX=2, to compare a setting side by side.
 */
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { parseAgentEnv } from "./agent-env.js";
import { EtcdCluster } from "./etcd-cluster.js";
import { type FailoverResult, runFailover } from "./failover.js";
import { type LoadResult, runLoad } from "./load.js";
import { RaftmeshCluster } from "./raftmesh-cluster.js";
import { procCpuSeconds } from "./proc-cpu.js";
import { registrationFor, VALUE_BYTES } from "./registration-load.js";
import { formatTable, median } from "./stats.js";

/** WARMUP_MS: a discarded first run opens channels and gets the JIT past its cold start. */
const WARMUP_MS = 1_000;
/** WARMUP_CONCURRENCY drives the warm-up run. */
const WARMUP_CONCURRENCY = 16;

const { values } = parseArgs({
  options: {
    vs: { type: "string" },
    seconds: { type: "string", default: "5" },
    repeats: { type: "string", default: "3" },
    concurrency: { type: "string", default: "1,16,64,256" },
    rounds: { type: "string", default: "10" },
    target: { type: "string", default: "leader" },
    "etcd-heartbeat-ms": { type: "string", default: "100" },
    "etcd-election-ms": { type: "string", default: "1000" },
    "skip-load": { type: "boolean", default: false },
    "skip-failover": { type: "boolean", default: false },
    "skip-register": { type: "boolean", default: false },
    "agent-env": { type: "string", default: "" },
    json: { type: "string" },
  },
  strict: true,
});
const agentEnv = parseAgentEnv(values["agent-env"]);
if (values.vs !== undefined && values.vs !== "etcd") throw new Error(`--vs: only "etcd" is supported, got "${values.vs}"`);
if (values.target !== "leader" && values.target !== "all") throw new Error(`--target: leader or all, got "${values.target}"`);
const durationMs = Number(values.seconds) * 1000;
const repeats = Number(values.repeats);
const rounds = Number(values.rounds);
const concurrencies = values.concurrency.split(",").map(Number);
if (!(durationMs > 0) || !(repeats >= 1) || !(rounds >= 0) || concurrencies.some((c) => !(c >= 1))) {
  throw new Error("--seconds, --repeats, --rounds and --concurrency must be positive numbers");
}

type System = "raftmesh" | "etcd";
interface Subject {
  readonly name: System;
  /** put goes to the leader's client (target leader) or round-robin through every node (target all). */
  put(key: string, value: Uint8Array): Promise<void>;
  /** register registers one instance of about the same size as a put (raftmesh only). */
  register?: (key: string) => Promise<void>;
  /** pids are the server processes' ids, for their CPU time. */
  pids(): number[];
  failover(): Promise<FailoverResult>;
  stop(): Promise<void>;
}

async function raftmeshSubject(): Promise<Subject> {
  const c = await RaftmeshCluster.start(agentEnv);
  let leader = await c.leader();
  return {
    name: "raftmesh",
    put: async (key, value) => {
      if (values.target === "all") return c.put(key, value);
      await c.client(leader).put(key, value);
    },
    register: async (key) => {
      const { n, request } = registrationFor(key);
      const via = values.target === "all" ? c.ids[n % c.ids.length] : leader;
      await c.client(via ?? leader).register(request, { deadlineMs: 5_000 });
    },
    pids: () => c.ids.map((id) => c.pc.pid(id)).filter((p): p is number => p !== undefined),
    failover: async () => {
      const r = await runFailover({ cluster: c, rounds, onRound: (x) => console.log(`  raftmesh round ${x.round}: ${Math.round(x.failoverMs)} ms`) });
      leader = await c.leader();
      return r;
    },
    stop: () => c.stop(),
  };
}

async function etcdSubject(): Promise<Subject> {
  const c = await EtcdCluster.start({ heartbeatIntervalMs: Number(values["etcd-heartbeat-ms"]), electionTimeoutMs: Number(values["etcd-election-ms"]) });
  let leader = await c.leader();
  return {
    name: "etcd",
    put: async (key, value) => {
      if (values.target === "all") return c.put(key, value);
      await c.client(leader).put(key, value);
    },
    pids: () => c.pids(),
    failover: async () => {
      const r = await runFailover({ cluster: c, rounds, onRound: (x) => console.log(`  etcd round ${x.round}: ${Math.round(x.failoverMs)} ms`) });
      leader = await c.leader();
      return r;
    },
    stop: () => c.stop(),
  };
}

const machine = { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version, loadavgAtStart: loadavg()[0] ?? 0 };
console.log(`${machine.cpu}, ${machine.cores} cores, node ${machine.node}, load average ${machine.loadavgAtStart.toFixed(2)} at start`);
console.log(`${VALUE_BYTES}-byte values, ${durationMs / 1000} s per run, median of ${repeats} runs, target ${values.target}\n`);

const subjects: Subject[] = [];
const stopAll = async () => {
  for (const s of subjects) await s.stop().catch(() => undefined);
};
process.once("SIGINT", () => void stopAll().then(() => process.exit(130)));
try {
  subjects.push(await raftmeshSubject());
  if (values.vs === "etcd") subjects.push(await etcdSubject());
  /** Run is one load run with the CPU time the servers spent during it. */
  type Run = LoadResult & { serverCpuSeconds: number; loadavg: number };
  const runs = new Map<string, Run[]>();
  const measured = async (s: Subject, concurrency: number, put: (key: string, value: Uint8Array) => Promise<void>, keyPrefix: string): Promise<Run> => {
    const pids = s.pids();
    const cpu0 = pids.reduce((a, pid) => a + procCpuSeconds(pid), 0);
    const r = await runLoad({ put, concurrency, valueBytes: VALUE_BYTES, durationMs, keyPrefix });
    const serverCpuSeconds = pids.reduce((a, pid) => a + procCpuSeconds(pid), 0) - cpu0;
    return { ...r, serverCpuSeconds, loadavg: loadavg()[0] ?? 0 };
  };
  if (!values["skip-load"]) {
    for (const s of subjects) await runLoad({ put: s.put, concurrency: WARMUP_CONCURRENCY, valueBytes: VALUE_BYTES, durationMs: WARMUP_MS });
    for (let rep = 0; rep < repeats; rep++) {
      for (const concurrency of concurrencies) {
        // Alternate who goes first, so neither system always runs on a warmer (or busier) machine.
        const order = rep % 2 === 0 ? subjects : [...subjects].reverse();
        for (const s of order) {
          const r = await measured(s, concurrency, s.put, `${s.name}-${rep}-${concurrency}-`);
          const key = `${s.name}/${concurrency}`;
          runs.set(key, [...(runs.get(key) ?? []), r]);
          console.log(
            `  ${s.name} c=${concurrency} run ${rep + 1}: ${Math.round(r.opsPerSec)} puts/s, p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, server CPU ${r.serverCpuSeconds.toFixed(2)} s (${Math.round(r.ops / r.serverCpuSeconds)} puts/CPU-s), load ${r.loadavg.toFixed(1)}${r.errors ? `, ${r.errors} errors (${r.firstError})` : ""}`,
          );
        }
        const register = subjects[0]?.register;
        if (register && !values["skip-register"]) {
          const s = subjects[0] as Subject;
          const r = await measured(s, concurrency, (key) => register(key), `reg-${rep}-${concurrency}-`);
          const key = `${s.name}-register/${concurrency}`;
          runs.set(key, [...(runs.get(key) ?? []), r]);
          console.log(
            `  ${s.name} register c=${concurrency} run ${rep + 1}: ${Math.round(r.opsPerSec)} registrations/s, p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, server CPU ${r.serverCpuSeconds.toFixed(2)} s${r.errors ? `, ${r.errors} errors (${r.firstError})` : ""}`,
          );
        }
      }
    }
  }
  const summary = concurrencies.map((concurrency) => {
    const row: Record<string, number> = { concurrency };
    for (const s of subjects) {
      const rs = runs.get(`${s.name}/${concurrency}`) ?? [];
      row[`${s.name}PutsPerSec`] = median(rs.map((r) => r.opsPerSec));
      row[`${s.name}P50Ms`] = median(rs.map((r) => r.p50Ms));
      row[`${s.name}P99Ms`] = median(rs.map((r) => r.p99Ms));
      row[`${s.name}Errors`] = rs.reduce((a, r) => a + r.errors, 0);
      row[`${s.name}ServerCpuSeconds`] = median(rs.map((r) => r.serverCpuSeconds));
      // Puts per server CPU-second over all of a system's runs at this concurrency (total puts / total CPU).
      row[`${s.name}PutsPerCpuSecond`] = rs.reduce((a, r) => a + r.ops, 0) / rs.reduce((a, r) => a + r.serverCpuSeconds, 0);
    }
    const regs = runs.get(`raftmesh-register/${concurrency}`) ?? [];
    if (regs.length > 0) {
      row.raftmeshRegistrationsPerSec = median(regs.map((r) => r.opsPerSec));
      row.raftmeshRegisterP99Ms = median(regs.map((r) => r.p99Ms));
      row.raftmeshRegisterErrors = regs.reduce((a, r) => a + r.errors, 0);
      row.registrationsToPuts = row.raftmeshRegistrationsPerSec / (row.raftmeshPutsPerSec ?? Number.NaN);
    }
    if (subjects.length === 2) {
      row.ratio = (row.raftmeshPutsPerSec ?? 0) / (row.etcdPutsPerSec ?? 1);
      row.p50Ratio = (row.raftmeshP50Ms ?? 0) / (row.etcdP50Ms ?? 1);
      row.p99Ratio = (row.raftmeshP99Ms ?? 0) / (row.etcdP99Ms ?? 1);
      row.putsPerCpuSecondRatio = (row.raftmeshPutsPerCpuSecond ?? 0) / (row.etcdPutsPerCpuSecond ?? 1);
    }
    return row;
  });
  const fmt = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "-" : x >= 100 ? Math.round(x) : Math.round(x * 100) / 100);
  if (!values["skip-load"]) {
    const both = subjects.length === 2;
    const withRegs = summary.some((r) => r.raftmeshRegistrationsPerSec !== undefined);
    const header = [
      "conc",
      ...subjects.flatMap((s) => [`${s.name} puts/s`, "p50 ms", "p99 ms", "puts/CPU-s"]),
      ...(both ? ["puts/s ratio", "p50 ratio", "p99 ratio", "puts/CPU-s ratio"] : []),
      ...(withRegs ? ["regs/s", "regs/puts"] : []),
    ];
    const rows = summary.map((r) => [
      r.concurrency as number,
      ...subjects.flatMap((s) => [fmt(r[`${s.name}PutsPerSec`]), fmt(r[`${s.name}P50Ms`]), fmt(r[`${s.name}P99Ms`]), fmt(r[`${s.name}PutsPerCpuSecond`])]),
      ...(both ? [fmt(r.ratio), fmt(r.p50Ratio), fmt(r.p99Ratio), fmt(r.putsPerCpuSecondRatio)] : []),
      ...(withRegs ? [fmt(r.raftmeshRegistrationsPerSec), fmt(r.registrationsToPuts)] : []),
    ]);
    console.log(`\nwrites (median of ${repeats})\n${formatTable(header, rows)}\n`);
  }
  const failovers: Record<string, FailoverResult> = {};
  if (!values["skip-failover"] && rounds > 0) {
    for (const s of subjects) failovers[s.name] = await s.failover();
    const header = ["system", "rounds", "median ms", "max ms", "min ms"];
    const rows = Object.entries(failovers).map(([name, f]) => [name, f.rounds.length, fmt(f.medianMs), fmt(f.maxMs), fmt(Math.min(...f.failoverMs))]);
    console.log(`\nleader failover (SIGKILL -> first acknowledged write sent after it)\n${formatTable(header, rows)}`);
    if (failovers.raftmesh && failovers.etcd) console.log(`failover median ratio raftmesh/etcd: ${(failovers.raftmesh.medianMs / failovers.etcd.medianMs).toFixed(2)}`);
  }
  const report = {
    machine: { ...machine, loadavgAtEnd: loadavg()[0] },
    agentEnv,
    ratios: "raftmesh/etcd of medians (puts/s, p50, p99); puts/CPU-s is total puts over total server CPU-seconds of a system's runs; registrationsToPuts is raftmesh's own",
    settings: {
      durationMs,
      repeats,
      valueBytes: VALUE_BYTES,
      target: values.target,
      raftmesh: "defaults: tick 10 ms, heartbeat 5 ticks, election 30-60 ticks",
      etcd: values.vs ? { heartbeatMs: Number(values["etcd-heartbeat-ms"]), electionMs: Number(values["etcd-election-ms"]) } : undefined,
    },
    writes: summary,
    runs: Object.fromEntries(runs),
    failover: failovers,
  };
  console.log(`\n${JSON.stringify({ writes: summary, failover: Object.fromEntries(Object.entries(failovers).map(([k, f]) => [k, { medianMs: f.medianMs, maxMs: f.maxMs, rounds: f.failoverMs }])) })}`);
  if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
} finally {
  await stopAll();
}
