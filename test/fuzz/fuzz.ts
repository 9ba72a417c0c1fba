/**
 * The fuzz run against a live cluster (issue 16): every case of cases.ts sent, one at a time, to the
 * nodes in turn with a raw client. Checks: no node exits; every call is answered before its deadline;
 * every refusal has a clear status (never UNKNOWN, never INTERNAL); and the cluster's state
 * afterwards equals what the writes it accepted alone produce, replayed in order on a fresh state
 * machine (whose answers must match the cluster's, code for code).
 */
import { status as Status } from "@grpc/grpc-js";
import { configToMsg, instanceToMsg, specFromMsg, configFromMsg } from "../../src/api/convert.js";
import { sessionFromMsg } from "../../src/api/session.js";
import { checkedService, MalformedRequest } from "../../src/api/wire-check.js";
import { clientApi, clientPackageDefinition } from "../../src/common/proto.js";
import type { InstanceMsg, ServiceConfigMsg } from "../../src/common/messages.js";
import { encodeCommand } from "../../src/registry/codec.js";
import { RegistryStateMachine } from "../../src/registry/state-machine.js";
import type { CommandResult, KvCompare, KvOp, RegistryCommand, Session } from "../../src/registry/types.js";
import { EntryKind } from "../../src/raft/index.js";
import type { ProcessCluster } from "../integration/harness/process-cluster.js";
import { decode, encode, type RawAnswer, RawClient, statusName } from "../integration/harness/raw-grpc.js";
import { type Case, drawCases } from "./cases.js";

/** CALL_DEADLINE_MS: a write waits at most WRITE_WAIT_MS_MAX (10 s) on the server; a call still unanswered at 15 s hangs. */
export const CALL_DEADLINE_MS = 15_000;

/** FuzzReport is what a run found. */
export interface FuzzReport {
  readonly cases: number;
  readonly seed: number;
  /** perMethod: "KV.Put" → kind → count. */
  readonly perMethod: Record<string, Record<string, number>>;
  /** statuses: "KV.Put" → status name → count. */
  readonly statuses: Record<string, Record<string, number>>;
  /** problems: what broke a check (empty on a clean run). */
  readonly problems: string[];
  readonly modelWrites: number;
  readonly stateChecked: boolean;
  readonly ms: number;
}

const b64 = (b: Buffer | undefined) => (b ?? Buffer.alloc(0)).toString("base64");

/** commandOf is the command the API proposes for a decoded write request (as src/api does), or undefined for a method that proposes none the check models. */
function commandOf(id: string, r: Record<string, unknown>): RegistryCommand | undefined {
  switch (id) {
    case "KV.Put":
      return { op: "kv.put", key: r.key as string, value: b64(r.value as Buffer) };
    case "KV.Delete":
      return { op: "kv.delete", key: r.key as string, prefix: r.prefix === true };
    case "KV.Txn": {
      type W = { op: string; key: string; value?: Buffer; prefix?: boolean; target?: string; number?: number };
      const compares: KvCompare[] = (r.compares as W[]).map((c) => ({ key: c.key, target: c.target as KvCompare["target"], op: c.op as KvCompare["op"], value: b64(c.value), number: c.number }));
      const op = (o: W): KvOp => (o.op === "put" ? { op: "put", key: o.key, value: b64(o.value) } : o.op === "delete" ? { op: "delete", key: o.key, prefix: o.prefix } : ({ op: o.op, key: o.key } as KvOp));
      return { op: "kv.txn", compares, success: (r.success as W[]).map(op), failure: (r.failure as W[]).map(op) };
    }
    case "Registry.Register":
      return r.instance ? { op: "instance.register", instance: specFromMsg(r.instance as InstanceMsg) } : undefined;
    case "Registry.Deregister":
      return { op: "instance.deregister", service: r.service as string, id: r.id as string };
    case "Registry.SetMaintenance":
      return { op: "instance.maintenance", service: r.service as string, id: r.id as string, on: r.on === true, reason: r.reason as string };
    case "Registry.PutService":
      return { op: "service.put", name: r.name as string, config: configFromMsg(r.config as ServiceConfigMsg | null) };
    case "Registry.DeleteService":
      return { op: "service.delete", name: r.name as string };
    default:
      return undefined;
  }
}

