/**
 * Hostile input on real processes (issue 16): an echoed field of 80 KB, invalid UTF-8 and truncated
 * protobuf bytes sent with a raw client, a session seq reused for another request, values that must
 * not enter the state, and the client port's message size limit at its edge.
 */
import { status as Status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STATUS_DETAILS_CHARS_MAX } from "../../../src/common/echo.js";
import { API_MESSAGE_BYTES_MAX } from "../../../src/common/limits.js";
import { ProcessCluster } from "../harness/process-cluster.js";
import { decode, encode, lenField, RawClient, statusName } from "../harness/raw-grpc.js";

describe("hostile input (processes)", () => {
  let c: ProcessCluster;
  let raw: RawClient;
  let leader: string;
  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    leader = await c.waitForLeader(60_000);
    raw = new RawClient(c.api(leader));
  }, 90_000);
  afterAll(async () => {
    raw?.close();
    await c?.cleanup();
  });

  const get = async (key: string) => {
    const a = await raw.unary("KV", "Get", encode("KV", "Get", { key }));
    expect(statusName(a.code)).toBe("OK");
    return decode<{ found: boolean; value: Buffer }>("KV", "Get", a.response!);
  };

  it("an 80 KB field that an error quotes is answered at once, cut, and the channel's next call too", async () => {
    const big = "x".repeat(80_000);
    for (const req of [
      { service: "web", id: big, status: "passing" },
      { service: "web", id: "a", status: big },
    ]) {
      // Answered with its status (not DEADLINE_EXCEEDED): before the deadline.
      const a = await raw.unary("Registry", "Heartbeat", encode("Registry", "Heartbeat", req), 10_000);
      expect(statusName(a.code)).toBe("INVALID_ARGUMENT");
      expect(a.details.length).toBeLessThanOrEqual(STATUS_DETAILS_CHARS_MAX + 40);
      const next = await raw.unary("Cluster", "Status", encode("Cluster", "Status", {}), 10_000);
      expect(statusName(next.code)).toBe("OK");
    }
    // Deregister quoted its unvalidated id from the state machine's answer.
    const d = await raw.unary("Registry", "Deregister", encode("Registry", "Deregister", { service: "web", id: big }), 10_000);
    expect(statusName(d.code)).toBe("INVALID_ARGUMENT");
    expect(d.details).toMatch(/^id: /);
  });

  it("invalid UTF-8 in a string field is refused naming the field, so two keys cannot collide as U+FFFD", async () => {
    for (const bad of [Buffer.from([0x6b, 0xff]), Buffer.from([0x6b, 0xfe]), Buffer.from([0x6b, 0xc3, 0x28])]) {
      const body = Buffer.concat([lenField(1, bad), lenField(2, Buffer.from("v"))]);
      const a = await raw.unary("KV", "Put", body);
      expect(statusName(a.code)).toBe("INVALID_ARGUMENT");
      expect(a.details).toBe("malformed request: key: is not valid UTF-8");
    }
    expect((await get("k\uFFFD")).found).toBe(false);
    // Nested: an instance's tag.
    const inst = Buffer.concat([lenField(1, Buffer.from("i1")), lenField(2, Buffer.from("web")), lenField(3, Buffer.from("10.0.0.1")), lenField(5, Buffer.from([0xff]))]);
    const r = await raw.unary("Registry", "Register", lenField(1, inst));
    expect(statusName(r.code)).toBe("INVALID_ARGUMENT");
    expect(r.details).toBe("malformed request: instance.tags: is not valid UTF-8");
  });

  it("a length prefix that runs past the end of the message is refused, not clamped", async () => {
    const whole = encode("KV", "Put", { key: "truncated-key", value: Buffer.from("v") });
    // Cut inside the key: the decoder used to read "trunc…" as a complete shorter key.
    const cut = whole.subarray(0, 7);
    const a = await raw.unary("KV", "Put", cut);
    expect(statusName(a.code)).toBe("INVALID_ARGUMENT");
    expect(a.details).toMatch(/^malformed request: key: its length \(13 bytes\) runs past the end of the message \(5 left\): the request is truncated$/);
    expect((await get("trunc")).found).toBe(false);
    // Inside a nested message too (the session), which the decoder answered INTERNAL with no field.
    const s = Buffer.concat([encode("KV", "Put", { key: "k2", value: Buffer.from("v") }), Buffer.from([0x1a, 20, 0x0a, 2, 0x61])]);
    const b = await raw.unary("KV", "Put", s);
    expect(statusName(b.code)).toBe("INVALID_ARGUMENT");
    expect(b.details).toMatch(/^malformed request: session: its length/);
  });

  it("a session seq reused for a different request is refused naming session.seq; the first write stays", async () => {
    const session = { clientId: "hostile-1", seq: 1 };
    const first = await raw.unary("KV", "Put", encode("KV", "Put", { key: "s-a", value: Buffer.from("1"), session }));
    expect(statusName(first.code)).toBe("OK");
    const again = await raw.unary("KV", "Put", encode("KV", "Put", { key: "s-a", value: Buffer.from("1"), session }));
    expect(decode<{ duplicate: boolean }>("KV", "Put", again.response!).duplicate).toBe(true);
    const other = await raw.unary("KV", "Put", encode("KV", "Put", { key: "s-b", value: Buffer.from("2"), session }));
    expect(statusName(other.code)).toBe("FAILED_PRECONDITION");
    expect(other.details).toMatch(/^session\.seq: /);
    expect((await get("s-b")).found).toBe(false);
  });

  it("values that must not enter the state are refused naming the field", async () => {
    const reg = (over: object) => raw.unary("Registry", "Register", encode("Registry", "Register", { instance: { id: "i1", service: "web", address: "10.0.0.1", port: 80, ...over } }));
    for (const [over, field] of [
      [{ address: "10.0.0.1\0x" }, "instance.address"],
      [{ address: "10.0.0.1 evil" }, "instance.address"],
      [{ tags: [""] }, "instance.tags[0]"],
      [{ tags: ["a\r\nb"] }, "instance.tags[0]"],
    ] as const) {
      const a = await reg(over);
      expect(statusName(a.code)).toBe("INVALID_ARGUMENT");
      expect(a.details.startsWith(`${field}: `)).toBe(true);
    }
    const k = await raw.unary("KV", "Put", encode("KV", "Put", { key: "a\nb", value: Buffer.from("v") }));
    expect(statusName(k.code)).toBe("INVALID_ARGUMENT");
    expect(k.details).toMatch(/^key: /);
  });

  it("the client port takes a request of API_MESSAGE_BYTES_MAX bytes and refuses one byte more", async () => {
    /** put of exactly n bytes: key "k" and a value filling the rest. */
    const put = (n: number) => {
      const head = encode("KV", "Put", { key: "k" }).length + 1 + 3; // tag and 3-byte length of the value
      const body = encode("KV", "Put", { key: "k", value: Buffer.alloc(n - head, 1) });
      expect(body.length).toBe(n);
      return body;
    };
    const at = await raw.unary("KV", "Put", put(API_MESSAGE_BYTES_MAX));
    // Decoded and refused by the value's own limit: the size limit let it through.
    expect(statusName(at.code)).toBe("INVALID_ARGUMENT");
    expect(at.details).toMatch(/^value: /);
    const over = await raw.unary("KV", "Put", put(API_MESSAGE_BYTES_MAX + 1));
    expect(statusName(over.code)).toBe("RESOURCE_EXHAUSTED");
    expect(Status[over.code]).toBe("RESOURCE_EXHAUSTED");
  });
});
