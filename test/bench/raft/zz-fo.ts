import { fileURLToPath } from "node:url";
import { RaftmeshCluster } from "./raftmesh-cluster.js";
import { instanceSpec, TTL_MS_LONG } from "../registry/instances.js";
const N = Number(process.argv[2] ?? 100000);
const PRELOAD = fileURLToPath(new URL("./cpu-profile-preload.mjs", import.meta.url));
const c = await RaftmeshCluster.start({ RAFTMESH_LOG_LEVEL: "info", NODE_OPTIONS: `--import ${PRELOAD}`, RAFTMESH_BENCH_CPU_PROF_DIR: "/tmp/fo-prof" });
const leader = await c.leader();
const client = c.client(leader);
let next = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: 64 }, async () => { for (let i = next++; i < N; i = next++) { const s = `fo-${Math.floor(i / 100)}`; await client.register(instanceSpec(i, s, `${s}-${i % 100}`, TTL_MS_LONG)); } }));
console.log(`preload ${N} in ${Math.round(performance.now() - t0)} ms`);
await new Promise((r) => setTimeout(r, 3000));
for (let round = 0; round < 2; round++) {
  const lead = await c.leader();
  const others = c.ids.filter((id) => id !== lead);
  const kill = performance.now();
  console.log(`round ${round}: kill ${lead} at ${new Date().toISOString()}`);
  void c.kill(lead);
  let elected = 0, acked = 0;
  const poll = (async () => { while (!elected) { for (const id of others) { const s = await c.client(id).status({ deadlineMs: 200 }).catch(() => undefined); if (s?.role === "leader" && !elected) elected = performance.now() - kill; } await new Promise((r) => setTimeout(r, 5)); } })();
  const write = (async () => { for (let i = 0; !acked; i++) { try { await c.put(`fo/${round}/${i}`, Buffer.from("x"), { viaNotId: lead, timeoutMs: 300 }); acked = performance.now() - kill; } catch {} } })();
  await Promise.all([poll, write]);
  console.log(`round ${round}: elected seen ${Math.round(elected)} ms, first write ${Math.round(acked)} ms`);
  await c.restart(lead);
  await new Promise((r) => setTimeout(r, 15000));
}
for (const id of c.pc.runningIds()) await c.pc.stop(id);

console.log("root", c.pc.root);

