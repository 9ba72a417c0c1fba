/**
 * Measures RegistryStateMachine snapshot() and restore() for a registry of 100,000 instances
 * (1,000 services × 100 instances, realistic tags and metadata) plus 10,000 KV keys and sessions.
 *   npx tsx test/bench/registry-snapshot.ts [instances] [--json out.json]
 */
import { writeFileSync } from "node:fs";
import { ClusterStateMachine } from "../../src/node/cluster-state-machine.js";
import { EntryKind } from "../../src/raft/index.js";
import { encodeCommand } from "../../src/registry/codec.js";
import { RegistryStateMachine } from "../../src/registry/state-machine.js";
import type { CommandEnvelope } from "../../src/registry/types.js";

const jsonAt = process.argv.indexOf("--json");
const jsonFile = jsonAt > 0 ? process.argv[jsonAt + 1] : undefined;
const instances = Number(jsonAt === 2 ? 100_000 : (process.argv[2] ?? 100_000));
const perService = 100;
const sm = new RegistryStateMachine();
let index = 0;
const apply = (env: CommandEnvelope) => sm.apply({ term: 1, index: ++index, kind: EntryKind.Normal, data: encodeCommand(env) });

const t0 = performance.now();
for (let i = 0; i < instances; i++) {
  const service = `svc-${Math.floor(i / perService)}`;
  apply({
    v: 1,
    at: 1_700_000_000_000 + i,
    session: { client: `client-${i % 10_000}`, seq: Math.floor(i / 10_000) + 1 },
    cmd: {
      op: "instance.register",
      instance: {
        id: `${service}-i${i % perService}`,
        service,
        address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
        port: 8080,
        tags: ["http", "v2", `shard-${i % 16}`],
        metadata: { version: "1.4.2", team: "payments", build: `b${i}` },
        weight: 100,
        priority: i % 3,
        zone: `eu-west-1${"abc"[i % 3]}`,
        ttlMs: 10_000,
        deregisterCriticalAfterMs: 600_000,
      },
    },
  });
}
for (let i = 0; i < 10_000; i++) apply({ v: 1, at: 1_700_000_100_000 + i, cmd: { op: "kv.put", key: `config/app-${i}`, value: Buffer.from(`value-${i}`).toString("base64") } });
const built = performance.now() - t0;

const runs = 5;
let snapMs = 0;
let restoreMs = 0;
let bytes: Uint8Array = new Uint8Array(0);
for (let r = 0; r < runs; r++) {
  const a = performance.now();
  bytes = sm.snapshot();
  const b = performance.now();
  const copy = new RegistryStateMachine();
  copy.restore(bytes);
  const c = performance.now();
  snapMs += b - a;
  restoreMs += c - b;
  if (r === 0 && Buffer.compare(Buffer.from(copy.snapshot()), Buffer.from(bytes)) !== 0) throw new Error("restored state snapshots differently");
}
// As the node does it: the cluster machine wraps the registry's snapshot (base64 inside its JSON).
const cluster = new ClusterStateMachine(sm);
const w0 = performance.now();
const wrapped = cluster.snapshot();
const w1 = performance.now();
new ClusterStateMachine(new RegistryStateMachine()).restore(wrapped);
const w2 = performance.now();

const result = JSON.stringify({
  clusterSnapshotBytes: wrapped.length,
  clusterSnapshotMs: Math.round(w1 - w0),
  clusterRestoreMs: Math.round(w2 - w1),
  instances,
  kvKeys: 10_000,
  sessions: sm.stats().sessions,
  buildMs: Math.round(built),
  snapshotBytes: bytes.length,
  snapshotMsMean: Number((snapMs / runs).toFixed(1)),
  restoreMsMean: Number((restoreMs / runs).toFixed(1)),
});
console.log(result);
if (jsonFile) writeFileSync(jsonFile, `${result}\n`);
