import { ProcessCluster } from "./test/integration/harness/process-cluster.js";
import { runLoad } from "./test/bench/raft/load.js";
const pc = await ProcessCluster.create({ size: 3, env: { RAFTMESH_LOG_LEVEL: "warn" } });
const metric = async (id: string) => {
  const port = (pc.specs.get(id) as { adminPort: number }).adminPort;
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const get = (re: RegExp) => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
  return {
    fsyncSum: get(/^raftmesh_storage_fsync_duration_seconds_sum (\S+)$/gm), fsyncCount: get(/^raftmesh_storage_fsync_duration_seconds_count (\S+)$/gm),
    rttSum: get(/^raftmesh_raft_append_round_trip_seconds_sum\{[^}]*\} (\S+)$/gm), rttCount: get(/^raftmesh_raft_append_round_trip_seconds_count\{[^}]*\} (\S+)$/gm),
    propSum: get(/^raftmesh_raft_proposal_duration_seconds_sum (\S+)$/gm), propCount: get(/^raftmesh_raft_proposal_duration_seconds_count (\S+)$/gm),
    apiSum: get(/^raftmesh_api_request_duration_seconds_sum\{method="\/raftmesh.v1.KV\/Put"\} (\S+)$/gm), apiCount: get(/^raftmesh_api_request_duration_seconds_count\{method="\/raftmesh.v1.KV\/Put"\} (\S+)$/gm),
  };
};
try {
  pc.startAll();
  const leader = await pc.waitForLeader(120_000);
  const client = pc.client(leader);
  const put = async (k: string, v: Uint8Array) => { await client.put(k, v); };
  await runLoad({ put, concurrency: 1, durationMs: 2000 });
  const ids = pc.runningIds();
  const m0 = new Map(await Promise.all(ids.map(async (id) => [id, await metric(id)] as const)));
  const r = await runLoad({ put, concurrency: 1, durationMs: 5000 });
  console.log(`c=1 ${Math.round(r.opsPerSec)}/s p50 ${r.p50Ms.toFixed(2)} p99 ${r.p99Ms.toFixed(2)}`);
  for (const id of ids) {
    const a = m0.get(id)!; const b = await metric(id);
    const mean = (s: string, c: string) => (((b as any)[s] - (a as any)[s]) / Math.max(1, (b as any)[c] - (a as any)[c]) * 1000).toFixed(3);
    console.log(`${id}${id === leader ? "*" : ""}: fsync mean ${mean("fsyncSum", "fsyncCount")} ms (${b.fsyncCount - a.fsyncCount}), append rtt ${mean("rttSum", "rttCount")} ms, proposal ${mean("propSum", "propCount")} ms, api put ${mean("apiSum", "apiCount")} ms`);
  }
} finally { await pc.cleanup(); }
