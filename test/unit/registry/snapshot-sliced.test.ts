import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runSnapshotJob } from "../../../src/node/state-machine.js";
import { EntryKind } from "../../../src/raft/index.js";
import { copyRecord, INSTANCE_FIELDS } from "../../../src/registry/fields.js";
import { compactInstance, INTERN_CHARS_MAX, StringPool } from "../../../src/registry/records.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import { b64, Harness, randomLog, spec } from "./registry-harness.js";


const apply = (sm: RegistryStateMachine, data: Uint8Array) => sm.apply({ term: 1, index: sm.applied + 1, kind: EntryKind.Normal, data });
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("sliced registry snapshots", () => {
  it("snapshot property: writes applied between the slices never reach the snapshot; it is exactly the state at its index", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 5 }), (seed, at, sliceRows) => {
        const log = randomLog(seed, 300);
        const live = new RegistryStateMachine();
        const still = new RegistryStateMachine();
        for (const d of log.slice(0, at)) {
          apply(live, d);
          apply(still, d);
        }
        const job = live.beginSnapshot(undefined, sliceRows);
        let chunks: readonly Uint8Array[] | undefined;
        // One entry between every two slices, and the rest of the log after the last one.
        for (const d of log.slice(at)) {
          apply(live, d);
          chunks ??= job.step();
        }
        const bytes = chunks ? runSnapshotJob({ step: () => chunks }) : runSnapshotJob(job);
        expect(hex(bytes)).toBe(hex(still.snapshot()));
        const restored = new RegistryStateMachine();
        restored.restore(bytes);
        expect(restored.applied).toBe(at);
        expect(hex(restored.snapshot())).toBe(hex(still.snapshot()));
      }),
      { numRuns: 20 },
    );
  });

  it("snapshot: a snapshot taken a row per slice while its instances, keys and services change is the state when it began", () => {
    const h = new Harness();
    for (let i = 0; i < 20; i++) h.ok({ op: "instance.register", instance: spec(`i${i}`, { tags: ["a", `t${i % 3}`], metadata: { team: "x" } }) });
    h.ok({ op: "kv.put", key: "k1", value: b64("v1") });
    h.ok({ op: "instance.register", instance: spec("j0", { service: "other" }) });
    const before = h.sm.snapshot();
    const index = h.sm.applied;
    const job = h.sm.beginSnapshot(undefined, 1);
    let steps = 0;
    let chunks: readonly Uint8Array[] | undefined;
    for (let i = 0; chunks === undefined; i++) {
      chunks = job.step();
      steps++;
      // Re-register with new fields, change health, deregister, write and delete keys, drop a service.
      if (i < 20) h.ok({ op: "instance.register", instance: spec(`i${i}`, { port: 9000 + i, tags: ["changed"] }) });
      if (i === 3) h.ok({ op: "health.set", changes: [{ service: "web", id: "i19", health: "critical", note: "down", ifModIndex: 0 }] });
      if (i === 4) h.ok({ op: "instance.deregister", service: "web", id: "i18" });
      if (i === 5) h.ok({ op: "kv.put", key: "k1", value: b64("v2") });
      if (i === 6) h.ok({ op: "kv.delete", key: "k1" });
      if (i === 7) h.ok({ op: "service.delete", name: "other" });
    }
    expect(steps).toBeGreaterThan(20);
    const bytes = runSnapshotJob({ step: () => chunks });
    expect(hex(bytes)).toBe(hex(before));
    const restored = new RegistryStateMachine();
    restored.restore(bytes);
    expect(restored.applied).toBe(index);
    expect(restored.instance("web", "i0")?.port).not.toBe(9000);
    expect(restored.instance("web", "i18")).toBeDefined();
    expect(restored.kvGet("k1")?.value).toBe(b64("v1"));
    expect(restored.getService("other")).toBeDefined();
    expect(h.sm.getService("other")).toBeUndefined();
  });
});

describe("sliced registry snapshots and the session table", () => {
  it("snapshot: sessioned writes applied between the slices, one client's window sliding past the view, never reach it", () => {
    const h = new Harness();
    // Two clients; "a" writes more than the window (128) in all, so its record's oldest results
    // leave from the front while the snapshot still holds the record as it was.
    let seqA = 0;
    let seqB = 0;
    for (let i = 0; i < 150; i++) h.ok({ op: "kv.put", key: `a${i}`, value: b64("v") }, { client: "a", seq: ++seqA });
    h.ok({ op: "kv.put", key: "b0", value: b64("v") }, { client: "b", seq: ++seqB });
    const before = h.sm.snapshot();
    const index = h.sm.applied;
    const job = h.sm.beginSnapshot(undefined, 1);
    let chunks: readonly Uint8Array[] | undefined;
    for (let i = 0; chunks === undefined; i++) {
      chunks = job.step();
      h.ok({ op: "kv.put", key: `a-late${i}`, value: b64("w") }, { client: "a", seq: ++seqA });
      if (i % 3 === 0) h.ok({ op: "kv.put", key: `b-late${i}`, value: b64("w") }, { client: "b", seq: ++seqB });
    }
    expect(hex(runSnapshotJob({ step: () => chunks }))).toBe(hex(before));
    // And a second view taken after those writes holds them: the table changed records only after copying.
    const restored = new RegistryStateMachine();
    restored.restore(h.sm.snapshot());
    expect(restored.applied).toBe(h.sm.applied);
    expect(restored.applied).toBeGreaterThan(index);
    expect(hex(restored.snapshot())).toBe(hex(h.sm.snapshot()));
  });
});

describe("compact instance records", () => {
  it("records: the compact record holds the same values as the table's copy, sorted metadata and a __proto__ key included", () => {
    const pool = new StringPool();
    const meta = JSON.parse('{"z":"1","a":"2","__proto__":"x"}') as Record<string, string>;
    const i = { ...spec("a", { tags: ["b", "a"], metadata: meta }), health: "passing", note: "", healthSince: 1, createIndex: 2, modIndex: 3, replicationPosition: 0, maintenance: false, maintenanceReason: "" } as const;
    const c = compactInstance(i, pool);
    expect(c).toEqual(copyRecord(INSTANCE_FIELDS, i));
    expect(Object.keys(c)).toEqual(INSTANCE_FIELDS.map((f) => f.name));
    expect(Object.entries(c.metadata)).toEqual([["__proto__", "x"], ["a", "2"], ["z", "1"]]);
    expect(c.tags).toEqual(["b", "a"]);
    expect(Object.isFrozen(c.tags)).toBe(true);
    // Equal tag lists are one list.
    expect(compactInstance({ ...i, id: "b" }, pool).tags).toBe(c.tags);
  });

  it("records: the string pool holds at most its bound and never longer strings, and returns equal values past it", () => {
    const pool = new StringPool(2, 1);
    expect(pool.intern("a")).toBe("a");
    pool.intern("b");
    pool.intern("c");
    expect(pool.size).toBe(2);
    pool.intern("x".repeat(INTERN_CHARS_MAX + 1));
    pool.intern("y".repeat(INTERN_CHARS_MAX));
    expect(pool.size).toBe(2);
    const first = pool.tags(["p"]);
    expect(pool.tags(["p"])).toBe(first);
    const past = pool.tags(["q"]);
    expect(past).toEqual(["q"]);
    expect(pool.tags(["q"])).not.toBe(past);
  });
});
