import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EntryKind } from "../../../src/raft/index.js";
import { MalformedSnapshotError, SnapshotVersionError } from "../../../src/registry/errors.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import { REGISTRY_SNAPSHOT_VERSION } from "../../../src/registry/state-machine-snapshot.js";
import { encodeCommand } from "../../../src/registry/codec.js";
import type { RegistryCommand } from "../../../src/registry/types.js";
import { b64, Harness, jsonDocument, randomLog, spec, T0 } from "./registry-harness.js";


function feed(sm: RegistryStateMachine, data: readonly Uint8Array[], from = 0): unknown[] {
  return data.map((d, i) => sm.apply({ term: 1, index: from + i + 1, kind: EntryKind.Normal, data: d }));
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** view is everything the reads expose, for comparing two machines. */
function view(sm: RegistryStateMachine) {
  const { historyEvents: _events, historyBytes: _bytes, ...stats } = sm.stats();
  return { stats, services: sm.listServices(), instances: sm.allInstances(), kv: sm.kvList("", {}), acl: sm.aclTokens(), aclBootstrapIndex: sm.aclBootstrapIndex };
}

/**
 * withAcl mixes access-control commands into a random log (every 7th entry: a bootstrap, token
 * creations with scoped rules, deletions of earlier tokens, and a delete of one that is gone), so
 * the snapshot properties cover the token table too.
 */
function withAcl(log: readonly Uint8Array[], seed: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const made: string[] = [];
  let n = 0;
  const hex16 = (k: number) => (seed * 7919 + k).toString(16).padStart(16, "0").slice(-16);
  const hash = (k: number) => (seed * 104729 + k).toString(16).padStart(64, "a").slice(-64);
  for (const d of log) {
    out.push(d);
    if (out.length % 7 !== 0) continue;
    n++;
    const at = T0 + n;
    let cmd: RegistryCommand;
    if (n === 2) cmd = { op: "acl.bootstrap", accessor: hex16(n), secretHash: hash(n) };
    else if (n % 3 === 0 && made.length > 0) cmd = { op: "acl.token.delete", accessor: made.shift() as string };
    else if (n % 5 === 0) cmd = { op: "acl.token.delete", accessor: "ffffffffffffffff" };
    else {
      made.push(hex16(n));
      cmd = { op: "acl.token.create", accessor: hex16(n), secretHash: hash(n), name: `t${n}`, rules: [{ role: "write", services: `svc${n}*` }, { role: "read", keys: `k/${n}/` }] };
    }
    out.push(encodeCommand({ v: 1, at, cmd }));
  }
  return out;
}

describe("registry snapshots", () => {
  it("snapshot: restore gives the same state, reads and sessions, and snapshots to the same bytes", () => {
    const h = new Harness();
    h.ok({ op: "instance.register", instance: spec("b", { metadata: JSON.parse('{"z":"1","a":"2","__proto__":"x"}') }) });
    h.ok({ op: "instance.register", instance: spec("a", { service: "api" }) });
    h.ok({ op: "health.set", changes: [{ service: "web", id: "b", health: "critical", note: "down", ifModIndex: 0 }] });
    h.ok({ op: "kv.put", key: "x", value: b64("1") }, { client: "c1", seq: 3 });
    h.ok({ op: "kv.put", key: "a", value: b64("2") });
    h.ok({ op: "acl.bootstrap", accessor: "0123456789abcdef", secretHash: "a".repeat(64) });
    h.ok({ op: "acl.token.create", accessor: "fedcba9876543210", secretHash: "b".repeat(64), name: "orders deployer", rules: [{ role: "write", services: "orders" }, { role: "read", keys: "config/" }] });
    const data = h.sm.snapshot();
    const copy = new Harness();
    copy.sm.restore(data);
    copy.index = h.index;
    expect(hex(copy.sm.snapshot())).toBe(hex(data));
    expect(view(copy.sm)).toEqual(view(h.sm));
    expect(copy.sm.applied).toBe(7);
    // The tokens came along, by hash, and so did the bootstrap: a second one is still refused.
    expect(copy.sm.aclTokenBySecretHash("b".repeat(64))).toEqual({ accessor: "fedcba9876543210", secretHash: "b".repeat(64), name: "orders deployer", rules: [{ role: "write", services: "orders" }, { role: "read", keys: "config/" }], createIndex: 7 });
    expect(copy.sm.aclBootstrapIndex).toBe(6);
    expect(copy.run({ op: "acl.bootstrap", accessor: "1111111111111111", secretHash: "c".repeat(64) })).toMatchObject({ ok: false, code: "failed-precondition" });
    expect(copy.sm.instance("web", "b")).toMatchObject({ health: "critical", note: "down", healthSince: T0, modIndex: 3 });
    // "__proto__" is an ordinary metadata key, kept in order with the others.
    expect(Object.entries(copy.sm.instance("web", "b")!.metadata)).toEqual([["__proto__", "x"], ["a", "2"], ["z", "1"]]);
    // The session table came along: the retry is still caught.
    expect(copy.run({ op: "kv.put", key: "x", value: b64("1") }, { client: "c1", seq: 3 })).toEqual({ ok: true, index: 4, duplicate: true });
  });

  it("snapshot: the same state gives the same bytes whatever order it was built in", () => {
    const a = new Harness();
    a.ok({ op: "instance.register", instance: spec("b") });
    a.ok({ op: "instance.register", instance: spec("a") });
    a.ok({ op: "kv.put", key: "k2", value: "" });
    const b = new Harness();
    b.sm.restore(a.sm.snapshot()); // restored maps hold the sorted order, a's hold insertion order
    b.index = a.index;
    for (const h of [a, b]) {
      h.ok({ op: "instance.register", instance: spec("c") });
      h.ok({ op: "kv.put", key: "k1", value: "" });
    }
    expect(hex(b.sm.snapshot())).toBe(hex(a.sm.snapshot()));
  });

  it("snapshot: an unknown version or unreadable data is refused with a typed error and changes nothing", () => {
    const h = new Harness();
    h.ok({ op: "kv.put", key: "keep", value: "" });
    const before = hex(h.sm.snapshot());
    const json = jsonDocument(h.sm.snapshot());
    const v2 = new TextEncoder().encode(JSON.stringify({ ...json, version: REGISTRY_SNAPSHOT_VERSION + 1 }));
    expect(() => h.sm.restore(v2)).toThrow(SnapshotVersionError);
    expect(() => h.sm.restore(new TextEncoder().encode("{"))).toThrow(MalformedSnapshotError);
    const badRow = new TextEncoder().encode(JSON.stringify({ ...json, kv: [["k", "", 1, 1]] }));
    expect(() => h.sm.restore(badRow)).toThrow(MalformedSnapshotError);
    const orphan = new TextEncoder().encode(JSON.stringify({ ...json, instances: [["nope", "i", "a", 1, [], {}, 0, 0, "", 1000, 0, "passing", "", 0, 1, 1]] }));
    expect(() => h.sm.restore(orphan)).toThrow(MalformedSnapshotError);
    expect(hex(h.sm.snapshot())).toBe(before);
  });

  it("snapshot property: two machines fed the same random log end with the same results and byte-identical snapshots", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 300 }), (seed, length) => {
        const log = withAcl(randomLog(seed, length), seed);
        const a = new RegistryStateMachine();
        const b = new RegistryStateMachine();
        expect(JSON.stringify(feed(b, log))).toBe(JSON.stringify(feed(a, log)));
        expect(hex(b.snapshot())).toBe(hex(a.snapshot()));
      }),
      { numRuns: 60 },
    );
  });

  it("snapshot property: snapshot, restore and continue equals continuing directly", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 2, max: 300 }), fc.double({ min: 0, max: 1, noNaN: true }), (seed, length, cut) => {
        const log = withAcl(randomLog(seed, length), seed);
        const at = Math.floor(cut * log.length);
        const direct = new RegistryStateMachine();
        const directResults = feed(direct, log);
        const first = new RegistryStateMachine();
        feed(first, log.slice(0, at));
        const resumed = new RegistryStateMachine();
        resumed.restore(first.snapshot());
        const resumedResults = feed(resumed, log.slice(at), at);
        expect(JSON.stringify(resumedResults)).toBe(JSON.stringify(directResults.slice(at)));
        expect(hex(resumed.snapshot())).toBe(hex(direct.snapshot()));
        expect(view(resumed)).toEqual(view(direct));
      }),
      { numRuns: 60 },
    );
  });
});
