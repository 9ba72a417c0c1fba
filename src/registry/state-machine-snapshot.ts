/**
 * The registry's snapshot format: UTF-8 JSON with a version field, records as positional arrays
 * (a 100,000-instance registry would otherwise repeat every field name 100,000 times). Services
 * sort by name, instances by (service, id), keys by key and sessions in LRU order, so the same
 * state always gives the same bytes. The watch history is not part of it.
 *
 * Version 3 (cluster time, see cluster-clock.ts; healthSince and lastAt are cluster times):
 *   { version: 3, applied, clusterTime,
 *     services:  [[name, policy, mode, retries, retryBudgetPercent, perTryTimeoutMs, fallback, createIndex, modIndex]],
 *     instances: [[service, id, address, port, tags, metadata, weight, priority, zone, ttlMs,
 *                  deregisterCriticalAfterMs, health, note, healthSince, createIndex, modIndex]],
 *     kv:        [[key, value, createIndex, modIndex, version]],
 *     sessions:  [[client, maxSeq, lastAt, [[seq, result]...]]] }
 *
 * Version 2 is the same without clusterTime (times were leader wall clocks); it still reads, with
 * the cluster time taken as the largest time it holds, so time goes on from there and no recorded
 * time lies in the future.
 */
import { MalformedSnapshotError, SnapshotVersionError } from "./errors.js";
import type { SessionRecord } from "./state-machine-sessions.js";
import { DEFAULT_SERVICE_CONFIG } from "./types.js";
import type { CommandResult, Health, Instance, KvEntry, Service, ServiceConfig } from "./types.js";

/** REGISTRY_SNAPSHOT_VERSION is the format snapshot() writes; bump it when the layout changes. */
export const REGISTRY_SNAPSHOT_VERSION = 3;

/** SNAPSHOT_VERSION_NO_CLUSTER_TIME is the last format without clusterTime; decodeSnapshot still reads it. */
const SNAPSHOT_VERSION_NO_CLUSTER_TIME = 2;