/** REFUSED_IN_APPLY: codes the state machine answers with; a write answered so reached the log, and the model must answer the same. */
const REFUSED_IN_APPLY = new Set<number>([Status.NOT_FOUND, Status.FAILED_PRECONDITION, Status.RESOURCE_EXHAUSTED]);
const CODE_OF: Record<string, number> = { "not-found": Status.NOT_FOUND, "failed-precondition": Status.FAILED_PRECONDITION, "resource-exhausted": Status.RESOURCE_EXHAUSTED, "invalid-argument": Status.INVALID_ARGUMENT, "stale-session": Status.DEADLINE_EXCEEDED };

/** Model replays the accepted writes on a fresh state machine. */
class Model {
  readonly sm = new RegistryStateMachine({});
  private index = 0;
  private at = 1_700_000_000_000;
  writes = 0;

  apply(cmd: RegistryCommand, session: Session | undefined): CommandResult {
    this.writes++;
    this.at += 1;
    const data = encodeCommand(session ? { v: 1, at: this.at, session, cmd } : { v: 1, at: this.at, cmd });
    return this.sm.apply({ term: 1, index: ++this.index, kind: EntryKind.Normal, data })!;
  }
}

/**
 * refusedByWireCheck says whether the server's own wire check (wire-check.ts, run here on the
 * same descriptors) refuses a body: such a call must end with a status, however long the node
 * takes under load, so it is not cut short by the quiet window of an accepted watch.
 */
function refusedByWireCheck(c: Case): boolean {
  let checked = CHECKED.get(c.service);
  if (!checked) CHECKED.set(c.service, (checked = checkedService(clientApi()[c.service].service, clientPackageDefinition())));
  return checked[c.method]!.requestDeserialize(c.body) instanceof MalformedRequest;
}
const CHECKED = new Map<string, ReturnType<typeof checkedService>>();

async function send(client: RawClient, c: Case): Promise<RawAnswer> {
  const path = c.service;
  // An accepted watch with nothing to send yet stays open: quiet for 100 ms is its answer. A body
  // the wire check refuses waits for its status instead (an accepted one runs into the deadline
  // and is reported as a hang), so a node slow under load is not read as having accepted it.
  if (c.shape === "server-stream") return client.serverStream(path, c.method, c.body, CALL_DEADLINE_MS, refusedByWireCheck(c) ? CALL_DEADLINE_MS + 1_000 : 100);
  if (c.shape === "bidi") return client.bidi(path, c.method, c.body, CALL_DEADLINE_MS);
  return client.unary(path, c.method, c.body, CALL_DEADLINE_MS);
}

/** clear says whether a status is one a client can act on: not UNKNOWN, not INTERNAL, not a deadline, no stack trace. */
function unclear(a: RawAnswer): string | null {
  if (a.code === Status.UNKNOWN || a.code === Status.INTERNAL) return `${statusName(a.code)} (${a.details.slice(0, 200)})`;
  if (a.code === Status.DEADLINE_EXCEEDED) return `no answer within ${CALL_DEADLINE_MS} ms (${a.details.slice(0, 200)})`;
  if (/\n\s+at /.test(a.details)) return `a stack trace in the details: ${a.details.slice(0, 200)}`;
  return null;
}

