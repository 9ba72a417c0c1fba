import { describe, expect, it } from "vitest";
import { encodeConfChange, EntryKind } from "../../../src/raft/index.js";
import { encodeCommand } from "../../../src/registry/codec.js";
import { INSTANCES_PER_SERVICE_MAX, NOTE_BYTES_MAX, SERVICES_MAX } from "../../../src/registry/limits.js";
import { DEFAULT_SERVICE_CONFIG } from "../../../src/registry/types.js";
import { b64, Harness, spec, T0 } from "./registry-harness.js";

describe("registry state machine: entries", () => {
  it("registry: no-ops and membership entries advance applied and change nothing", () => {
    const h = new Harness();
    expect(h.raw(new Uint8Array(0))).toBeUndefined();
    expect(h.raw(encodeConfChange({ type: 0, node: "n2" } as never), EntryKind.ConfChange)).toBeUndefined();
    expect(h.sm.applied).toBe(2);
    expect(h.events).toEqual([]);
    expect(h.sm.stats()).toMatchObject({ services: 0, instances: 0, kvKeys: 0 });
  });

  it("registry: malformed data is refused as invalid-argument without changing anything", () => {
    const h = new Harness();
    for (const bad of ["not json", "{}", '{"v":2,"at":1,"cmd":{"op":"kv.put","key":"a","value":""}}', '{"v":1,"at":1,"cmd":{"op":"nope"}}', '{"v":1,"at":1,"cmd":{"op":"kv.put","key":1,"value":""}}']) {
      expect(h.raw(new TextEncoder().encode(bad))).toMatchObject({ ok: false, code: "invalid-argument", index: h.index });
    }
    expect(h.raw(new Uint8Array([0xff, 0xfe]))).toMatchObject({ ok: false, code: "invalid-argument" });
    expect(h.events).toEqual([]);
    expect(h.sm.applied).toBe(6);
  });

  it("registry: an entry out of order is an invariant violation", () => {
    const h = new Harness();
    expect(() => h.sm.apply({ term: 1, index: 2, kind: EntryKind.Normal, data: new Uint8Array(0) })).toThrow(/without gaps/);
  });
});

