/**
 * etcd baseline for the raftmesh comparison: starts a 3-member etcd cluster (fsync on, etcd's
 * default), runs the closed-loop put load at several concurrencies, then failover rounds, and
 * prints a table and JSON. The client keeps one gRPC channel per member (see etcd-client.ts).
 * Run: npx tsx test/bench/raft/etcd-smoke.ts [--seconds 5] [--warmup-seconds 1] [--rounds 5] [--targets all,leader]
 *      [--concurrency 1,16,64,256] [--heartbeat-ms 100] [--election-ms 1000] [--data-root DIR] [--json out.json]
 * --targets: "all" spreads puts over every member in turn (as etcd's Go client does; followers
 * forward to the leader), "leader" sends every put to the leader's channel (the best case).
 */
import { statfsSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { EtcdCluster } from "./etcd-cluster.js";
import { runFailover } from "./failover.js";
import { type LoadResult, runLoad } from "./load.js";
import { formatTable } from "./stats.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    "warmup-seconds": { type: "string", default: "1" },
    rounds: { type: "string", default: "5" },
    targets: { type: "string", default: "all,leader" },
    concurrency: { type: "string", default: "1,16,64,256" },
    "heartbeat-ms": { type: "string", default: "100" },
    "election-ms": { type: "string", default: "1000" },
    "data-root": { type: "string" },
    json: { type: "string" },
  },
});
const durationMs = Number(values.seconds) * 1000;
const warmupMs = Number(values["warmup-seconds"]) * 1000;
const concurrencies = values.concurrency.split(",").map(Number);
const targets = values.targets.split(",");
for (const t of targets) if (t !== "all" && t !== "leader") throw new Error(`--targets: unknown target "${t}"`);

/** TMPFS_MAGIC is statfs's type for tmpfs, where fsync costs nothing and etcd's figures would flatter it. */
const TMPFS_MAGIC = 0x01021994;
/** VALUE_BYTES matches the raftmesh side of the comparison. */
const VALUE_BYTES = 256;
/** WARMUP_CONCURRENCY drives the discarded warm-up run: enough to open every channel and get the JIT and etcd's caches past their cold start. */
const WARMUP_CONCURRENCY = 16;

const machine = { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version };
const cluster = await EtcdCluster.start({
  heartbeatIntervalMs: Number(values["heartbeat-ms"]),
  electionTimeoutMs: Number(values["election-ms"]),
  ...(values["data-root"] ? { dataRoot: values["data-root"] } : {}),
});
try {
  const version = (await cluster.client("e1").status()).version;
  const onTmpfs = statfsSync(cluster.dataDir).type === TMPFS_MAGIC;
  console.log(`etcd ${version}, 3 members, data in ${cluster.dataDir}${onTmpfs ? " (tmpfs: fsync is free, figures are optimistic)" : ""}`);
  console.log(`${machine.cpu}, ${machine.cores} cores, node ${machine.node}; ${VALUE_BYTES}-byte values, ${durationMs / 1000} s per run\n`);

  // The first seconds of a run are slower (connections, JIT); they are measured and thrown away.
  if (warmupMs > 0) await runLoad({ put: (key, value) => cluster.put(key, value), concurrency: WARMUP_CONCURRENCY, valueBytes: VALUE_BYTES, durationMs: warmupMs });
  const loads: (LoadResult & { target: string })[] = [];
  for (const target of targets) {
    for (const concurrency of concurrencies) {
      const leader = await cluster.leader();
      const put =
        target === "leader"
          ? async (key: string, value: Uint8Array) => void (await cluster.client(leader).put(key, value))
          : (key: string, value: Uint8Array) => cluster.put(key, value);
      const r = await runLoad({ put, concurrency, valueBytes: VALUE_BYTES, durationMs });
      loads.push({ target, ...r });
      console.log(`  ${target} c=${concurrency}: ${Math.round(r.opsPerSec)} puts/s${r.errors ? `, ${r.errors} errors (${r.firstError})` : ""}`);
    }
  }
  const ms = (x: number) => Math.round(x * 100) / 100;
  console.log(
    `\n${formatTable(
      ["target", "conc", "puts/s", "ops", "errors", "p50 ms", "p99 ms", "max ms", "client cpu %"],
      loads.map((r) => [r.target, r.concurrency, Math.round(r.opsPerSec), r.ops, r.errors, ms(r.p50Ms), ms(r.p99Ms), ms(r.maxMs), Math.round(r.clientCpuPercent)]),
    )}\n`,
  );

  const failover = await runFailover({
    cluster,
    rounds: Number(values.rounds),
    onRound: (r) => console.log(`  round ${r.round}: killed ${r.killedId}, new leader ${r.newLeaderId}, ${Math.round(r.failoverMs)} ms`),
  });
  console.log(
    `\n${formatTable(
      ["round", "killed", "new leader", "failover ms", "failed puts", "rejoin ms"],
      failover.rounds.map((r) => [r.round, r.killedId, r.newLeaderId, Math.round(r.failoverMs), r.writesFailed, Math.round(r.rejoinMs)]),
    )}`,
  );
  console.log(`failover median ${Math.round(failover.medianMs)} ms, max ${Math.round(failover.maxMs)} ms\n`);

  const report = {
    system: "etcd",
    version,
    machine,
    settings: { durationMs, warmupMs, valueBytes: VALUE_BYTES, heartbeatMs: Number(values["heartbeat-ms"]), electionMs: Number(values["election-ms"]), onTmpfs },
    load: loads,
    failover,
  };
  const json = JSON.stringify(report, null, 2);
  console.log(json);
  if (values.json) writeFileSync(values.json, `${json}\n`);
} finally {
  await cluster.stop();
}
