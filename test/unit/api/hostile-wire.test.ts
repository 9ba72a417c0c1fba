/**
 * The client API server against hostile bytes, in-process (a real grpc-js server and a raw client
 * on a real socket): an error quoting an 80 KB field is answered (it used to run to its deadline),
 * invalid UTF-8 and length prefixes past the end are refused INVALID_ARGUMENT naming the field
 * (the decoder turned the first into U+FFFD and clamped the second). The handlers validate before
 * touching their dependencies, so they get none: a request that passed validation would fail here.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiServer } from "../../../src/api/server.js";
import { kvService, type KvServiceDeps } from "../../../src/api/kv-service.js";
import { registryService, type RegistryServiceDeps } from "../../../src/api/registry-service.js";
import { STATUS_DETAILS_CHARS_MAX } from "../../../src/common/echo.js";
import { encode, lenField, RawClient, statusName } from "../../integration/harness/raw-grpc.js";

describe("client API: hostile bytes", () => {
  let server: ApiServer;
  let raw: RawClient;
  beforeAll(async () => {
    server = new ApiServer({
      kv: kvService({} as KvServiceDeps),
      registry: registryService({} as RegistryServiceDeps),
      cluster: {},
    });
    const port = await server.listen("127.0.0.1:0");
    raw = new RawClient(`127.0.0.1:${port}`);
  });
  afterAll(async () => {
    raw?.close();
    await server?.close();
  });

  it("an 80 KB field an error quotes is answered before the deadline, its text cut; the channel's next call too", async () => {
    const big = "s".repeat(80_000);
    const a = await raw.unary("Registry", "Heartbeat", encode("Registry", "Heartbeat", { service: "web", id: "a", status: big }), 3_000);
    expect(statusName(a.code)).toBe("INVALID_ARGUMENT");
    expect(a.details.length).toBeLessThanOrEqual(STATUS_DETAILS_CHARS_MAX + 40);
    expect(a.details).toContain("…(80000 bytes)");
    const b = await raw.unary("Registry", "Heartbeat", encode("Registry", "Heartbeat", { service: "web", id: big }), 3_000);
    expect(statusName(b.code)).toBe("INVALID_ARGUMENT");
    expect(b.details).toMatch(/^id: /);
    const next = await raw.unary("KV", "Get", encode("KV", "Get", { key: "" }), 3_000);
    expect(next.details).toBe("key: must not be empty");
  });

  it("invalid UTF-8 in a string field, top-level or nested, is refused naming the field", async () => {
    for (const bad of [[0x6b, 0xff], [0x6b, 0xfe], [0x6b, 0xc3, 0x28], [0xed, 0xa0, 0x80]]) {
      const a = await raw.unary("KV", "Put", Buffer.concat([lenField(1, Buffer.from(bad)), lenField(2, Buffer.from("v"))]));
      expect(statusName(a.code)).toBe("INVALID_ARGUMENT");
      expect(a.details).toBe("malformed request: key: is not valid UTF-8");
    }
    const session = lenField(1, Buffer.from([0xff]));
    const s = await raw.unary("KV", "Put", Buffer.concat([lenField(1, Buffer.from("k")), lenField(3, session)]));
    expect(s.details).toBe("malformed request: session.client_id: is not valid UTF-8");
    // Bytes fields may hold anything.
    const ok = await raw.unary("KV", "Put", Buffer.concat([lenField(1, Buffer.from("k\0")), lenField(2, Buffer.from([0xff]))]));
    expect(ok.details).toMatch(/^key: must not contain control characters/);
  });

  it("a length prefix past the end of the message is refused, never clamped to a shorter valid request", async () => {
    const whole = encode("KV", "Put", { key: "truncated-key", value: Buffer.from("v") });
    const a = await raw.unary("KV", "Put", whole.subarray(0, 7));
    expect(statusName(a.code)).toBe("INVALID_ARGUMENT");
    expect(a.details).toBe("malformed request: key: its length (13 bytes) runs past the end of the message (5 left): the request is truncated");
    // Nested (the decoder answered these INTERNAL "Error deserializing request", naming nothing).
    const n = await raw.unary("KV", "Put", Buffer.concat([encode("KV", "Put", { key: "k" }), Buffer.from([0x1a, 20, 0x0a, 2, 0x61])]));
    expect(statusName(n.code)).toBe("INVALID_ARGUMENT");
    expect(n.details).toMatch(/^malformed request: session: its length \(20 bytes\) runs past the end/);
    const v = await raw.unary("Registry", "Register", Buffer.from([0x0a, 0x03, 0x0a, 0x09, 0x61]));
    expect(v.details).toMatch(/^malformed request: instance\.id: its length \(9 bytes\)/);
    const wt = await raw.unary("KV", "Get", Buffer.from([0x0b]));
    expect(wt.details).toBe("malformed request: key: wire type 3 is not valid here");
    // A known field in another wire type than its own (the decoder answered INTERNAL).
    const mismatch = await raw.unary("Registry", "ListServices", Buffer.from([0x0a, 0x02, 0xc3, 0x28]));
    expect(mismatch.details).toBe("malformed request: consistency: wire type 2 is not valid for its type (enum)");
    const eof = await raw.unary("KV", "Get", Buffer.from([0x28, 0xff]));
    expect(eof.details).toBe("malformed request: field 5: the message ends inside a varint");
  });
});
