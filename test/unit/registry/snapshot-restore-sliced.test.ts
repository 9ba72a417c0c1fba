import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EntryKind } from "../../../src/raft/index.js";
import { MalformedSnapshotError } from "../../../src/registry/errors.js";
import { decodeSnapshot, SnapshotReader } from "../../../src/registry/state-machine-snapshot.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import { b64, Harness, jsonSnapshot, randomLog, spec } from "./registry-harness.js";

const apply = (sm: RegistryStateMachine, data: Uint8Array) => sm.apply({ term: 1, index: sm.applied + 1, kind: EntryKind.Normal, data });
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const enc = (o: unknown) => new TextEncoder().encode(typeof o === "string" ? o : JSON.stringify(o));

/** readSliced runs a reader to its end and counts its steps. */
function readSliced(data: Uint8Array, sliceRows: number): { state: ReturnType<typeof decodeSnapshot>; steps: number } {
  const r = new SnapshotReader(data, sliceRows);
  let steps = 1;
  let state = r.step();
  for (; state === undefined; steps++) state = r.step();
  return { state, steps };
}

/** machineWith builds a registry of n instances over a few services, keys and sessions. */
function machineWith(n: number): Harness {
  const h = new Harness();
  for (let i = 0; i < n; i++) h.ok({ op: "instance.register", instance: spec(`i${i}`, { service: `s${i % 3}`, tags: ["a", `t${i % 2}`], metadata: { note: 'q"\\,[]{}é' } }) });
  h.ok({ op: "kv.put", key: "k,]\"1", value: b64("v1") });
  h.ok({ op: "kv.put", key: "k2", value: b64("v2") });
  return h;
}

describe("sliced registry restore", () => {
  it("restore property: read a few rows per step, any snapshot gives what decodeSnapshot gives, and a restored machine snapshots to the same bytes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 5 }), (seed, at, sliceRows) => {
        const sm = new RegistryStateMachine();
        for (const d of randomLog(seed, 300).slice(0, at)) apply(sm, d);
        const bytes = sm.snapshot();
        expect(readSliced(bytes, sliceRows).state).toEqual(decodeSnapshot(bytes));
        // The same state in format 4 (all JSON) reads the same.
        expect(readSliced(jsonSnapshot(bytes), sliceRows).state).toEqual(decodeSnapshot(bytes));
        const restored = new RegistryStateMachine();
        const job = restored.beginRestore(bytes, sliceRows);
        while (!job.step()) {
          // one slice per step
        }
        expect(restored.applied).toBe(sm.applied);
        expect(hex(restored.snapshot())).toBe(hex(sm.snapshot()));
      }),
      { numRuns: 30 },
    );
  });

  it("restore: a row per step takes a step per row, strings holding quotes, commas, brackets and non-ASCII characters included", () => {
    const h = machineWith(30);
    const bytes = h.sm.snapshot();
    const { state, steps } = readSliced(bytes, 1);
    expect(state).toEqual(decodeSnapshot(bytes));
    // 3 services, 30 instances, 2 keys and the sessions, a row a step.
    expect(steps).toBeGreaterThan(35);
    expect(readSliced(bytes, 1_000).steps).toBeLessThan(6);
  });

  it("restore: the old state stays whole and readable until the last step takes on the new one", () => {
    const src = machineWith(12);
    const bytes = src.sm.snapshot();
    const dst = new Harness();
    dst.ok({ op: "instance.register", instance: spec("old", { service: "before" }) });
    dst.ok({ op: "kv.put", key: "old", value: b64("x") });
    const before = hex(dst.sm.snapshot());
    const job = dst.sm.beginRestore(bytes, 2);
    let steps = 0;
    for (;;) {
      steps++;
      if (job.step()) break;
      expect(hex(dst.sm.snapshot())).toBe(before);
      expect(dst.sm.instance("before", "old")).toBeDefined();
      expect(dst.sm.kvGet("k2")).toBeUndefined();
    }
    expect(steps).toBeGreaterThan(5);
    expect(hex(dst.sm.snapshot())).toBe(hex(bytes));
    expect(dst.sm.instance("before", "old")).toBeUndefined();
    expect(dst.sm.kvGet("k2")?.value).toBe(b64("v2"));
  });

  it("restore: bytes in another layout (whitespace, another key order, version 3) read as decodeSnapshot reads them", () => {
    const bytes = jsonSnapshot(machineWith(7).sm.snapshot());
    const doc = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    const pretty = enc(JSON.stringify(doc, null, 2));
    expect(readSliced(pretty, 2).state).toEqual(decodeSnapshot(bytes));
    const { sessions, ...rest } = doc;
    const reordered = enc({ sessions, ...rest });
    expect(readSliced(reordered, 2).state).toEqual(decodeSnapshot(bytes));
    // Whitespace between the rows only, the writer's key order kept.
    const spaced = enc(new TextDecoder().decode(bytes).replaceAll("],[", "] , \n[").replaceAll('"instances":[', '"instances": [ '));
    expect(readSliced(spaced, 2).state).toEqual(decodeSnapshot(bytes));
  });

  it("restore: a malformed snapshot fails with decodeSnapshot's own error and leaves the old state", () => {
    const bytes = jsonSnapshot(machineWith(5).sm.snapshot());
    const text = new TextDecoder().decode(bytes);
    const cases = [
      text.replace('"instances":[[', '"instances":[[1,'),
      text.slice(0, -1),
      `${text}x`,
      text.replace('"kv":[', '"kv":[1,'),
      text.replace('"applied":', '"applied":-0.5,"x":'),
    ];
    for (const c of cases) {
      let expected: unknown;
      try {
        decodeSnapshot(enc(c));
      } catch (err) {
        expected = err;
      }
      expect(expected).toBeInstanceOf(MalformedSnapshotError);
      const dst = new Harness();
      dst.ok({ op: "kv.put", key: "old", value: b64("x") });
      const before = hex(dst.sm.snapshot());
      const job = dst.sm.beginRestore(enc(c), 1);
      expect(() => {
        while (!job.step()) {
          // until it throws
        }
      }).toThrow((expected as Error).message);
      expect(hex(dst.sm.snapshot())).toBe(before);
    }
  });
});