describe("registry state machine: services and instances", () => {
  it("registry: instance.register creates the service with the default config, then replaces the instance keeping createIndex", () => {
    const h = new Harness();
    const r = h.ok({ op: "instance.register", instance: spec("i1") });
    expect(r).toEqual({ ok: true, index: 1 });
    expect(h.lastEvents.map((e) => `${e.kind}.${e.type}@${e.index}`)).toEqual(["service.put@1", "instance.put@1"]);
    expect(h.sm.getService("web")?.service).toEqual({ name: "web", config: DEFAULT_SERVICE_CONFIG, createIndex: 1, modIndex: 1 });
    h.ok({ op: "health.set", changes: [{ service: "web", id: "i1", health: "critical", note: "down", ifModIndex: 0 }] });
    h.at = T0 + 5000;
    h.ok({ op: "instance.register", instance: spec("i1", { port: 9090, metadata: { z: "1", a: "2" } }) });
    expect(h.lastEvents.map((e) => `${e.kind}.${e.type}`)).toEqual(["instance.put"]);
    const i = h.sm.instance("web", "i1")!;
    expect(i).toMatchObject({ port: 9090, health: "passing", note: "", healthSince: T0 + 5000, createIndex: 1, modIndex: 3 });
    expect(Object.keys(i.metadata)).toEqual(["a", "z"]);
    expect(h.sm.stats().instances).toBe(1);
  });

  it("registry: instance.register with a health starts the instance there, and its re-registration sets it again", () => {
    const h = new Harness();
    h.ok({ op: "instance.register", instance: spec("i1"), health: "critical", note: "http-0: connection refused" });
    expect(h.sm.instance("web", "i1")).toMatchObject({ health: "critical", note: "http-0: connection refused", healthSince: T0 });
    expect(h.sm.getService("web")?.instances.map((i) => i.health)).toEqual(["critical"]);
    expect(h.lastEvents.find((e) => e.kind === "instance")).toMatchObject({ instance: { health: "critical" }, previousHealth: undefined });
    h.at = T0 + 1000;
    h.ok({ op: "instance.register", instance: spec("i1"), health: "warning", note: "slow" });
    expect(h.sm.instance("web", "i1")).toMatchObject({ health: "warning", note: "slow", healthSince: T0 + 1000 });
    expect(h.lastEvents.find((e) => e.kind === "instance")).toMatchObject({ previousHealth: "critical" });
    // Without one it registers passing, as it always did.
    h.ok({ op: "instance.register", instance: spec("i1") });
    expect(h.sm.instance("web", "i1")).toMatchObject({ health: "passing", note: "" });
  });

  it("registry: a registration with a health that is not one, or a note over NOTE_BYTES_MAX, is refused naming the field", () => {
    const h = new Harness();
    const bad = h.run({ op: "instance.register", instance: spec("i1"), health: "dead" as never, note: "" });
    expect(bad).toMatchObject({ ok: false, code: "invalid-argument" });
    expect(!bad.ok && bad.message).toContain("health");
    const long = h.run({ op: "instance.register", instance: spec("i1"), health: "critical", note: "x".repeat(NOTE_BYTES_MAX + 1) });
    expect(long).toMatchObject({ ok: false, code: "invalid-argument" });
    expect(!long.ok && long.message).toContain("note");
    expect(h.sm.listServices()).toEqual([]);
    h.ok({ op: "instance.register", instance: spec("i1"), health: "critical", note: "x".repeat(NOTE_BYTES_MAX) });
  });

  it("registry: invalid registrations are refused naming the field", () => {
    const h = new Harness();
    const r = h.run({ op: "instance.register", instance: spec("i1", { port: 0 }) });
    expect(r).toMatchObject({ ok: false, code: "invalid-argument" });
    expect(!r.ok && r.message).toContain("instance.port");
    expect(h.sm.listServices()).toEqual([]);
  });

  it("registry: service.put creates and updates a config; service.delete removes it with every instance", () => {
    const h = new Harness();
    const config = { ...DEFAULT_SERVICE_CONFIG, mode: "master-slave" as const, policy: "p2c" as const };
    h.ok({ op: "service.put", name: "db", config });
    h.ok({ op: "instance.register", instance: spec("b", { service: "db" }) });
    h.ok({ op: "instance.register", instance: spec("a", { service: "db" }) });
    h.ok({ op: "service.put", name: "db", config: { ...config, retries: 0 } });
    expect(h.sm.getService("db")?.service).toMatchObject({ createIndex: 1, modIndex: 4, config: { mode: "master-slave", retries: 0 } });
    expect(h.sm.getService("db")?.instances.map((i) => i.id)).toEqual(["a", "b"]);
    expect(h.run({ op: "service.put", name: "db", config: { ...config, fallback: "db" } })).toMatchObject({ ok: false, code: "invalid-argument" });
    expect(h.ok({ op: "service.delete", name: "db" })).toMatchObject({ deleted: 2 });
    expect(h.lastEvents).toEqual([
      { index: 6, kind: "instance", type: "delete", service: "db", id: "a" },
      { index: 6, kind: "instance", type: "delete", service: "db", id: "b" },
      // The master (b, the first instance to pass) is demoted with its service.
      { index: 6, kind: "master", type: "put", service: "db", master: "", previous: "b", epoch: 6, reason: "demoted" },
      { index: 6, kind: "service", type: "delete", name: "db" },
    ]);
    expect(h.sm.getService("db")).toBeUndefined();
    expect(h.sm.stats()).toMatchObject({ services: 0, instances: 0 });
    expect(h.run({ op: "service.delete", name: "db" })).toMatchObject({ ok: false, code: "not-found" });
  });

  it("registry: reads list services with health counts and instances in order", () => {
    const h = new Harness();
    for (const id of ["c", "a", "b"]) h.ok({ op: "instance.register", instance: spec(id) });
    h.ok({ op: "instance.register", instance: spec("x", { service: "api" }) });
    h.ok({ op: "health.set", changes: [{ service: "web", id: "b", health: "warning", note: "", ifModIndex: 0 }] });
    expect(h.sm.listServices().map((s) => [s.service.name, s.counts])).toEqual([
      ["api", { instances: 1, passing: 1, warning: 0, critical: 0 }],
      ["web", { instances: 3, passing: 2, warning: 1, critical: 0 }],
    ]);
    expect(h.sm.instances("web").map((i) => i.id)).toEqual(["a", "b", "c"]);
    expect(h.sm.instances("nope")).toEqual([]);
    expect(h.sm.allInstances().map((i) => `${i.service}/${i.id}`)).toEqual(["api/x", "web/a", "web/b", "web/c"]);
  });

  it("registry: instance.deregister removes an instance or answers not-found", () => {
    const h = new Harness();
    h.ok({ op: "instance.register", instance: spec("i1") });
    expect(h.ok({ op: "instance.deregister", service: "web", id: "i1" })).toMatchObject({ deleted: 1 });
    expect(h.lastEvents).toEqual([{ index: 2, kind: "instance", type: "delete", service: "web", id: "i1" }]);
    expect(h.run({ op: "instance.deregister", service: "web", id: "i1" })).toMatchObject({ ok: false, code: "not-found" });
    expect(h.run({ op: "instance.deregister", service: "nope", id: "i1" })).toMatchObject({ ok: false, code: "not-found" });
    expect(h.sm.getService("web")?.instances).toEqual([]);
  });

  it("registry: limits on instances per service and services answer resource-exhausted", () => {
    const h = new Harness();
    for (let i = 0; i < INSTANCES_PER_SERVICE_MAX; i++) h.ok({ op: "instance.register", instance: spec(`i${i}`) });
    expect(h.run({ op: "instance.register", instance: spec("one-more") })).toMatchObject({ ok: false, code: "resource-exhausted" });
    h.ok({ op: "instance.register", instance: spec("i0", { port: 1 }) });
    for (let s = 1; s < SERVICES_MAX; s++) h.ok({ op: "service.put", name: `s${s}`, config: DEFAULT_SERVICE_CONFIG });
    expect(h.sm.stats().services).toBe(SERVICES_MAX);
    expect(h.run({ op: "service.put", name: "extra", config: DEFAULT_SERVICE_CONFIG })).toMatchObject({ ok: false, code: "resource-exhausted" });
    expect(h.run({ op: "instance.register", instance: spec("i", { service: "extra" }) })).toMatchObject({ ok: false, code: "resource-exhausted" });
    h.ok({ op: "service.put", name: "s1", config: { ...DEFAULT_SERVICE_CONFIG, retries: 1 } });
  });
});

