import { describe, expect, it } from "vitest";
import { endpointOf } from "../../../src/balancer/tables.js";
import { decodeCommand, encodeCommand } from "../../../src/registry/codec.js";
import { NOTE_BYTES_MAX } from "../../../src/registry/limits.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import { DEFAULT_SERVICE_CONFIG } from "../../../src/registry/types.js";
import { Harness, jsonSnapshot, spec } from "./registry-harness.js";

describe("registry: maintenance", () => {
  it("maintenance: on and off change the instance (one event each); setting it again changes nothing", () => {
    const h = new Harness();
    h.ok({ op: "instance.register", instance: spec("i1") });
    expect(h.sm.instance("web", "i1")).toMatchObject({ maintenance: false, maintenanceReason: "" });
    h.ok({ op: "instance.maintenance", service: "web", id: "i1", on: true, reason: "kernel upgrade" });
    expect(h.sm.instance("web", "i1")).toMatchObject({ maintenance: true, maintenanceReason: "kernel upgrade", modIndex: h.index, health: "passing" });
    expect(h.lastEvents.map((e) => `${e.kind}.${e.type}`)).toEqual(["instance.put"]);
    const batches = h.events.length;
    h.ok({ op: "instance.maintenance", service: "web", id: "i1", on: true, reason: "kernel upgrade" });
    expect(h.events.length).toBe(batches);
    h.ok({ op: "instance.maintenance", service: "web", id: "i1", on: false, reason: "" });
    expect(h.sm.instance("web", "i1")).toMatchObject({ maintenance: false, maintenanceReason: "" });
  });

  it("maintenance: a re-registration keeps it (the instance's agent must not undo an operator's drain)", () => {
    const h = new Harness();
    h.ok({ op: "instance.register", instance: spec("i1") });
    h.ok({ op: "instance.maintenance", service: "web", id: "i1", on: true, reason: "r" });
    h.ok({ op: "instance.register", instance: spec("i1", { weight: 7 }) });
    expect(h.sm.instance("web", "i1")).toMatchObject({ weight: 7, maintenance: true, maintenanceReason: "r" });
  });

  it("maintenance: an unknown instance is not-found; a reason of NOTE_BYTES_MAX bytes is accepted, one more refused naming the field", () => {
    const h = new Harness();
    expect(h.run({ op: "instance.maintenance", service: "web", id: "nope", on: true, reason: "" })).toMatchObject({ ok: false, code: "not-found" });
    h.ok({ op: "instance.register", instance: spec("i1") });
    h.ok({ op: "instance.maintenance", service: "web", id: "i1", on: true, reason: "x".repeat(NOTE_BYTES_MAX) });
    const r = h.run({ op: "instance.maintenance", service: "web", id: "i1", on: true, reason: "x".repeat(NOTE_BYTES_MAX + 1) });
    expect(r).toMatchObject({ ok: false, code: "invalid-argument" });
    expect(!r.ok && r.message).toContain("reason");
  });

  it("maintenance: the command round-trips the log codec", () => {
    const env = { v: 1, at: 5, cmd: { op: "instance.maintenance", service: "web", id: "i1", on: true, reason: "why" } } as const;
    expect(decodeCommand(encodeCommand(env))).toEqual(env);
  });

  it("maintenance: snapshots carry it; a snapshot written before the columns existed loads with it off", () => {
    const h = new Harness();
    h.ok({ op: "instance.register", instance: spec("a") });
    h.ok({ op: "instance.maintenance", service: "web", id: "a", on: true, reason: "r" });
    const restored = new RegistryStateMachine();
    restored.restore(h.sm.snapshot());
    expect(restored.instance("web", "a")).toMatchObject({ maintenance: true, maintenanceReason: "r" });
    const json = JSON.parse(new TextDecoder().decode(jsonSnapshot(h.sm.snapshot())));
    const drop = new Set(["maintenance", "maintenanceReason"].map((c) => json.instanceColumns.indexOf(c)));
    const old = {
      ...json,
      instanceColumns: json.instanceColumns.filter((_: string, i: number) => !drop.has(i)),
      instances: json.instances.map((r: unknown[]) => r.filter((_, i) => !drop.has(i))),
    };
    const sm = new RegistryStateMachine();
    sm.restore(new TextEncoder().encode(JSON.stringify(old)));
    expect(sm.instance("web", "a")).toMatchObject({ maintenance: false, maintenanceReason: "" });
  });

  it("maintenance: the balancer sees an instance in maintenance with weight 0 (drained)", () => {
    const h = new Harness();
    h.ok({ op: "instance.register", instance: spec("a", { weight: 5 }) });
    expect(endpointOf(h.sm.instance("web", "a")!).weight).toBe(5);
    h.ok({ op: "instance.maintenance", service: "web", id: "a", on: true, reason: "" });
    expect(endpointOf(h.sm.instance("web", "a")!).weight).toBe(0);
  });

  it("maintenance: a failover never chooses a standby in maintenance", () => {
    const h = new Harness();
    h.ok({ op: "service.put", name: "db", config: { ...DEFAULT_SERVICE_CONFIG, mode: "master-slave" } });
    for (const id of ["a", "b", "c"]) h.ok({ op: "instance.register", instance: spec(id, { service: "db", priority: id === "b" ? 0 : 10 }) });
    expect(h.sm.masterOf("db").master).toBe("a");
    h.ok({ op: "instance.maintenance", service: "db", id: "b", on: true, reason: "" });
    h.ok({ op: "health.set", changes: [{ service: "db", id: "a", health: "critical", note: "", ifModIndex: 0 }] });
    expect(h.sm.masterOf("db").master).toBe("c");
    const r = h.run({ op: "failover", service: "db", to: "b", reason: "switchover" });
    expect(r).toMatchObject({ ok: false, code: "failed-precondition" });
    expect(!r.ok && r.message).toContain("in maintenance");
  });
});
