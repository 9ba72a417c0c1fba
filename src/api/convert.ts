/** Conversions between the registry's model and the client API's messages. */
import type { Health, Instance, InstanceRole, InstanceSpec, MasterState, KvEntry, RegistryEvent, Service, ServiceConfig } from "../registry/types.js";
import { DEFAULT_SERVICE_CONFIG } from "../registry/types.js";
import { CONFIG_FIELDS, fromWire, INSTANCE_FIELDS, SPEC_FIELDS, toWire } from "../registry/fields.js";
import type { EventMsg, InstanceMsg, KeyValueMsg, ServiceConfigMsg, ServiceMsg } from "../common/messages.js";

/** DEFAULT_TTL_MS and DEFAULT_WEIGHT are the field table's defaults (src/registry/fields.ts), named here for the API's callers. */
export { DEFAULT_TTL_MS, DEFAULT_WEIGHT } from "../registry/fields.js";

export function kvToMsg(e: KvEntry): KeyValueMsg {
  return { key: e.key, value: Buffer.from(e.value, "base64"), createIndex: e.createIndex, modIndex: e.modIndex, version: e.version };
}

/** configToMsg writes every field of the table under its wire name. */
export function configToMsg(c: ServiceConfig): ServiceConfigMsg {
  return toWire(CONFIG_FIELDS, c) as unknown as ServiceConfigMsg;
}

/** configFromMsg fills what the request left empty from the defaults (each row's wireAbsent rule). */
export function configFromMsg(m: ServiceConfigMsg | null | undefined): ServiceConfig {
  if (!m) return DEFAULT_SERVICE_CONFIG;
  return fromWire(CONFIG_FIELDS, m as unknown as Record<string, unknown>);
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
  return { ...(toWire(INSTANCE_FIELDS, i) as unknown as InstanceMsg), role };
}

/** specFromMsg reads a registration; output-only fields are ignored, unset ones get defaults. */
export function specFromMsg(m: InstanceMsg): InstanceSpec {
  return fromWire(SPEC_FIELDS, m as unknown as Record<string, unknown>) as unknown as InstanceSpec;
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
