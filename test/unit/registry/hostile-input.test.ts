/**
 * Hostile input the registry must refuse (issue 16): values that were accepted into the replicated
 * state although nothing downstream can use them, and a session sequence number reused for a
 * different request, which used to be answered "duplicate" while the new write never happened.
 */
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../../src/registry/errors.js";
import { validateInstanceSpec, validateKvKey, validateKvPrefix } from "../../../src/registry/validate.js";
import { ECHO_CHARS_MAX, echo } from "../../../src/common/echo.js";
import { b64, Harness, jsonSnapshot, spec } from "./registry-harness.js";

/** refusal is the ValidationError f throws (the test fails if it throws nothing). */
function refusal(f: () => void): ValidationError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error("expected a ValidationError");
}

describe("hostile input: registry validation", () => {
  it("an address with NUL, spaces or line breaks is refused naming instance.address", () => {
    for (const address of ["10.0.0.1\0evil", "10.0.0.1 ", "a b", "host\r\nX: y", "\t10.0.0.1"]) {
      expect(refusal(() => validateInstanceSpec(spec("x", { address }))).field).toBe("instance.address");
    }
    // Host names, IPv4, IPv6 literals (with a zone) stay valid.
    for (const address of ["db-1.internal", "10.0.0.1", "::1", "fe80::1%eth0", "[2001:db8::1]", "a_b.example.com"]) validateInstanceSpec(spec("x", { address }));
  });

  it("an empty tag or one with a control character (CR/LF) is refused naming the tag", () => {
    expect(refusal(() => validateInstanceSpec(spec("x", { tags: ["ok", ""] }))).field).toBe("instance.tags[1]");
    expect(refusal(() => validateInstanceSpec(spec("x", { tags: ["a\r\nb"] }))).field).toBe("instance.tags[0]");
    expect(refusal(() => validateInstanceSpec(spec("x", { tags: ["a\0"] }))).field).toBe("instance.tags[0]");
    validateInstanceSpec(spec("x", { tags: ["v1", "zone=eu", "ünïcode ok"] }));
  });

  it("a KV key or prefix with a control character is refused naming key/prefix", () => {
    for (const key of ["a\0b", "a\nb", "a\rb", "\x1b[31m", "del\x7f"]) {
      expect(refusal(() => validateKvKey(key)).field).toBe("key");
      expect(refusal(() => validateKvPrefix(key)).field).toBe("prefix");
    }
    validateKvKey("config/app one/ключ");
    validateKvPrefix("");
  });

  it("a command already in the log is applied under the rules it was written under: replaying a log gives what an older build gave", () => {
    // The API refuses these values now (the tests above); an entry an older build accepted into the
    // log must still apply the same way, or a node replaying it would differ from one that restored
    // a snapshot taken after it.
    const h = new Harness();
    expect(h.run({ op: "instance.register", instance: spec("x", { address: "1.2.3.4 ", tags: ["", "a\r\nb"] }) })).toMatchObject({ ok: true });
    expect(h.run({ op: "kv.put", key: "k\n", value: b64("v") })).toMatchObject({ ok: true });
    expect(h.sm.kvGet("k\n")).toBeDefined();
    expect(h.run({ op: "kv.delete", key: "k\n", prefix: true })).toMatchObject({ ok: true, deleted: 1 });
    // The rules every build applied still hold in the log: an empty key, an oversize address.
    expect(h.run({ op: "kv.put", key: "", value: b64("v") })).toMatchObject({ ok: false, code: "invalid-argument" });
    expect(h.run({ op: "instance.register", instance: spec("y", { address: "a".repeat(10_000) }) })).toMatchObject({ ok: false, code: "invalid-argument" });
  });

  it("echo cuts a quoted value at ECHO_CHARS_MAX and says how long it was", () => {
    expect(echo("short")).toBe("short");
    expect(echo("x".repeat(ECHO_CHARS_MAX))).toBe("x".repeat(ECHO_CHARS_MAX));
    const long = echo("y".repeat(80_000));
    expect(long.startsWith("y".repeat(ECHO_CHARS_MAX))).toBe(true);
    expect(long).toContain("(80000 bytes)");
    expect(long.length).toBeLessThan(ECHO_CHARS_MAX + 30);
    // A metadata key of 80 KB is named in the error by its echo, not whole.
    const md = { ["k".repeat(80_000)]: "v" };
    expect(refusal(() => validateInstanceSpec(spec("x", { metadata: md }))).field.length).toBeLessThan(ECHO_CHARS_MAX + 60);
  });
});

describe("hostile input: session reuse", () => {
  it("a seq reused for a different request is refused naming session.seq, and the first write stays", () => {
    const h = new Harness();
    h.ok({ op: "kv.put", key: "a", value: b64("1") }, { client: "c1", seq: 1 });
    const other = h.run({ op: "kv.put", key: "b", value: b64("2") }, { client: "c1", seq: 1 });
    expect(other).toMatchObject({ ok: false, code: "failed-precondition" });
    expect(other.ok === false && other.message).toMatch(/^session\.seq: /);
    expect(h.sm.kvGet("b")).toBeUndefined();
    // The same request again is still a duplicate, answered with its first result.
    expect(h.run({ op: "kv.put", key: "a", value: b64("1") }, { client: "c1", seq: 1 })).toEqual({ ok: true, index: 1, duplicate: true });
    // The same key with a different value is a different request too.
    expect(h.run({ op: "kv.put", key: "a", value: b64("9") }, { client: "c1", seq: 1 })).toMatchObject({ ok: false, code: "failed-precondition" });
    expect(h.sm.kvGet("a")?.version).toBe(1);
  });

  it("a snapshot keeps the request digests, and one written without them still loads (its entries answer duplicate as before)", () => {
    const h = new Harness();
    h.ok({ op: "kv.put", key: "a", value: b64("1") }, { client: "c1", seq: 1 });
    const snap = h.sm.snapshot();
    const h2 = new Harness();
    h2.sm.restore(snap);
    h2.index = h.index;
    expect(h2.run({ op: "kv.put", key: "b", value: b64("2") }, { client: "c1", seq: 1 })).toMatchObject({ ok: false, code: "failed-precondition" });
    // An older snapshot: the stored results carry no digest.
    const old = JSON.parse(new TextDecoder().decode(jsonSnapshot(snap)));
    for (const s of old.sessions) for (const r of s[3]) delete r[1].digest;
    const h3 = new Harness();
    h3.sm.restore(Buffer.from(JSON.stringify(old)));
    h3.index = h.index;
    expect(h3.run({ op: "kv.put", key: "b", value: b64("2") }, { client: "c1", seq: 1 })).toMatchObject({ ok: true, duplicate: true });
  });
});