describe("registry state machine: health and reaping", () => {
  it("registry: health.set applies changes whose instance exists and whose ifModIndex holds", () => {
    const h = new Harness();
    h.ok({ op: "instance.register", instance: spec("a") });
    h.ok({ op: "instance.register", instance: spec("b") });
    h.at = T0 + 100;
    const r = h.ok({
      op: "health.set",
      changes: [
        { service: "web", id: "a", health: "critical", note: "lease expired", ifModIndex: 1 },
        { service: "web", id: "b", health: "critical", note: "", ifModIndex: 1 },
        { service: "web", id: "zz", health: "critical", note: "", ifModIndex: 0 },
      ],
    });
    expect(r).toEqual({ ok: true, index: 3, applied: 1 });
    expect(h.sm.instance("web", "a")).toMatchObject({ health: "critical", note: "lease expired", healthSince: T0 + 100, modIndex: 3 });
    expect(h.sm.instance("web", "b")).toMatchObject({ health: "passing", modIndex: 2 });
    expect(h.lastEvents.map((e) => e.kind === "instance" && e.type === "put" && e.instance.id)).toEqual(["a"]);
  });

  it("registry: health.set with nothing new changes nothing; a new note keeps healthSince", () => {
    const h = new Harness();
    h.ok({ op: "instance.register", instance: spec("a") });
    expect(h.ok({ op: "health.set", changes: [{ service: "web", id: "a", health: "passing", note: "", ifModIndex: 0 }] })).toMatchObject({ applied: 1 });
    expect(h.events.length).toBe(1);
    expect(h.sm.instance("web", "a")?.modIndex).toBe(1);
    h.at = T0 + 10;
    h.ok({ op: "health.set", changes: [{ service: "web", id: "a", health: "critical", note: "x", ifModIndex: 0 }] });
    h.at = T0 + 20;
    h.ok({ op: "health.set", changes: [{ service: "web", id: "a", health: "critical", note: "y", ifModIndex: 0 }] });
    expect(h.sm.instance("web", "a")).toMatchObject({ note: "y", healthSince: T0 + 10, modIndex: 4 });
  });

  it("registry: instance.reap removes only an instance critical for deregisterCriticalAfterMs", () => {
    const h = new Harness();
    h.ok({ op: "instance.register", instance: spec("a", { deregisterCriticalAfterMs: 60_000 }) });
    h.ok({ op: "instance.register", instance: spec("never", { deregisterCriticalAfterMs: 0 }) });
    expect(h.run({ op: "instance.reap", service: "web", id: "a" })).toMatchObject({ ok: false, code: "failed-precondition" });
    h.at = T0 + 1000;
    h.ok({
      op: "health.set",
      changes: [
        { service: "web", id: "a", health: "critical", note: "", ifModIndex: 0 },
        { service: "web", id: "never", health: "critical", note: "", ifModIndex: 0 },
      ],
    });
    h.at = T0 + 1000 + 59_999;
    expect(h.run({ op: "instance.reap", service: "web", id: "a" })).toMatchObject({ ok: false, code: "failed-precondition" });
    h.at = T0 + 1000 + 60_000;
    expect(h.ok({ op: "instance.reap", service: "web", id: "a" })).toMatchObject({ deleted: 1 });
    expect(h.lastEvents).toEqual([{ index: h.index, kind: "instance", type: "delete", service: "web", id: "a" }]);
    h.at = T0 + 10 ** 9;
    expect(h.run({ op: "instance.reap", service: "web", id: "never" })).toMatchObject({ ok: false, code: "failed-precondition" });
    expect(h.run({ op: "instance.reap", service: "web", id: "a" })).toMatchObject({ ok: false, code: "not-found" });
  });
});

