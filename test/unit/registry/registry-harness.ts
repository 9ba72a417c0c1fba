import { EntryKind } from "../../../src/raft/index.js";
import { encodeCommand } from "../../../src/registry/codec.js";
import { RegistryStateMachine, type RegistryStateMachineOptions } from "../../../src/registry/state-machine.js";
import { decodeSnapshot, encodeSnapshot, SNAPSHOT_VERSION_JSON } from "../../../src/registry/state-machine-snapshot.js";
import type { CommandResult, InstanceSpec, RegistryCommand, RegistryEvent, Session } from "../../../src/registry/types.js";
import { instanceSpec } from "../../fixtures/registry.js";
import { RegistryWorkload } from "../../sim/registry-workload.js";
import { Rng } from "../../sim/rng.js";

/** T0 is the leader-stamped time the harness starts at. */
export const T0 = 1_700_000_000_000;

/** spec builds a valid registration with overrides (the shared fixture, with this harness's own defaults). */
export function spec(id: string, over: Partial<InstanceSpec> = {}): InstanceSpec {
  return instanceSpec(id, { port: 8080, tags: ["http"], metadata: { v: "1" }, weight: 100, zone: "z1", ttlMs: 10_000, deregisterCriticalAfterMs: 60_000, ...over });
}

/** b64 encodes text as a KV value. */
export const b64 = (s: string) => Buffer.from(s).toString("base64");

/** Harness feeds a machine entries with consecutive indexes and records its events. */
export class Harness {
  readonly sm: RegistryStateMachine;
  readonly events: RegistryEvent[][] = [];
  resets: number[] = [];
  index = 0;
  at = T0;

  constructor(limits?: RegistryStateMachineOptions["limits"]) {
    this.sm = new RegistryStateMachine({ onEvents: (e) => this.events.push([...e]), onReset: (i) => this.resets.push(i), limits });
  }

  /** run applies one command stamped with the harness clock. */
  run(cmd: RegistryCommand, session?: Session): CommandResult {
    return this.raw(encodeCommand(session ? { v: 1, at: this.at, session, cmd } : { v: 1, at: this.at, cmd }))!;
  }

  /** ok applies a command that must succeed. */
  ok(cmd: RegistryCommand, session?: Session): Extract<CommandResult, { ok: true }> {
    const r = this.run(cmd, session);
    if (!r.ok) throw new Error(`${cmd.op} failed: ${r.code} ${r.message}`);
    return r;
  }

  /** raw applies entry data as is. */
  raw(data: Uint8Array, kind: EntryKind = EntryKind.Normal): CommandResult | undefined {
    return this.sm.apply({ term: 1, index: ++this.index, kind, data });
  }

  /** lastEvents are the events of the last entry that had any. */
  get lastEvents(): RegistryEvent[] {
    return this.events[this.events.length - 1] ?? [];
  }
}

/** V3_SERVICE_COLUMNS and V3_INSTANCE_COLUMNS are the fixed columns of snapshot versions 2 and 3. */
const V3_SERVICE_COLUMNS = ["name", "policy", "mode", "retries", "retryBudgetPercent", "perTryTimeoutMs", "fallback", "createIndex", "modIndex"];
const V3_INSTANCE_COLUMNS = ["service", "id", "address", "port", "tags", "metadata", "weight", "priority", "zone", "ttlMs", "deregisterCriticalAfterMs", "health", "note", "healthSince", "createIndex", "modIndex"];

/** jsonSnapshot rewrites a snapshot in format 4, the last all-JSON one (headed columns), for a test to read or edit as JSON. */
export function jsonSnapshot(data: Uint8Array): Uint8Array {
  return encodeSnapshot(decodeSnapshot(data), SNAPSHOT_VERSION_JSON);
}

/** jsonDocument is a snapshot as the JSON document of format 4. */
export function jsonDocument(data: Uint8Array): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(jsonSnapshot(data))) as Record<string, unknown>;
}

/**
 * legacySnapshot rewrites a snapshot as the version-3 or version-2 layout older builds wrote: fixed
 * columns, no masters and no newer fields (version 2 also without clusterTime).
 */
export function legacySnapshot(data: Uint8Array, version: 2 | 3): Uint8Array {
  const json = jsonDocument(data);
  const pick = (cols: string[], have: string[], rows: unknown[][]) => rows.map((r) => cols.map((c) => r[have.indexOf(c)]));
  const { serviceColumns, instanceColumns, clusterTime, ...rest } = json;
  const out: Record<string, unknown> = {
    ...rest,
    version,
    services: pick(V3_SERVICE_COLUMNS, serviceColumns as string[], json.services as unknown[][]),
    instances: pick(V3_INSTANCE_COLUMNS, instanceColumns as string[], json.instances as unknown[][]),
  };
  if (version === 3) out.clusterTime = clusterTime;
  return new TextEncoder().encode(JSON.stringify(out));
}

/** randomLog draws a random log: registry writes (with retries, stale and bad ones) and leader no-ops, with leader time that may step back. */
export function randomLog(seed: number, length: number): Uint8Array[] {
  const rng = new Rng(seed);
  const workload = new RegistryWorkload(rng);
  let at = T0;
  return Array.from({ length }, () => {
    at += rng.nextInt(3_000) - 500;
    return rng.chance(0.05) ? new Uint8Array(0) : workload.next(at);
  });
}
