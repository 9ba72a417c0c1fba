/** Conversions between the registry's model and the client API's messages. */
import type { Health, Instance, InstanceRole, InstanceSpec, MasterState, KvEntry, RegistryEvent, Service, ServiceConfig } from "../registry/types.js";
import { DEFAULT_SERVICE_CONFIG } from "../registry/types.js";
import type { EventMsg, InstanceMsg, KeyValueMsg, ServiceConfigMsg, ServiceMsg } from "../common/messages.js";

/** DEFAULT_TTL_MS is the lease of an instance registered without one (DESIGN.md: 5 s, heartbeats every TTL/3). */
export const DEFAULT_TTL_MS = 5_000;
/** DEFAULT_WEIGHT is the weight of an instance registered without one (proto3 cannot tell 0 from unset). */
export const DEFAULT_WEIGHT = 1;

export function kvToMsg(e: KvEntry): KeyValueMsg {
  return { key: e.key, value: Buffer.from(e.value, "base64"), createIndex: e.createIndex, modIndex: e.modIndex, version: e.version };
}

export function configToMsg(c: ServiceConfig): ServiceConfigMsg {
  const { retryOn5xx, ...rest } = c;
  return { ...rest, retryOn_5xx: retryOn5xx };
}

/** opt reads a proto3 `optional` field: absent (undefined or null) gives the default. */
function opt<T>(v: T | null | undefined, dflt: T): T {
  return v === undefined || v === null ? dflt : v;
}

/** configFromMsg fills what the request left empty from the defaults. */
export function configFromMsg(m: ServiceConfigMsg | null | undefined): ServiceConfig {
  if (!m) return DEFAULT_SERVICE_CONFIG;
  const D = DEFAULT_SERVICE_CONFIG;
  return {
    policy: (m.policy || DEFAULT_SERVICE_CONFIG.policy) as ServiceConfig["policy"],
    mode: (m.mode || DEFAULT_SERVICE_CONFIG.mode) as ServiceConfig["mode"],
    retries: m.retries,
    retryBudgetPercent: m.retryBudgetPercent,
    perTryTimeoutMs: m.perTryTimeoutMs,
    fallback: m.fallback,
    maxLagOnFailover: opt(m.maxLagOnFailover, D.maxLagOnFailover),
    failback: opt(m.failback, D.failback),
    failbackHoldDownMs: opt(m.failbackHoldDownMs, D.failbackHoldDownMs),
    hashOn: opt(m.hashOn, D.hashOn),
    hashMethod: opt(m.hashMethod, D.hashMethod) as ServiceConfig["hashMethod"],
    retryOn5xx: opt(m.retryOn_5xx, D.retryOn5xx),
    fallbackStatus: opt(m.fallbackStatus, D.fallbackStatus),
    fallbackBody: opt(m.fallbackBody, D.fallbackBody),
    outlierConsecutiveFailures: opt(m.outlierConsecutiveFailures, D.outlierConsecutiveFailures),
    outlierBaseEjectionMs: opt(m.outlierBaseEjectionMs, D.outlierBaseEjectionMs),
    outlierMaxEjectionPercent: opt(m.outlierMaxEjectionPercent, D.outlierMaxEjectionPercent),
    panicThresholdPercent: opt(m.panicThresholdPercent, D.panicThresholdPercent),
    maxConnections: opt(m.maxConnections, D.maxConnections),
    maxPendingRequests: opt(m.maxPendingRequests, D.maxPendingRequests),
    maxRequests: opt(m.maxRequests, D.maxRequests),
    zoneMinHealthyPercent: opt(m.zoneMinHealthyPercent, D.zoneMinHealthyPercent),
  };
}

/** serviceToMsg converts a service; `master` is given for a master-slave service. */
export function serviceToMsg(s: Service, counts?: { instances: number; passing: number; warning: number; critical: number }, master?: MasterState): ServiceMsg {
  return {
    master: master && s.config.mode === "master-slave" ? { instanceId: master.master, epoch: master.epoch } : null,
    name: s.name,
    config: configToMsg(s.config),
    createIndex: s.createIndex,
    modIndex: s.modIndex,
    instances: counts?.instances ?? 0,
    passing: counts?.passing ?? 0,
    warning: counts?.warning ?? 0,
    critical: counts?.critical ?? 0,
  };
}

/** instanceToMsg converts an instance; `role` is its role in a master-slave service ("" otherwise). */
export function instanceToMsg(i: Instance, role: InstanceRole = ""): InstanceMsg {
  return {
    id: i.id,
    service: i.service,
    address: i.address,
    port: i.port,
    tags: [...i.tags],
    metadata: { ...i.metadata },
    weight: i.weight,
    priority: i.priority,
    zone: i.zone,
    ttlMs: i.ttlMs,
    deregisterCriticalAfterMs: i.deregisterCriticalAfterMs,
    health: i.health,
    note: i.note,
    healthSinceMs: i.healthSince,
    createIndex: i.createIndex,
    modIndex: i.modIndex,
    role,
    replicationPosition: i.replicationPosition,
  };
}

/** specFromMsg reads a registration; output-only fields are ignored, unset ones get defaults. */
export function specFromMsg(m: InstanceMsg): InstanceSpec {
  return {
    id: m.id,
    service: m.service,
    address: m.address,
    port: m.port,
    tags: [...(m.tags ?? [])],
    metadata: { ...(m.metadata ?? {}) },
    weight: m.weight || DEFAULT_WEIGHT,
    priority: m.priority,
    zone: m.zone,
    ttlMs: m.ttlMs || DEFAULT_TTL_MS,
    deregisterCriticalAfterMs: m.deregisterCriticalAfterMs,
  };
}

/** countHealth counts instances by health. */
export function countHealth(instances: readonly { health: Health }[]) {
  const c = { instances: instances.length, passing: 0, warning: 0, critical: 0 };
  for (const i of instances) c[i.health]++;
  return c;
}

export function eventToMsg(e: RegistryEvent): EventMsg {
  const base = { index: e.index, kind: e.kind, type: e.type, name: "", id: "", key: "", service: null, instance: null, kv: null };
  switch (e.kind) {
    case "service":
      return e.type === "put" ? { ...base, name: e.service.name, service: serviceToMsg(e.service) } : { ...base, name: e.name };
    case "instance":
      return e.type === "put"
        ? { ...base, name: e.instance.service, id: e.instance.id, instance: instanceToMsg(e.instance, e.role ?? "") }
        : { ...base, name: e.service, id: e.id };
    case "kv":
      return e.type === "put" ? { ...base, key: e.entry.key, kv: kvToMsg(e.entry) } : { ...base, key: e.key };
    case "master":
      return { ...base, name: e.service, id: e.master, master: { service: e.service, master: e.master, epoch: e.epoch, reason: e.reason, previous: e.previous } };
  }
}
