/**
 * The log format of registry commands: one CommandEnvelope as UTF-8 JSON per entry. decodeCommand
 * checks the structure (types of every field) and rebuilds the envelope from known fields only, so
 * the state machine never stores a field no encoder wrote; the limits (ranges, sizes) are
 * validate.ts's job.
 */
import type { AclRule } from "./acl.js";
import { MalformedCommandError } from "./errors.js";
import { CONFIG_FIELDS, readRecord, SPEC_FIELDS } from "./fields.js";
import type { CommandEnvelope, Health, HealthChange, InstanceSpec, KvCompare, KvOp, PositionReport, RegistryCommand, ServiceConfig, Session } from "./types.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** COMMAND_VERSION is the envelope format this code writes and reads. */
export const COMMAND_VERSION = 1;

/** encodeCommand makes the entry data of a command. */
export function encodeCommand(env: CommandEnvelope): Uint8Array {
  return encoder.encode(JSON.stringify(env));
}

/** decodeCommand reads entry data written by encodeCommand; anything else throws MalformedCommandError. */
export function decodeCommand(data: Uint8Array): CommandEnvelope {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(data));
  } catch (err) {
    throw new MalformedCommandError("not UTF-8 JSON", { cause: err });
  }
  const env = obj(raw, "envelope");
  if (env.v !== COMMAND_VERSION) throw new MalformedCommandError(`unknown version ${JSON.stringify(env.v)}`);
  const at = num(env.at, "at");
  const session = env.session === undefined ? undefined : decodeSession(env.session);
  const cmd = decodeBody(obj(env.cmd, "cmd"));
  return session ? { v: 1, at, session, cmd } : { v: 1, at, cmd };
}

function decodeSession(v: unknown): Session {
  const s = obj(v, "session");
  return { client: str(s.client, "session.client"), seq: num(s.seq, "session.seq") };
}

function decodeBody(c: Record<string, unknown>): RegistryCommand {
  switch (c.op) {
    case "service.put":
      return { op: c.op, name: str(c.name, "name"), config: decodeConfig(c.config) };
    case "service.delete":
      return { op: c.op, name: str(c.name, "name") };
    case "instance.register": {
      const base = { op: c.op, instance: decodeSpec(c.instance) } as const;
      if (c.health === undefined && c.note === undefined) return base;
      // The value is validate.ts's to check (validateInitialHealth); the codec checks the type.
      return { ...base, health: str(c.health, "health") as Health, note: str(c.note, "note") };
    }
    case "instance.maintenance":
      return { op: c.op, service: str(c.service, "service"), id: str(c.id, "id"), on: bool(c.on, "on"), reason: str(c.reason, "reason") };
    case "instance.deregister":
    case "instance.reap":
      return { op: c.op, service: str(c.service, "service"), id: str(c.id, "id") };
    case "health.set":
      return c.positions === undefined
        ? { op: c.op, changes: list(c.changes, "changes").map(decodeHealthChange) }
        : { op: c.op, changes: list(c.changes, "changes").map(decodeHealthChange), positions: decodePositions(c.positions) };
    case "failover": {
      const reason = str(c.reason, "reason");
      if (reason !== "switchover" && reason !== "failback") throw new MalformedCommandError(`unknown failover reason ${JSON.stringify(reason)}`);
      const base = { op: c.op, service: str(c.service, "service"), to: str(c.to, "to"), reason } as const;
      return c.positions === undefined ? base : { ...base, positions: decodePositions(c.positions) };
    }
    case "kv.put":
      return { op: c.op, key: str(c.key, "key"), value: str(c.value, "value") };
    case "kv.delete":
      return c.prefix === undefined
        ? { op: c.op, key: str(c.key, "key") }
        : { op: c.op, key: str(c.key, "key"), prefix: bool(c.prefix, "prefix") };
    case "kv.txn":
      return {
        op: c.op,
        compares: list(c.compares, "compares").map(decodeCompare),
        success: list(c.success, "success").map(decodeOp),
        failure: list(c.failure, "failure").map(decodeOp),
      };
    case "acl.token.create":
      return { op: c.op, accessor: str(c.accessor, "accessor"), secretHash: str(c.secretHash, "secretHash"), name: str(c.name, "name"), rules: list(c.rules, "rules").map(decodeAclRule) };
    case "acl.token.delete":
      return { op: c.op, accessor: str(c.accessor, "accessor") };
    case "acl.bootstrap":
      return { op: c.op, accessor: str(c.accessor, "accessor"), secretHash: str(c.secretHash, "secretHash") };
    default:
      throw new MalformedCommandError(`unknown op ${JSON.stringify(c.op)}`);
  }
}

/** decodeAclRule reads one rule; the role's value and the scopes' form are validate's job (acl.ts). */
export function decodeAclRule(v: unknown): AclRule {
  const r = obj(v, "rule");
  const role = str(r.role, "rule.role") as AclRule["role"];
  const out: { role: AclRule["role"]; services?: string; keys?: string } = { role };
  if (r.services !== undefined) out.services = str(r.services, "rule.services");
  if (r.keys !== undefined) out.keys = str(r.keys, "rule.keys");
  return out;
}

const malformed = (reason: string) => new MalformedCommandError(reason);

function decodeConfig(v: unknown): ServiceConfig {
  return readRecord(CONFIG_FIELDS, obj(v, "config"), "config", malformed);
}

function decodeSpec(v: unknown): InstanceSpec {
  return readRecord(SPEC_FIELDS, obj(v, "instance"), "instance", malformed);
}

function decodePositions(v: unknown): PositionReport[] {
  return list(v, "positions").map((x) => {
    const p = obj(x, "position");
    return { service: str(p.service, "position.service"), id: str(p.id, "position.id"), position: num(p.position, "position.position") };
  });
}

function decodeHealthChange(v: unknown): HealthChange {
  const c = obj(v, "change");
  return {
    service: str(c.service, "change.service"),
    id: str(c.id, "change.id"),
    health: str(c.health, "change.health") as HealthChange["health"],
    note: str(c.note, "change.note"),
    ifModIndex: num(c.ifModIndex, "change.ifModIndex"),
  };
}

function decodeCompare(v: unknown): KvCompare {
  const c = obj(v, "compare");
  const out: { -readonly [K in keyof KvCompare]: KvCompare[K] } = {
    key: str(c.key, "compare.key"),
    target: str(c.target, "compare.target") as KvCompare["target"],
    op: str(c.op, "compare.op") as KvCompare["op"],
  };
  if (c.value !== undefined) out.value = str(c.value, "compare.value");
  if (c.number !== undefined) out.number = num(c.number, "compare.number");
  return out;
}

function decodeOp(v: unknown): KvOp {
  const o = obj(v, "operation");
  const key = str(o.key, "operation.key");
  switch (o.op) {
    case "put":
      return { op: "put", key, value: str(o.value, "operation.value") };
    case "delete":
      return o.prefix === undefined ? { op: "delete", key } : { op: "delete", key, prefix: bool(o.prefix, "operation.prefix") };
    case "get":
      return { op: "get", key };
    default:
      throw new MalformedCommandError(`unknown operation ${JSON.stringify(o.op)}`);
  }
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new MalformedCommandError(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new MalformedCommandError(`${what} is not a list`);
  return v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw new MalformedCommandError(`${what} is not a string`);
  return v;
}

function num(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw new MalformedCommandError(`${what} is not a number`);
  return v;
}

function bool(v: unknown, what: string): boolean {
  if (typeof v !== "boolean") throw new MalformedCommandError(`${what} is not a boolean`);
  return v;
}
