/**
 * Snapshot format 5: instance rows in binary with a string table (snapshot-instance-rows.ts). It
 * must hold exactly what format 4 (all JSON) holds, for any values a record can carry (strings with
 * any characters, lone surrogates included, keys such as "__proto__", integers up to 2^53 - 1,
 * negative and fractional numbers), write a repeated string once, and refuse any damaged bytes
 * with a MalformedSnapshotError, never another error and never a wrong state.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MalformedSnapshotError, RowStructureError, SnapshotVersionError } from "../../../src/registry/errors.js";
import { INSTANCE_FIELDS } from "../../../src/registry/fields.js";
import { InstanceRowReader, STRING_TABLE_MAX } from "../../../src/registry/snapshot-instance-rows.js";
import {
  decodeSnapshot,
  encodeSnapshot,
  formatFor,
  isBinarySnapshot,
  REGISTRY_SNAPSHOT_VERSION,
  SNAPSHOT_READ_MAX_UNSAID,
  SNAPSHOT_VERSION_JSON,
  snapshotFormatOf,
  type SnapshotState,
} from "../../../src/registry/state-machine-snapshot.js";
import type { Instance } from "../../../src/registry/types.js";
import { ClusterStateMachine } from "../../../src/node/cluster-state-machine.js";
import { runSnapshotJob } from "../../../src/node/state-machine.js";
import { b64, Harness, spec } from "./registry-harness.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** codeUnit is any UTF-16 code unit, lone surrogate halves included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
/** REPEATED are strings many records share, so the table is used. */
const REPEATED = ["", "web", "eu-west-1a", "__proto__", "http", "é€😀", 'q"\\,[]{}'];
const str = fc.oneof(
  fc.constantFrom(...REPEATED),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "grapheme", maxLength: 8 }),
  fc.string({ unit: codeUnit, maxLength: 6 }),
  fc.string({ minLength: 65, maxLength: 90 }),
);
const int = fc.oneof(fc.constantFrom(0, 1, 127, 128, 16_383, 16_384, Number.MAX_SAFE_INTEGER, -1, Number.MIN_SAFE_INTEGER), fc.maxSafeInteger());
const num = fc.oneof(int, fc.double({ noNaN: true, noDefaultInfinity: true }));
const strmap = fc.dictionary(fc.oneof(str, fc.constant("__proto__")), str, { maxKeys: 4 }).map((m) => {
  const out: Record<string, string> = Object.create(null);
  for (const k of Object.keys(m).sort()) out[k] = m[k] as string;
  return out;
});

/** instanceArb is any record of service "web": every field by its type, not by its validation. */
const instanceArb = fc.record(
  Object.fromEntries(
    INSTANCE_FIELDS.map((f) => {
      if (f.name === "service") return [f.name, fc.constant("web")];
      switch (f.type) {
        case "string":
          return [f.name, str];
        case "int":
          return [f.name, int];
        case "number":
          return [f.name, num];
        case "bool":
          return [f.name, fc.boolean()];
        case "strings":
          return [f.name, fc.array(str, { maxLength: 4 })];
        case "strmap":
          return [f.name, strmap];
      }
      throw new Error(`no arbitrary for field type ${f.type}`);
    }),
  ),
) as unknown as fc.Arbitrary<Instance>;

/** baseState is a registry with services "web" and "db", a key and a session, whose "web" instances a test replaces. */
function baseState(): SnapshotState {
  const h = new Harness();
  h.ok({ op: "instance.register", instance: spec("seed") }, { client: "c", seq: 1 });
  h.ok({ op: "instance.register", instance: spec("d1", { service: "db", tags: ["x"] }) });
  h.ok({ op: "kv.put", key: "k", value: b64("v") });
  return decodeSnapshot(h.sm.snapshot());
}

function withWeb(base: SnapshotState, instances: readonly Instance[]): SnapshotState {
  return { ...base, services: base.services.map((s) => (s.service.name === "web" ? { ...s, instances } : s)) };
}