/** runFuzz sends `cases` cases drawn from `seed` to the running cluster and checks it; `log` gets progress lines. */
export async function runFuzz(cluster: Pick<ProcessCluster, "api" | "isRunning">, ids: readonly string[], cases: number, seed: number, log: (s: string) => void = () => undefined): Promise<FuzzReport> {
  const t0 = performance.now();
  const clients = ids.map((id) => new RawClient(cluster.api(id)));
  const perMethod: Record<string, Record<string, number>> = {};
  const statuses: Record<string, Record<string, number>> = {};
  const problems: string[] = [];
  const model = new Model();
  const bump = (t: Record<string, Record<string, number>>, a: string, b: string) => {
    t[a] ??= {};
    t[a][b] = (t[a][b] ?? 0) + 1;
  };
  const batch = 500;
  try {
    for (let from = 0; from < cases; from += batch) {
      // Drawn in batches so a long run does not hold every case in memory.
      const drawn = drawCases(Math.min(batch, cases - from), seed + from);
      for (const [k, c] of drawn.entries()) {
        const i = from + k;
        const id = `${c.service}.${c.method}`;
        const a = await send(clients[i % clients.length]!, c);
        bump(perMethod, id, c.kind);
        bump(statuses, id, statusName(a.code));
        const bad = unclear(a);
        if (bad && problems.length < 50) problems.push(`case ${i} ${id} (${c.kind}, ${c.body.length} bytes ${c.body.subarray(0, 24).toString("hex")}): ${bad}`);
        if (c.kind !== "valid" && c.kind !== "raw" && c.kind !== "edge" && a.code === Status.OK && id !== "Registry.Watch" && id !== "Events.Watch" && problems.length < 50) {
          problems.push(`case ${i} ${id}: an invalid request was accepted`);
        }
        // The model: writes the cluster ran (OK) or refused in apply are replayed, in the order they were answered.
        // INVALID_ARGUMENT "request: …" is apply() refusing (RefusedInvalidError): it reached the log too, and its session seq was spent.
        const appliedInvalid = a.code === Status.INVALID_ARGUMENT && a.details.startsWith("request: ");
        if (a.code !== Status.OK && !REFUSED_IN_APPLY.has(a.code) && !appliedInvalid) continue;
        let req: Record<string, unknown>;
        try {
          req = clientApi()[c.service].service[c.method]!.requestDeserialize(c.body) as Record<string, unknown>;
        } catch {
          if (problems.length < 50) problems.push(`case ${i} ${id}: answered ${statusName(a.code)} although its bytes do not decode`);
          continue;
        }
        const cmd = commandOf(id, req);
        if (!cmd) continue;
        const session = sessionFromMsg(req.session as never);
        const r = model.apply(cmd, session);
        const modelCode = r.ok ? Status.OK : (CODE_OF[r.code] ?? -1);
        const dupCluster = a.code === Status.OK && a.response ? (decode<{ duplicate?: boolean }>(c.service, c.method, a.response).duplicate === true) : false;
        const dupModel = r.ok && r.duplicate === true;
        if ((modelCode !== a.code || dupCluster !== dupModel) && problems.length < 50) {
          problems.push(`case ${i} ${id}: the cluster answered ${statusName(a.code)}${dupCluster ? " (duplicate)" : ""}, the replay ${statusName(modelCode)}${dupModel ? " (duplicate)" : ""}${r.ok ? "" : ` ${r.message.slice(0, 120)}`}`);
        }
      }
      log(`  ${Math.min(from + batch, cases)} / ${cases} cases, ${Math.round(performance.now() - t0)} ms`);
    }
    for (const id of ids) if (!cluster.isRunning(id)) problems.push(`node ${id} exited`);
    const stateProblems = await compareState(clients[0]!, model);
    problems.push(...stateProblems);
  } finally {
    for (const c of clients) c.close();
  }
  return { cases, seed, perMethod, statuses, problems, modelWrites: model.writes, stateChecked: true, ms: Math.round(performance.now() - t0) };
}

/** INSTANCE_COMPARED: the fields the log alone decides (health, notes and indexes also follow leases and other entries). */
const INSTANCE_COMPARED = ["id", "service", "address", "port", "tags", "metadata", "weight", "priority", "zone", "ttlMs", "deregisterCriticalAfterMs", "maintenance", "maintenanceReason"] as const;