describe("registry state machine: KV", () => {
  it("registry: kv.put keeps createIndex, counts versions and returns the previous entry", () => {
    const h = new Harness();
    expect(h.ok({ op: "kv.put", key: "a", value: b64("1") })).toEqual({ ok: true, index: 1 });
    const r = h.ok({ op: "kv.put", key: "a", value: b64("2") });
    expect(r.prev).toEqual({ key: "a", value: b64("1"), createIndex: 1, modIndex: 1, version: 1 });
    expect(h.sm.kvGet("a")).toEqual({ key: "a", value: b64("2"), createIndex: 1, modIndex: 2, version: 2 });
    expect(h.lastEvents).toEqual([{ index: 2, kind: "kv", type: "put", entry: h.sm.kvGet("a") }]);
    expect(h.run({ op: "kv.put", key: "", value: "" })).toMatchObject({ ok: false, code: "invalid-argument" });
    expect(h.run({ op: "kv.put", key: "b", value: "%%" })).toMatchObject({ ok: false, code: "invalid-argument" });
  });

  it("registry: kv.delete of one key, a missing key and a prefix", () => {
    const h = new Harness();
    for (const k of ["app/a", "app/b", "apple", "b"]) h.ok({ op: "kv.put", key: k, value: "" });
    expect(h.ok({ op: "kv.delete", key: "nope" })).toEqual({ ok: true, index: 5, deleted: 0 });
    expect(h.events.length).toBe(4);
    expect(h.ok({ op: "kv.delete", key: "b" })).toMatchObject({ deleted: 1, prev: { key: "b", version: 1 } });
    expect(h.ok({ op: "kv.delete", key: "app/", prefix: true })).toMatchObject({ deleted: 2 });
    expect(h.lastEvents).toEqual([
      { index: 7, kind: "kv", type: "delete", key: "app/a", modIndex: 7 },
      { index: 7, kind: "kv", type: "delete", key: "app/b", modIndex: 7 },
    ]);
    expect(h.sm.kvList("").entries.map((e) => e.key)).toEqual(["apple"]);
    // A key put again after its deletion starts a new life.
    h.ok({ op: "kv.put", key: "b", value: "" });
    expect(h.sm.kvGet("b")).toMatchObject({ createIndex: 8, version: 1 });
  });

  it("registry: kvList pages by prefix and startAfter", () => {
    const h = new Harness();
    for (const k of ["a/3", "a/1", "b/1", "a/2", "a"]) h.ok({ op: "kv.put", key: k, value: "" });
    expect(h.sm.kvList("a/", { limit: 2 })).toMatchObject({ entries: [{ key: "a/1" }, { key: "a/2" }], more: true });
    expect(h.sm.kvList("a/", { startAfter: "a/2", limit: 2 })).toMatchObject({ entries: [{ key: "a/3" }], more: false });
    expect(h.sm.kvList("a/", { startAfter: "a/3" })).toEqual({ entries: [], more: false });
    expect(h.sm.kvList("", { startAfter: "a/9" }).entries.map((e) => e.key)).toEqual(["b/1"]);
    expect(h.sm.kvList("a/", { startAfter: "0" }).entries.map((e) => e.key)).toEqual(["a/1", "a/2", "a/3"]);
  });

  it("registry: kv.txn runs the success branch when every compare holds, else the failure branch", () => {
    const h = new Harness();
    h.ok({ op: "kv.put", key: "lock", value: b64("me") });
    const cas = (mod: number) =>
      h.ok({
        op: "kv.txn",
        compares: [{ key: "lock", target: "mod", op: "==", number: mod }],
        success: [{ op: "put", key: "lock", value: b64("you") }, { op: "get", key: "lock" }],
        failure: [{ op: "get", key: "lock" }, { op: "get", key: "missing" }],
      });
    const miss = cas(7);
    expect(miss).toMatchObject({ succeeded: false, gets: [{ key: "lock", value: b64("me") }, null] });
    expect(h.events.length).toBe(1);
    const hit = cas(1);
    expect(hit).toMatchObject({ succeeded: true, gets: [{ key: "lock", value: b64("you"), modIndex: 3, version: 2 }] });
  });

  it("registry: txn compares treat a missing key as value '' and zero numbers, and order values as bytes", () => {
    const h = new Harness();
    h.ok({ op: "kv.put", key: "v", value: b64("b") });
    const holds = (c: object) => h.ok({ op: "kv.txn", compares: [c as never], success: [], failure: [] }).succeeded;
    expect(holds({ key: "gone", target: "create", op: "==", number: 0 })).toBe(true);
    expect(holds({ key: "gone", target: "version", op: "<", number: 1 })).toBe(true);
    expect(holds({ key: "gone", target: "value", op: "==", value: "" })).toBe(true);
    expect(holds({ key: "v", target: "value", op: ">", value: b64("a") })).toBe(true);
    expect(holds({ key: "v", target: "value", op: "<", value: b64("ba") })).toBe(true);
    expect(holds({ key: "v", target: "value", op: "!=", value: b64("b") })).toBe(false);
    // 0xff sorts after 'b' as a byte though its base64 text sorts first.
    expect(holds({ key: "v", target: "value", op: "<", value: Buffer.from([0xff]).toString("base64") })).toBe(true);
    expect(holds({ key: "v", target: "version", op: ">", number: 0 })).toBe(true);
  });

  it("registry: txn deletes (one key and a prefix) count and emit events; a bad op refuses the whole txn", () => {
    const h = new Harness();
    for (const k of ["p/1", "p/2", "q"]) h.ok({ op: "kv.put", key: k, value: "" });
    const r = h.ok({ op: "kv.txn", compares: [], success: [{ op: "delete", key: "p/", prefix: true }, { op: "delete", key: "q" }, { op: "delete", key: "x" }], failure: [] });
    expect(r).toMatchObject({ succeeded: true, deleted: 3, gets: [] });
    expect(h.lastEvents.length).toBe(3);
    const bad = h.run({ op: "kv.txn", compares: [], success: [{ op: "put", key: "a", value: "" }, { op: "put", key: "", value: "" }], failure: [] });
    expect(bad).toMatchObject({ ok: false, code: "invalid-argument" });
    expect(h.sm.kvGet("a")).toBeUndefined();
  });
});

describe("registry state machine: envelope", () => {
  it("registry: an invalid session is refused before the command runs", () => {
    const h = new Harness();
    const data = encodeCommand({ v: 1, at: T0, session: { client: "", seq: 1 }, cmd: { op: "kv.put", key: "a", value: "" } });
    expect(h.raw(data)).toMatchObject({ ok: false, code: "invalid-argument" });
    expect(h.sm.kvGet("a")).toBeUndefined();
  });
});