describe("snapshot format 5", () => {
  it("format 5 property: any records read back as format 4 reads them, and write the same bytes again", () => {
    const base = baseState();
    fc.assert(
      fc.property(fc.uniqueArray(instanceArb, { selector: (i) => i.id, maxLength: 12 }), (instances) => {
        const state = withWeb(base, instances);
        const v5 = encodeSnapshot(state);
        const v4 = encodeSnapshot(state, SNAPSHOT_VERSION_JSON);
        expect(isBinarySnapshot(v5)).toBe(true);
        expect(isBinarySnapshot(v4)).toBe(false);
        const read = decodeSnapshot(v5);
        expect(read).toEqual(decodeSnapshot(v4));
        expect(hex(encodeSnapshot(read))).toBe(hex(v5));
      }),
      { numRuns: 200 },
    );
  });

  it("formats for readers: the newest when every member reads it (or none is heeded), format 4 for a member that reads less, in whole and sliced snapshots, through the cluster machine too", () => {
    expect(formatFor(undefined)).toBe(REGISTRY_SNAPSHOT_VERSION);
    expect(formatFor(REGISTRY_SNAPSHOT_VERSION)).toBe(REGISTRY_SNAPSHOT_VERSION);
    expect(formatFor(REGISTRY_SNAPSHOT_VERSION + 3)).toBe(REGISTRY_SNAPSHOT_VERSION);
    expect(formatFor(SNAPSHOT_READ_MAX_UNSAID)).toBe(SNAPSHOT_VERSION_JSON);
    expect(formatFor(1)).toBe(SNAPSHOT_VERSION_JSON);
    const h = new Harness();
    for (let i = 0; i < 30; i++) h.ok({ op: "instance.register", instance: spec(`i${i}`, { tags: ["t"], metadata: { k: `v${i}` } }) });
    h.ok({ op: "kv.put", key: "k", value: b64("v") });
    const newest = h.sm.snapshot();
    const forOlder = h.sm.snapshot(SNAPSHOT_READ_MAX_UNSAID);
    expect(snapshotFormatOf(newest)).toBe(REGISTRY_SNAPSHOT_VERSION);
    expect(h.sm.snapshotFormat(forOlder)).toBe(SNAPSHOT_VERSION_JSON);
    expect(JSON.parse(Buffer.from(forOlder).toString("utf8")).version, "all JSON, as builds before format 5 read").toBe(SNAPSHOT_VERSION_JSON);
    expect(decodeSnapshot(forOlder)).toEqual(decodeSnapshot(newest));
    expect(hex(runSnapshotJob(h.sm.beginSnapshot(SNAPSHOT_READ_MAX_UNSAID, 7)))).toBe(hex(forOlder));
    expect(hex(runSnapshotJob(h.sm.beginSnapshot(undefined, 7)))).toBe(hex(newest));
    // The cluster machine wraps the registry's bytes in its header and passes readMax and the format through.
    const cluster = new ClusterStateMachine(h.sm);
    expect(cluster.snapshotFormat(cluster.snapshot())).toBe(REGISTRY_SNAPSHOT_VERSION);
    expect(cluster.snapshotFormat(cluster.snapshot(SNAPSHOT_READ_MAX_UNSAID))).toBe(SNAPSHOT_VERSION_JSON);
    expect(cluster.snapshotFormat(runSnapshotJob(cluster.beginSnapshot(SNAPSHOT_READ_MAX_UNSAID)))).toBe(SNAPSHOT_VERSION_JSON);
  });

  it("format 5: a string that many records hold is written once", () => {
    const h = new Harness();
    for (let i = 0; i < 200; i++) h.ok({ op: "instance.register", instance: spec(`i${i}`, { tags: ["frontend-tier"], metadata: { team: "payments-platform" } }) });
    const v5 = Buffer.from(h.sm.snapshot());
    const v4 = Buffer.from(encodeSnapshot(decodeSnapshot(v5), SNAPSHOT_VERSION_JSON));
    const count = (b: Buffer, s: string) => b.toString("latin1").split(s).length - 1;
    expect(count(v5, "frontend-tier")).toBe(1);
    expect(count(v5, "payments-platform")).toBe(1);
    expect(count(v4, "frontend-tier")).toBe(200);
    expect(v5.length).toBeLessThan(v4.length * 0.7);
  });

  it(`format 5: past ${STRING_TABLE_MAX} distinct strings the rest are written in full and still read back`, () => {
    const base = baseState();
    const template = base.services.find((s) => s.service.name === "web")!.instances[0]!;
    const instances: Instance[] = [];
    for (let i = 0; i < 700; i++) {
      instances.push({ ...template, id: `i${String(i).padStart(4, "0")}`, tags: Array.from({ length: 100 }, (_, k) => `t${i}-${k}`) });
    }
    const state = withWeb(base, instances);
    const v5 = encodeSnapshot(state);
    expect(decodeSnapshot(v5)).toEqual(decodeSnapshot(encodeSnapshot(state, SNAPSHOT_VERSION_JSON)));
  });

  it("format 5: every truncation is refused with a MalformedSnapshotError, and a restore of it leaves the old state", () => {
    const h = new Harness();
    for (let i = 0; i < 6; i++) h.ok({ op: "instance.register", instance: spec(`i${i}`, { tags: ["a", `t${i}`], metadata: { k: "é" } }) }, { client: "c", seq: i + 1 });
    h.ok({ op: "kv.put", key: "k", value: b64("v") });
    const v5 = h.sm.snapshot();
    const dst = new Harness();
    dst.ok({ op: "kv.put", key: "old", value: b64("x") });
    const before = hex(dst.sm.snapshot());
    for (let n = 0; n < v5.length; n++) {
      const cut = v5.subarray(0, n);
      expect(() => decodeSnapshot(cut), `cut at ${n}`).toThrow(MalformedSnapshotError);
      const job = dst.sm.beginRestore(cut, 2);
      expect(() => {
        while (!job.step()) {
          // until it throws
        }
      }).toThrow(MalformedSnapshotError);
      expect(hex(dst.sm.snapshot())).toBe(before);
    }
  });

  it("format 5 property: damaged bytes read as a state or a MalformedSnapshotError, never another error", () => {
    const h = new Harness();
    for (let i = 0; i < 8; i++) h.ok({ op: "instance.register", instance: spec(`i${i}`, { tags: ["a", `t${i % 3}`], metadata: { k: `v${i % 2}` } }) });
    const v5 = h.sm.snapshot();
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(v5.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (flips) => {
        const bad = Uint8Array.from(v5);
        for (const [at, byte] of flips) bad[at] = byte;
        try {
          decodeSnapshot(bad);
        } catch (err) {
          expect(err instanceof MalformedSnapshotError || err instanceof SnapshotVersionError, String(err)).toBe(true);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it("format 5: a version this build does not know is a SnapshotVersionError", () => {
    const v5 = Buffer.from(new Harness().sm.snapshot());
    const at = v5.indexOf(`"version":${REGISTRY_SNAPSHOT_VERSION}`);
    expect(at).toBeGreaterThan(0);
    v5.write(`"version":${REGISTRY_SNAPSHOT_VERSION + 1}`, at, "latin1");
    expect(() => decodeSnapshot(v5)).toThrow(SnapshotVersionError);
  });

  it("row reader: each kind of damage is named", () => {
    const read = (types: Parameters<typeof rowReader>[1], ...bytes: number[]) => () => rowReader(Buffer.from(bytes), types).row([]);
    const rowReader = (b: Buffer, types: ("string" | "int" | "number" | "bool" | "strings" | "strmap")[]) => new InstanceRowReader(b, 0, types);
    expect(read(["string"], 9)).toThrow(/string reference 6 past the table's 0/);
    expect(read(["string"], 0, 2, 0xc3, 0x28)).toThrow(/not UTF-8/);
    expect(read(["string"], 0, 5, 0x61)).toThrow(/runs past the end/);
    expect(read(["bool"], 2)).toThrow(/a boolean is 2/);
    expect(read(["int"], 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01)).toThrow(/longer than 8 bytes/);
    expect(read(["int"], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)).toThrow(/past 2\^53 - 1/);
    expect(read(["strings"], 100, 0, 0)).toThrow(/count of 100 exceeds/);
    expect(read(["strmap"], 2, 0, 1, 0x62, 0, 0, 0, 1, 0x61, 0, 0)).toThrow(/metadata key "a" not after "b"/);
    expect(read(["number"], 0, 1, 2)).toThrow(/runs past the end/);
    expect(read(["string"], 2, 1, 0x31)).toThrow(/JSON string literal that holds no string/);
    for (const f of [read(["string"], 9), read(["bool"], 2)]) expect(f).toThrow(RowStructureError);
  });
});