async function compareState(client: RawClient, model: Model): Promise<string[]> {
  const problems: string[] = [];
  const call = async <T>(service: "KV" | "Registry", method: string, req: object): Promise<T> => {
    const a = await client.unary(service, method, encode(service, method, req), CALL_DEADLINE_MS);
    if (a.code !== Status.OK) throw new Error(`${service}.${method} for the state check: ${statusName(a.code)} ${a.details}`);
    return decode<T>(service, method, a.response!);
  };
  const kv = await call<{ kvs: { key: string; value: Buffer; version: number }[]; more: boolean }>("KV", "List", { prefix: "", limit: 10_000 });
  const got = kv.kvs.map((e) => `${e.key}=${e.value.toString("base64")}@${e.version}`);
  const want = model.sm.kvList("", { limit: 10_000 }).entries.map((e) => `${e.key}=${e.value}@${e.version}`);
  if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`KV differs: cluster ${got.length} keys [${got.slice(0, 5).join(", ")}…], replay ${want.length} [${want.slice(0, 5).join(", ")}…]`);
  const services = await call<{ services: { name: string; config: unknown }[] }>("Registry", "ListServices", {});
  // Decoded with oneofs, a proto3 `optional` field also comes with its synthetic oneof ("_field"): not part of the config.
  const plain = (c: unknown) => Object.fromEntries(Object.entries(c as Record<string, unknown>).filter(([k]) => !k.startsWith("_")));
  const gotSvc = services.services.map((s) => JSON.stringify([s.name, plain(s.config)])).sort();
  const wantSvc = model.sm.listServices().map((s) => JSON.stringify([s.service.name, configToMsg(s.service.config)])).sort();
  if (JSON.stringify(gotSvc) !== JSON.stringify(wantSvc)) problems.push(`services differ: cluster ${gotSvc.join(" ")}; replay ${wantSvc.join(" ")}`);
  for (const s of model.sm.listServices()) {
    const name = s.service.name;
    const g = await call<{ instances: Record<string, unknown>[] }>("Registry", "GetService", { name });
    const pick = (i: Record<string, unknown>) => JSON.stringify(INSTANCE_COMPARED.map((f) => i[f]));
    // An instance with deregisterCriticalAfterMs (only a bit-flipped request sets it) may be reaped by its lease, outside the replayed writes.
    const reapable = (i: Record<string, unknown>) => Number(i.deregisterCriticalAfterMs) > 0;
    const gi = g.instances.filter((i) => !reapable(i)).map(pick).sort();
    const wi = (model.sm.getService(name)?.instances ?? [])
      .map((i) => instanceToMsg(i) as unknown as Record<string, unknown>)
      .filter((i) => !reapable(i))
      .map(pick)
      .sort();
    if (JSON.stringify(gi) !== JSON.stringify(wi)) problems.push(`instances of ${name} differ: cluster ${gi.join(" ")}; replay ${wi.join(" ")}`);
  }
  return problems;
}

/** formatReport prints case counts per method and kind, and the statuses returned. */
export function formatReport(r: FuzzReport): string {
  const lines = [`fuzz: ${r.cases} cases, seed ${r.seed}, ${r.ms} ms; writes replayed on the model: ${r.modelWrites}`];
  for (const id of Object.keys(r.perMethod).sort()) {
    const kinds = Object.entries(r.perMethod[id]!).map(([k, n]) => `${k} ${n}`).join(", ");
    const st = Object.entries(r.statuses[id] ?? {}).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(", ");
    lines.push(`  ${id.padEnd(24)} ${kinds.padEnd(46)} → ${st}`);
  }
  const total: Record<string, number> = {};
  for (const m of Object.values(r.statuses)) for (const [k, n] of Object.entries(m)) total[k] = (total[k] ?? 0) + n;
  lines.push(`  statuses: ${Object.entries(total).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(", ")}`);
  lines.push(r.problems.length === 0 ? "  crashes 0, hangs 0, unclear statuses 0, state check passed" : `  PROBLEMS (${r.problems.length}):\n    ${r.problems.join("\n    ")}`);
  return lines.join("\n");
}
