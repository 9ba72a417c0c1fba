/**
 * npx tsx test/bench/raft/write-stages.ts: where one write's time goes at a given concurrency
 * (default 1, where latency is the question). A 3-node cluster, a closed loop of 256-byte puts to
 * the leader (a 2 s warm-up, then --seconds), and the means over the window of the nodes' own
 * histograms: the server's KV Put time (raftmesh_api_request_duration_seconds), proposal to
 * applied (raftmesh_raft_proposal_duration_seconds), the leader's append round trip to each
 * follower (raftmesh_raft_append_round_trip_seconds, the follower's fsync included) and each
 * node's synced write (raftmesh_storage_fsync_duration_seconds). What the client sees beyond the
 * server's Put time is the client and the network.
 *
 *   npx tsx test/bench/raft/write-stages.ts [--concurrency 1] [--seconds 5] [--json out.json]
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { ProcessCluster } from "../../integration/harness/process-cluster.js";
import { runLoad } from "./load.js";
const { values } = parseArgs({ options: { concurrency: { type: "string", default: "1" }, seconds: { type: "string", default: "5" }, json: { type: "string" } }, strict: true });
const concurrency = Number(values.concurrency);
const seconds = Number(values.seconds);
if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1024) throw new RangeError(`--concurrency: an integer in [1, 1024], got "${values.concurrency}"`);
if (!(seconds > 0 && seconds <= 120)) throw new RangeError(`--seconds: in (0, 120], got "${values.seconds}"`);
const STAGES = ["raftmesh_api_request_duration_seconds", "raftmesh_raft_proposal_duration_seconds", "raftmesh_raft_append_round_trip_seconds", "raftmesh_storage_fsync_duration_seconds"] as const;

const pc = await ProcessCluster.create({ size: 3, env: { RAFTMESH_LOG_LEVEL: "warn" } });
pc.startAll();
const leader = await pc.waitForLeader();
const client = pc.client(leader);
const scrape = async () => {
  const out: Record<string, Record<string, number>> = {};
  for (const id of ["n1", "n2", "n3"]) {
    const text = await (await fetch(`http://127.0.0.1:${pc.specs.get(id)?.adminPort}/metrics`)).text();
    const m: Record<string, number> = {};
    for (const line of text.split("\n")) {
      const r = /^(raftmesh_[a-z_]+_(?:sum|count))(\{[^}]*\})? (\S+)$/.exec(line);
      const [, name = "", labels = "", value = "0"] = r ?? [];
      if (!STAGES.some((n) => name === `${n}_sum` || name === `${n}_count`)) continue;
      // The API histogram is by method: the KV Put series only.
      if (name.startsWith("raftmesh_api") && !labels.includes('KV/Put"')) continue;
      m[name] = (m[name] ?? 0) + Number(value);
    }
    out[id] = m;
  }
  return out;
};
await runLoad({ put: async (k: string) => void (await client.put(k, "x".repeat(256))), concurrency, durationMs: 2000, maxOps: 100000, keyPrefix: "warm" });
const a = await scrape();
const r = await runLoad({ put: async (k: string) => void (await client.put(k, "x".repeat(256))), concurrency, durationMs: seconds * 1000, maxOps: 1_000_000, keyPrefix: "stages" });
const b = await scrape();
const nodes: Record<string, Record<string, { meanMs: number; count: number }>> = {};
console.log(`${cpus().length} × ${cpus()[0]?.model ?? "?"}, node ${process.version}; concurrency ${concurrency}, leader ${leader}: ${r.opsPerSec.toFixed(0)} puts/s, client p50 ${r.p50Ms.toFixed(2)} ms, mean ${((seconds * 1000 * concurrency) / Math.max(1, r.ops)).toFixed(2)} ms`);
for (const id of ["n1", "n2", "n3"]) {
  const d = (k: string) => (b[id]?.[k] ?? 0) - (a[id]?.[k] ?? 0);
  nodes[id] = {};
  const parts: string[] = [];
  for (const n of STAGES) {
    const count = d(`${n}_count`);
    if (count === 0) continue;
    const meanMs = (d(`${n}_sum`) / count) * 1000;
    (nodes[id] as Record<string, { meanMs: number; count: number }>)[n] = { meanMs, count };
    parts.push(`${n.replace(/^raftmesh_|_seconds$/g, "")} ${meanMs.toFixed(3)} ms × ${count}`);
  }
  console.log(`${id}${id === leader ? " (leader)" : ""}: ${parts.join(" | ")}`);
}
if (values.json) writeFileSync(values.json, JSON.stringify({ machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, concurrency, seconds, leader, putsPerSec: r.opsPerSec, clientP50Ms: r.p50Ms, clientP99Ms: r.p99Ms, nodes }, null, 2));
await pc.cleanup();
