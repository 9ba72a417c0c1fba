/**
 * Where a registry's heap goes (in-process, forced GCs): a RegistryStateMachine fed n sessioned
 * registrations (100 per service, from 10,000 clients) and 10,000 KV puts, measured with the
 * watch history at its default bound and again with it emptied, plus the snapshot bytes.
 *   npx tsx --expose-gc test/bench/registry/heap-parts.ts [instances] [--json out.json]
 */
import { writeFileSync } from "node:fs";
import { EntryKind } from "../../../src/raft/index.js";
import { encodeCommand } from "../../../src/registry/codec.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import { instanceSpec, TTL_MS_LONG } from "./instances.js";

const n = Number(process.argv[2] ?? 100_000);
const jsonAt = process.argv.indexOf("--json");
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const h0 = heap();
const sm = new RegistryStateMachine(process.env.HIST ? { limits: { historyEventsMax: Number(process.env.HIST) } } : {});
let index = 0;
for (let i = 0; i < n; i++) {
  const service = `mem-${Math.floor(i / 100)}`;
  const data = encodeCommand({ v: 1, at: 1_700_000_000_000 + i, session: { client: `client-${i % 10_000}`, seq: Math.floor(i / 10_000) + 1 }, cmd: { op: "instance.register", instance: instanceSpec(i, service, `${service}-${i % 100}`, TTL_MS_LONG) } });
  sm.apply({ term: 1, index: ++index, kind: EntryKind.Normal, data });
}
for (let i = 0; i < 10_000; i++) {
  sm.apply({ term: 1, index: ++index, kind: EntryKind.Normal, data: encodeCommand({ v: 1, at: 1_700_000_100_000 + i, cmd: { op: "kv.put", key: `config/app-${i}`, value: Buffer.from(`value-${i}`).toString("base64") } }) });
}
const h1 = heap();
const snap = sm.snapshot();
const restored = new RegistryStateMachine();
restored.restore(snap);
const h2 = heap();
const out = {
  instances: n,
  stats: sm.stats(),
  heapMachineBytes: h1 - h0,
  heapMachineBytesPerInstance: Math.round((h1 - h0) / n),
  heapRestoredBytes: h2 - h1,
  heapRestoredBytesPerInstance: Math.round((h2 - h1) / n),
  snapshotBytes: snap.length,
  rssBytes: process.memoryUsage().rss,
};
console.log(JSON.stringify(out));
if (jsonAt > 0) writeFileSync(process.argv[jsonAt + 1]!, `${JSON.stringify(out, null, 2)}\n`);
