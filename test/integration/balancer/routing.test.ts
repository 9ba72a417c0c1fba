import { Agent } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Backend, call, count, endpointOf, startBackend, startEndpoint, type TestEndpoint, table } from "./harness.js";

describe("balancer: routing through the HTTP/1.1 endpoint", () => {
  let backends: Backend[];
  let ep: TestEndpoint;
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });

  beforeAll(async () => {
    backends = await Promise.all(["a", "b", "c"].map((id) => startBackend(id)));
    ep = await startEndpoint([table("hello", backends.map((b) => endpointOf(b))), table("empty", [])]);
  });
  afterAll(async () => {
    agent.destroy();
    await ep.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  it("balancer: the path prefix /svc/<service>/ routes and is stripped", async () => {
    const r = await call(ep.port, "/svc/hello/greet?x=1", { agent });
    expect(r.status).toBe(200);
    const b = backends.find((x) => x.id === r.body)!;
    expect(b.last?.url).toBe("/greet?x=1");
    expect((await call(ep.port, "/svc/hello", { agent })).status).toBe(200);
  });

  it("balancer: the Host header routes (<service> and <service>.service, with a port)", async () => {
    for (const host of ["hello", "hello.service", "hello.service:7300", "HELLO:80"]) {
      const r = await call(ep.port, "/x", { headers: { host }, agent });
      expect(r.status, host).toBe(200);
      expect(backends.some((b) => b.last?.url === "/x")).toBe(true);
    }
  });

  it("balancer: an unknown service gets 404 with a JSON body naming it", async () => {
    const r = await call(ep.port, "/svc/nope/", { agent });
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body)).toMatchObject({ error: "unknown-service", service: "nope" });
  });

  it("balancer: a service with no healthy instance gets 503 with a JSON body", async () => {
    const r = await call(ep.port, "/svc/empty/", { agent });
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toMatchObject({ error: "no-healthy-instance", service: "empty" });
  });

  it("balancer: round-robin spreads requests evenly over the instances", async () => {
    const seen: string[] = [];
    for (let i = 0; i < 90; i++) seen.push((await call(ep.port, "/svc/hello/", { agent })).body);
    const c = count(seen);
    expect(Object.keys(c).sort()).toEqual(["a", "b", "c"]);
    for (const n of Object.values(c)) expect(n).toBe(30);
  });

  it("balancer: forwarded headers: x-forwarded-for added, x-request-id kept or made, traceparent passed, hop-by-hop removed", async () => {
    const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    await call(ep.port, "/svc/hello/h", { agent, headers: { traceparent: tp, "x-request-id": "rid-1", "x-custom": "1", connection: "keep-alive, x-custom", "keep-alive": "timeout=5" } });
    const h = backends.find((b) => b.last?.url === "/h")!.last!.headers;
    expect(h.traceparent).toBe(tp);
    expect(h["x-request-id"]).toBe("rid-1");
    expect(h["x-forwarded-for"]).toBe("127.0.0.1");
    expect(h["x-custom"]).toBeUndefined();
    expect(h["keep-alive"]).toBeUndefined();
    await call(ep.port, "/svc/hello/h2", { agent });
    const h2 = backends.find((b) => b.last?.url === "/h2")!.last!.headers;
    expect(h2["x-request-id"]).toMatch(/^[0-9a-f]{12}-0-[0-9a-z]+$/);
  });

  it("balancer: table changes apply to the next requests (an instance removed takes no more traffic)", async () => {
    await ep.set([table("hello", backends.slice(0, 2).map((b) => endpointOf(b)))]);
    const seen: string[] = [];
    for (let i = 0; i < 20; i++) seen.push((await call(ep.port, "/svc/hello/", { agent })).body);
    expect(Object.keys(count(seen)).sort()).toEqual(["a", "b"]);
    await ep.set([table("hello", backends.map((b) => endpointOf(b))), table("empty", [])]);
  });

  it("balancer: fallback: a service with no healthy instance sends its requests to its fallback service", async () => {
    await ep.set([table("hello", backends.map((b) => endpointOf(b))), table("empty", [], { fallback: "hello" })]);
    const r = await call(ep.port, "/svc/empty/fb", { agent });
    expect(r.status).toBe(200);
    expect(["a", "b", "c"]).toContain(r.body);
    await ep.set([table("hello", backends.map((b) => endpointOf(b))), table("empty", [])]);
  });
});
