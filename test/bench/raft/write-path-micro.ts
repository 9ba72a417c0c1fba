/**
 * The leader's own per-put work outside gRPC and the Raft core, in one process, no I/O: the wire
 * check of a PutRequest's bytes and their decode, the command's encoding, and what applying it
 * costs (decode, session digest, value check, the KV put). Each part runs in rounds, interleaved,
 * and the table gives the median µs per put over the rounds: compare builds side by side.
 *
 *   npx tsx test/bench/raft/write-path-micro.ts [--puts 20000] [--rounds 7] [--json out.json]
 */
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { checkedService } from "../../../src/api/wire-check.js";
import { clientApi, clientPackageDefinition } from "../../../src/common/proto.js";
import { EntryKind } from "../../../src/raft/index.js";
import { decodeCommand, encodeCommand } from "../../../src/registry/codec.js";
import { requestDigest } from "../../../src/registry/state-machine-sessions.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import { validateKvValue } from "../../../src/registry/validate.js";
import type { CommandEnvelope } from "../../../src/registry/types.js";
import { median } from "./stats.js";

const { values } = parseArgs({ options: { puts: { type: "string", default: "20000" }, rounds: { type: "string", default: "7" }, json: { type: "string" } }, strict: true });
const PUTS = Number(values.puts);
const ROUNDS = Number(values.rounds);
/** VALUE_BYTES: bench:raft's put size. */
const VALUE_BYTES = 256;

const value = Buffer.alloc(VALUE_BYTES, 7);
const KV = clientApi().KV as unknown as { service: Record<string, { requestSerialize(o: unknown): Buffer; requestDeserialize(b: Buffer): unknown }> };
const put = KV.service.Put!;
const request = put.requestSerialize({ key: "bench/key-000123", value, session: { client: "bench-client-7", seq: 42 } });
const checked = checkedService(KV.service as never, clientPackageDefinition()) as unknown as typeof KV.service;
const env = (i: number): CommandEnvelope => ({ v: 1, at: 1_700_000_000_000 + i, session: { client: "bench-client-7", seq: i + 1 }, cmd: { op: "kv.put", key: `bench/key-${i % 1000}`, value: value.toString("base64") } });
const entries = Array.from({ length: PUTS }, (_, i) => encodeCommand(env(i)));

let sink = 0;
const parts: Record<string, () => void> = {
  "wire check + decode (PutRequest)": () => {
    for (let i = 0; i < PUTS; i++) sink += (checked.Put!.requestDeserialize(request) as { key: string }).key.length;
  },
  "decode only (no check)": () => {
    for (let i = 0; i < PUTS; i++) sink += (put.requestDeserialize(request) as { key: string }).key.length;
  },
  "encodeCommand": () => {
    for (let i = 0; i < PUTS; i++) sink += encodeCommand(env(i)).length;
  },
  "decodeCommand": () => {
    for (const e of entries) sink += decodeCommand(e).at;
  },
  "requestDigest": () => {
    for (let i = 0; i < PUTS; i++) sink += requestDigest(env(i).cmd).length;
  },
  "validateKvValue": () => {
    const v = value.toString("base64");
    for (let i = 0; i < PUTS; i++) validateKvValue(v);
  },
  "apply (registry machine)": () => {
    const sm = new RegistryStateMachine();
    for (let i = 0; i < PUTS; i++) sm.apply({ term: 1, index: i + 1, kind: EntryKind.Normal, data: entries[i]! });
  },
};

const times: Record<string, number[]> = {};
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, f] of Object.entries(parts)) {
    const t = process.hrtime.bigint();
    f();
    (times[name] ??= []).push(Number(process.hrtime.bigint() - t) / 1000 / PUTS);
  }
}
const medians = Object.fromEntries(Object.entries(times).map(([name, xs]) => [name, median(xs.slice(1))]));
for (const [name, us] of Object.entries(medians)) console.log(`${name.padEnd(34)} ${us.toFixed(2)} µs per put`);
if (values.json !== undefined) {
  writeFileSync(values.json, `${JSON.stringify({ machine: `${cpus()[0]?.model ?? "unknown"}, ${cpus().length} cores, node ${process.version}`, loadavg: loadavg()[0], puts: PUTS, rounds: ROUNDS, microsecondsPerPut: medians }, null, 2)}\n`);
}
if (sink === 0.5) console.log(sink);
