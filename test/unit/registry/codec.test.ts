import { describe, expect, it } from "vitest";
import { decodeCommand, encodeCommand } from "../../../src/registry/codec.js";
import { MalformedCommandError } from "../../../src/registry/errors.js";
import { type CommandEnvelope, DEFAULT_SERVICE_CONFIG } from "../../../src/registry/types.js";
import { spec } from "./registry-harness.js";

const text = (s: string) => new TextEncoder().encode(s);

describe("registry codec", () => {
  it("codec: every command round-trips", () => {
    const cmds: CommandEnvelope["cmd"][] = [
      { op: "service.put", name: "web", config: { ...DEFAULT_SERVICE_CONFIG, policy: "p2c", mode: "master-slave", retries: 1, retryBudgetPercent: 10, perTryTimeoutMs: 100, fallback: "" } },
      { op: "service.delete", name: "web" },
      { op: "instance.register", instance: spec("i1") },
      { op: "instance.register", instance: spec("i1"), health: "critical", note: "http-0: 503" },
      { op: "instance.deregister", service: "web", id: "i1" },
      { op: "health.set", changes: [{ service: "web", id: "i1", health: "warning", note: "slow", ifModIndex: 4 }] },
      { op: "instance.reap", service: "web", id: "i1" },
      { op: "kv.put", key: "a", value: "AA==" },
      { op: "kv.delete", key: "a" },
      { op: "kv.delete", key: "a/", prefix: true },
      {
        op: "kv.txn",
        compares: [{ key: "a", target: "value", op: "==", value: "" }, { key: "a", target: "mod", op: "<", number: 3 }],
        success: [{ op: "put", key: "a", value: "" }, { op: "get", key: "a" }],
        failure: [{ op: "delete", key: "b", prefix: false }],
      },
    ];
    for (const cmd of cmds) {
      const env: CommandEnvelope = { v: 1, at: 17, session: { client: "c", seq: 2 }, cmd };
      expect(decodeCommand(encodeCommand(env))).toEqual(env);
      expect(decodeCommand(encodeCommand({ v: 1, at: 5, cmd }))).toEqual({ v: 1, at: 5, cmd });
    }
  });

  it("codec: a registration without an initial health keeps the bytes it had before the field existed", () => {
    const env: CommandEnvelope = { v: 1, at: 3, cmd: { op: "instance.register", instance: spec("i1") } };
    expect(new TextDecoder().decode(encodeCommand(env))).toBe(`{"v":1,"at":3,"cmd":{"op":"instance.register","instance":${JSON.stringify(spec("i1"))}}}`);
  });

  it("codec: unknown fields are dropped, so apply never stores what no encoder wrote", () => {
    const raw = { v: 1, at: 1, extra: true, cmd: { op: "instance.register", instance: { ...spec("i1"), evil: 1 }, more: 2 } };
    const env = decodeCommand(text(JSON.stringify(raw)));
    expect(env).toEqual({ v: 1, at: 1, cmd: { op: "instance.register", instance: spec("i1") } });
    expect(Object.keys(env.cmd.op === "instance.register" ? env.cmd.instance : {})).not.toContain("evil");
  });

  it("codec: anything else is a MalformedCommandError", () => {
    const bad = [
      "",
      "nul",
      "[]",
      '{"v":1,"at":1}',
      '{"v":2,"at":1,"cmd":{"op":"kv.delete","key":"a"}}',
      '{"v":1,"at":"1","cmd":{"op":"kv.delete","key":"a"}}',
      '{"v":1,"at":1,"cmd":{"op":"kv.delete","key":"a","prefix":"yes"}}',
      '{"v":1,"at":1,"session":{"client":"c"},"cmd":{"op":"kv.delete","key":"a"}}',
      '{"v":1,"at":1,"cmd":{"op":"kv.txn","compares":[],"success":[{"op":"cas","key":"a"}],"failure":[]}}',
      '{"v":1,"at":1,"cmd":{"op":"instance.register","instance":{"id":"a"}}}',
      '{"v":1,"at":1,"cmd":{"op":"health.set","changes":{}}}',
      // An initial health comes with its note, both strings.
      `{"v":1,"at":1,"cmd":{"op":"instance.register","instance":${JSON.stringify(spec("a"))},"health":"critical"}}`,
      `{"v":1,"at":1,"cmd":{"op":"instance.register","instance":${JSON.stringify(spec("a"))},"health":2,"note":""}}`,
    ];
    for (const b of bad) expect(() => decodeCommand(text(b)), b).toThrow(MalformedCommandError);
    expect(() => decodeCommand(new Uint8Array([0xc3, 0x28]))).toThrow(MalformedCommandError);
  });
});
