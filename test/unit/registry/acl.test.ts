import { describe, expect, it } from "vitest";
import { encodeCommand } from "../../../src/registry/codec.js";
import { ACL_NAME_BYTES_MAX, ACL_RULES_PER_TOKEN_MAX, ACL_TOKENS_MAX } from "../../../src/registry/limits.js";
import type { AclRule } from "../../../src/registry/acl.js";
import { decodeSnapshot, SnapshotReader } from "../../../src/registry/state-machine-snapshot.js";
import { Harness, jsonSnapshot, T0 } from "./registry-harness.js";

const acc = (n: number) => n.toString(16).padStart(16, "0");
const hash = (n: number) => n.toString(16).padStart(64, "0");
const create = (n: number, rules: AclRule[] = [{ role: "read" }], name = `t${n}`) => ({ op: "acl.token.create", accessor: acc(n), secretHash: hash(n), name, rules }) as const;

describe("registry access control", () => {
  it("acl: a token is created, found by its secret's hash only, listed, and deleted", () => {
    const h = new Harness();
    const r = h.ok(create(1, [{ role: "write", services: "orders" }, { role: "read", keys: "config/" }]));
    expect(h.sm.aclTokenBySecretHash(hash(1))).toEqual({ accessor: acc(1), secretHash: hash(1), name: "t1", rules: [{ role: "write", services: "orders" }, { role: "read", keys: "config/" }], createIndex: r.index });
    expect(h.sm.aclTokenBySecretHash(hash(2))).toBeUndefined();
    h.ok(create(2));
    expect(h.sm.aclTokens().map((t) => t.accessor)).toEqual([acc(1), acc(2)]);
    // Tokens are no watch events: nothing outside access control reads them.
    expect(h.events).toEqual([]);
    expect(h.ok({ op: "acl.token.delete", accessor: acc(1) })).toMatchObject({ deleted: 1 });
    expect(h.sm.aclTokenBySecretHash(hash(1))).toBeUndefined();
    expect(h.run({ op: "acl.token.delete", accessor: acc(1) })).toMatchObject({ ok: false, code: "not-found" });
  });

  it("acl: bootstrap makes an unscoped admin token and works once; a second bootstrap changes nothing", () => {
    const h = new Harness();
    expect(h.sm.aclBootstrapIndex).toBe(0);
    const r = h.ok({ op: "acl.bootstrap", accessor: acc(9), secretHash: hash(9) });
    expect(h.sm.aclBootstrapIndex).toBe(r.index);
    expect(h.sm.aclTokenBySecretHash(hash(9))).toMatchObject({ name: "bootstrap", rules: [{ role: "admin" }] });
    const again = h.run({ op: "acl.bootstrap", accessor: acc(10), secretHash: hash(10) });
    expect(again).toMatchObject({ ok: false, code: "failed-precondition" });
    expect(h.sm.aclTokens()).toHaveLength(1);
    // Deleting the bootstrap token does not open bootstrap again.
    h.ok({ op: "acl.token.delete", accessor: acc(9) });
    expect(h.run({ op: "acl.bootstrap", accessor: acc(10), secretHash: hash(10) })).toMatchObject({ ok: false, code: "failed-precondition" });
  });

  it("acl: an accessor or a secret hash used twice is refused", () => {
    const h = new Harness();
    h.ok(create(1));
    expect(h.run({ ...create(2), accessor: acc(1) })).toMatchObject({ ok: false, code: "failed-precondition" });
    expect(h.run({ ...create(2), secretHash: hash(1) })).toMatchObject({ ok: false, code: "failed-precondition" });
    expect(h.sm.aclTokens()).toHaveLength(1);
  });

  it("acl: bad records are refused naming the field, in the log as in the API", () => {
    const h = new Harness();
    const bad: [object, string][] = [
      [{ ...create(1), accessor: "XYZ" }, "accessor"],
      [{ ...create(1), secretHash: "00" }, "secret_hash"],
      [{ ...create(1), name: "" }, "name"],
      [{ ...create(1), name: "a\nb" }, "name"],
      [{ ...create(1), rules: [] }, "rules"],
      [{ ...create(1), rules: [{ role: "root" }] }, "rules[0].role"],
      [{ ...create(1), rules: [{ role: "read", services: "a*b" }] }, "rules[0].services"],
      [{ ...create(1), rules: [{ role: "read", keys: "a\u0000" }] }, "rules[0].keys"],
    ];
    for (const [cmd, field] of bad) {
      const r = h.raw(encodeCommand({ v: 1, at: T0, cmd: cmd as never }));
      expect(r).toMatchObject({ ok: false, code: "invalid-argument" });
      expect((r as { message: string }).message.startsWith(`${field} `)).toBe(true);
    }
    expect(h.sm.aclTokens()).toEqual([]);
  });

  it("acl limits: a name of ACL_NAME_BYTES_MAX bytes and ACL_RULES_PER_TOKEN_MAX rules are taken, one more is refused", () => {
    const h = new Harness();
    const rules = Array.from({ length: ACL_RULES_PER_TOKEN_MAX }, (_, i): AclRule => ({ role: "read", services: `s${i}` }));
    h.ok(create(1, rules, "n".repeat(ACL_NAME_BYTES_MAX)));
    expect(h.run(create(2, [...rules, { role: "read" }]))).toMatchObject({ ok: false, code: "invalid-argument" });
    expect(h.run(create(3, [{ role: "read" }], "n".repeat(ACL_NAME_BYTES_MAX + 1)))).toMatchObject({ ok: false, code: "invalid-argument" });
  });

  it("acl limits: the cluster holds ACL_TOKENS_MAX tokens and refuses one more until one is deleted", () => {
    const h = new Harness();
    for (let i = 1; i <= ACL_TOKENS_MAX; i++) h.ok(create(i));
    expect(h.run(create(ACL_TOKENS_MAX + 1))).toMatchObject({ ok: false, code: "resource-exhausted" });
    // A bootstrap past the limit is refused too, and does not count as done.
    expect(h.run({ op: "acl.bootstrap", accessor: acc(0), secretHash: hash(0) })).toMatchObject({ ok: false, code: "resource-exhausted" });
    expect(h.sm.aclBootstrapIndex).toBe(0);
    h.ok({ op: "acl.token.delete", accessor: acc(1) });
    h.ok(create(ACL_TOKENS_MAX + 1));
    expect(h.sm.aclTokens()).toHaveLength(ACL_TOKENS_MAX);
  });

  it("acl: the sliced snapshot reader, a row per step, returns the tokens and the bootstrap as the whole-document decoder does", () => {
    const h = new Harness();
    h.ok({ op: "acl.bootstrap", accessor: acc(9), secretHash: hash(9) });
    h.ok(create(1, [{ role: "write", keys: "config/" }]));
    h.ok({ op: "kv.put", key: "a", value: "" });
    const data = h.sm.snapshot();
    const reader = new SnapshotReader(data, 1);
    expect(reader.step()).toBeUndefined();
    let s: ReturnType<SnapshotReader["step"]>;
    while ((s = reader.step()) === undefined);
    expect(s).toEqual(decodeSnapshot(data));
    expect(s.acl).toEqual({ bootstrapIndex: 1, tokens: h.sm.aclTokens() });
  });

  it("acl: a snapshot carries the tokens under \"acl\", by secret hash", () => {
    const h = new Harness();
    h.ok(create(1));
    const snap = new TextDecoder().decode(jsonSnapshot(h.sm.snapshot()));
    expect(snap).toContain(hash(1));
    expect(Object.keys(JSON.parse(snap).acl)).toEqual(["bootstrapIndex", "tokens"]);
  });
});