/** SnapshotState is everything a snapshot holds, in its canonical order. */
export interface SnapshotState {
  readonly applied: number;
  /** clusterTime is the machine's cluster time (ms). */
  readonly clusterTime: number;
  /** services in name order, each with its instances in id order. */
  readonly services: readonly { readonly service: Service; readonly instances: readonly Instance[] }[];
  /** kv in key order. */
  readonly kv: readonly KvEntry[];
  /** sessions in LRU order (least recently used first). */
  readonly sessions: readonly (readonly [string, SessionRecord])[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** encodeSnapshot writes a state in format REGISTRY_SNAPSHOT_VERSION. */
export function encodeSnapshot(s: SnapshotState): Uint8Array {
  const services: unknown[] = [];
  const instances: unknown[] = [];
  for (const { service: v, instances: list } of s.services) {
    const c = v.config;
    services.push([v.name, c.policy, c.mode, c.retries, c.retryBudgetPercent, c.perTryTimeoutMs, c.fallback, v.createIndex, v.modIndex]);
    for (const i of list) {
      instances.push([
        i.service, i.id, i.address, i.port, i.tags, i.metadata, i.weight, i.priority, i.zone, i.ttlMs,
        i.deregisterCriticalAfterMs, i.health, i.note, i.healthSince, i.createIndex, i.modIndex,
      ]);
    }
  }
  const kv = s.kv.map((e) => [e.key, e.value, e.createIndex, e.modIndex, e.version]);
  const sessions = s.sessions.map(([client, r]) => [client, r.maxSeq, r.lastAt, r.results]);
  return encoder.encode(JSON.stringify({ version: REGISTRY_SNAPSHOT_VERSION, applied: s.applied, clusterTime: s.clusterTime, services, instances, kv, sessions }));
}

/** decodeSnapshot reads a snapshot; an unknown version throws SnapshotVersionError, anything else unreadable MalformedSnapshotError. */
export function decodeSnapshot(data: Uint8Array): SnapshotState {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(decoder.decode(data)) as Record<string, unknown>;
  } catch (err) {
    throw new MalformedSnapshotError("not UTF-8 JSON", { cause: err });
  }
  if (typeof raw !== "object" || raw === null) throw new MalformedSnapshotError("not an object");
  if (raw.version !== REGISTRY_SNAPSHOT_VERSION && raw.version !== SNAPSHOT_VERSION_NO_CLUSTER_TIME) throw new SnapshotVersionError(raw.version);
  const applied = int(raw.applied, "applied");
  const services: { service: Service; instances: Instance[] }[] = [];
  const byName = new Map<string, Instance[]>();
  for (const t of rows(raw.services, "services", 9)) {
    const config: ServiceConfig = {
      ...DEFAULT_SERVICE_CONFIG,
      policy: str(t[1], "service policy") as ServiceConfig["policy"],
      mode: str(t[2], "service mode") as ServiceConfig["mode"],
      retries: int(t[3], "service retries"),
      retryBudgetPercent: int(t[4], "service retryBudgetPercent"),
      perTryTimeoutMs: int(t[5], "service perTryTimeoutMs"),
      fallback: str(t[6], "service fallback"),
    };
    const service: Service = { name: str(t[0], "service name"), config, createIndex: int(t[7], "service createIndex"), modIndex: int(t[8], "service modIndex") };
    const instances: Instance[] = [];
    byName.set(service.name, instances);
    services.push({ service, instances });
  }
  for (const t of rows(raw.instances, "instances", 16)) {
    const inst = decodeInstance(t);
    const list = byName.get(inst.service);
    if (!list) throw new MalformedSnapshotError(`instance ${inst.id} of unknown service ${inst.service}`);
    list.push(inst);
  }
  const kv = rows(raw.kv, "kv", 5).map(
    (t): KvEntry => ({ key: str(t[0], "kv key"), value: str(t[1], "kv value"), createIndex: int(t[2], "kv createIndex"), modIndex: int(t[3], "kv modIndex"), version: int(t[4], "kv version") }),
  );
  const sessions = rows(raw.sessions, "sessions", 4).map((t): [string, SessionRecord] => {
    const results = t[3];
    if (!Array.isArray(results) || !results.every((x) => Array.isArray(x) && x.length === 2 && typeof x[1] === "object" && x[1] !== null)) {
      throw new MalformedSnapshotError("session results are not [seq, result] pairs");
    }
    return [
      str(t[0], "session client"),
      {
        maxSeq: int(t[1], "session maxSeq"),
        lastAt: num(t[2], "session lastAt"),
        results: results.map((x) => [int(x[0], "session result seq"), x[1] as CommandResult] as const),
      },
    ];
  });
  const clusterTime = raw.version === REGISTRY_SNAPSHOT_VERSION ? num(raw.clusterTime, "clusterTime") : largestTime(services, sessions);
  return { applied, clusterTime, services, kv, sessions };
}

/** largestTime is the latest time a version-2 snapshot records (0 when it records none). */
function largestTime(services: readonly { readonly instances: readonly Instance[] }[], sessions: readonly (readonly [string, SessionRecord])[]): number {
  let t = 0;
  for (const { instances } of services) for (const i of instances) t = Math.max(t, i.healthSince);
  for (const [, r] of sessions) t = Math.max(t, r.lastAt);
  return t;
}

function decodeInstance(t: unknown[]): Instance {
  const tags = t[4];
  if (!Array.isArray(tags) || !tags.every((x) => typeof x === "string")) throw new MalformedSnapshotError("instance tags are not strings");
  const metadata = t[5];
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) throw new MalformedSnapshotError("instance metadata is not an object");
  return {
    id: str(t[1], "instance id"),
    service: str(t[0], "instance service"),
    address: str(t[2], "instance address"),
    port: int(t[3], "instance port"),
    tags: tags as string[],
    metadata: metadata as Record<string, string>,
    weight: int(t[6], "instance weight"),
    priority: int(t[7], "instance priority"),
    zone: str(t[8], "instance zone"),
    ttlMs: int(t[9], "instance ttlMs"),
    deregisterCriticalAfterMs: int(t[10], "instance deregisterCriticalAfterMs"),
    health: str(t[11], "instance health") as Health,
    note: str(t[12], "instance note"),
    healthSince: num(t[13], "instance healthSince"),
    createIndex: int(t[14], "instance createIndex"),
    modIndex: int(t[15], "instance modIndex"),
    replicationPosition: 0,
  };
}

function rows(v: unknown, what: string, width: number): unknown[][] {
  if (!Array.isArray(v)) throw new MalformedSnapshotError(`${what} is not a list`);
  for (const t of v) if (!Array.isArray(t) || t.length !== width) throw new MalformedSnapshotError(`${what} holds a record that is not ${width} fields`);
  return v as unknown[][];
}

function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw new MalformedSnapshotError(`${what} is not a string`);
  return v;
}

function num(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw new MalformedSnapshotError(`${what} is not a number`);
  return v;
}

function int(v: unknown, what: string): number {
  if (!Number.isSafeInteger(v)) throw new MalformedSnapshotError(`${what} is not an integer`);
  return v as number;
}
