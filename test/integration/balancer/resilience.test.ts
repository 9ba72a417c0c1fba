import { Agent, request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { type Backend, call, count, endpointOf, startBackend, startEndpoint, type TestEndpoint, table } from "./harness.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("balancer: resilience through the HTTP/1.1 endpoint", () => {
  let backends: Backend[] = [];
  let ep: TestEndpoint | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });

  afterEach(async () => {
    await ep?.stop();
    ep = undefined;
    await Promise.all(backends.map((b) => b.close()));
    backends = [];
  });

  it("balancer: a backend killed mid-run fails no idempotent request (connect failures and resets are retried elsewhere)", async () => {
    backends = await Promise.all(["a", "b", "c"].map((id) => startBackend(id)));
    ep = await startEndpoint([table("svc", backends.map((b) => endpointOf(b)), { retries: 2 })]);
    const statuses: number[] = [];
    const worker = async () => {
      for (let i = 0; i < 60; i++) statuses.push((await call(ep!.port, "/svc/svc/", { agent })).status);
    };
    const run = Promise.all(Array.from({ length: 6 }, worker));
    await sleep(150);
    await backends[1]!.close();
    await run;
    expect(statuses.length).toBe(360);
    expect(count(statuses.map(String))).toEqual({ 200: 360 });
  });

  it("balancer: a POST whose connection broke after its bytes were sent is not retried (502, one try)", async () => {
    const broken = await startBackend("broken", (req) => {
      req.resume();
      req.once("end", () => req.socket.destroy());
    });
    const good = await startBackend("good");
    backends = [broken, good];
    ep = await startEndpoint([table("svc", [endpointOf(broken)], { retries: 2 }), table("both", [endpointOf(broken), endpointOf(good)], { retries: 2, outlierConsecutiveFailures: 0 })]);
    const r = await call(ep.port, "/svc/svc/", { method: "POST", body: "payload" });
    expect(r.status).toBe(502);
    expect(JSON.parse(r.body)).toMatchObject({ error: "upstream-failed" });
    expect(broken.hits).toBe(1);
    // The same failure on a GET is retried on the other instance.
    const before = good.hits;
    for (let i = 0; i < 4; i++) expect((await call(ep.port, "/svc/both/")).status).toBe(200);
    expect(good.hits - before).toBe(4);
    // A POST never goes twice, even with another instance to go to.
    const posts = broken.hits;
    const results = [];
    for (let i = 0; i < 4; i++) results.push((await call(ep.port, "/svc/both/", { method: "POST", body: "x" })).status);
    expect(results.filter((s) => s === 502).length).toBe(broken.hits - posts);
  });

  it("balancer: a 5xx is retried for GET but not for POST, unless retryOn5xx", async () => {
    const bad = await startBackend("bad", (req, res) => {
      req.resume();
      res.statusCode = 500;
      res.end("bad");
    });
    const good = await startBackend("good");
    backends = [bad, good];
    const eps = [endpointOf(bad), endpointOf(good)];
    ep = await startEndpoint([table("svc", eps, { retries: 1, outlierConsecutiveFailures: 0 }), table("svc5", eps, { retries: 1, retryOn5xx: true, outlierConsecutiveFailures: 0 })]);
    const gets = [];
    for (let i = 0; i < 6; i++) gets.push((await call(ep.port, "/svc/svc/")).status);
    expect(gets).toEqual([200, 200, 200, 200, 200, 200]);
    const posts = [];
    for (let i = 0; i < 6; i++) posts.push((await call(ep.port, "/svc/svc/", { method: "POST", body: "x" })).status);
    expect(posts.filter((s) => s === 500).length).toBe(3);
    const posts5 = [];
    for (let i = 0; i < 6; i++) posts5.push((await call(ep.port, "/svc/svc5/", { method: "POST", body: "x" })).status);
    expect(posts5).toEqual([200, 200, 200, 200, 200, 200]);
  });

  it("balancer: the retry budget holds under a full outage (tries stay near one per request, not 1 + retries)", async () => {
    backends = await Promise.all(
      ["a", "b", "c"].map((id) =>
        startBackend(id, (req, res) => {
          req.resume();
          setTimeout(() => {
            res.statusCode = 503;
            res.end("down");
          }, 50);
        }),
      ),
    );
    ep = await startEndpoint([table("svc", backends.map((b) => endpointOf(b)), { retries: 3, retryBudgetPercent: 20, outlierConsecutiveFailures: 0 })]);
    const many = new Agent({ keepAlive: true, maxSockets: 100 });
    const REQUESTS = 100;
    const replies = await Promise.all(Array.from({ length: REQUESTS }, () => call(ep!.port, "/svc/svc/", { agent: many })));
    many.destroy();
    expect(count(replies.map((r) => String(r.status)))).toEqual({ 503: REQUESTS });
    const tries = backends.reduce((n, b) => n + b.hits, 0);
    // Without a budget: 400 tries. With 20 % of 100 in flight: about 20 retries, then fewer as requests end.
    expect(tries).toBeGreaterThanOrEqual(REQUESTS);
    expect(tries).toBeLessThanOrEqual(REQUESTS * 1.5);
  });

  it("balancer: an instance failing in a row is ejected, then takes traffic again after its ejection", async () => {
    /** EJECTION_MS is long enough that the requests made while the instance is ejected all fall inside it. */
    const EJECTION_MS = 2_000;
    let failing = true;
    const flaky = await startBackend("flaky", (req, res) => {
      req.resume();
      res.statusCode = failing ? 500 : 200;
      res.end("flaky");
    });
    const good = await Promise.all(["g1", "g2"].map((id) => startBackend(id)));
    backends = [flaky, ...good];
    ep = await startEndpoint([
      table("svc", backends.map((b) => endpointOf(b)), { retries: 2, outlierConsecutiveFailures: 3, outlierBaseEjectionMs: EJECTION_MS, outlierMaxEjectionPercent: 50 }),
    ]);
    const statuses: number[] = [];
    // 30 sequential requests end well inside the ejection even on a loaded machine (66 ms each).
    for (let i = 0; i < 30; i++) statuses.push((await call(ep.port, "/svc/svc/", { agent })).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(flaky.hits).toBe(3);
    failing = false;
    await sleep(EJECTION_MS + 100);
    const seen: string[] = [];
    for (let i = 0; i < 30; i++) seen.push((await call(ep.port, "/svc/svc/", { agent })).body);
    expect(count(seen).flaky ?? 0).toBeGreaterThanOrEqual(5);
  });

  it("balancer: circuit breaking: requests past maxRequests get 503 with a body saying so", async () => {
    backends = [await startBackend("slow", (req, res) => {
      req.resume();
      setTimeout(() => res.end("slow"), 300);
    })];
    ep = await startEndpoint([table("svc", [endpointOf(backends[0]!)], { maxRequests: 2 })]);
    const many = new Agent({ keepAlive: true, maxSockets: 10 });
    const replies = await Promise.all(Array.from({ length: 5 }, () => call(ep!.port, "/svc/svc/", { agent: many })));
    many.destroy();
    const byStatus = count(replies.map((r) => String(r.status)));
    expect(byStatus).toEqual({ 200: 2, 503: 3 });
    const refused = replies.find((r) => r.status === 503)!;
    expect(JSON.parse(refused.body)).toMatchObject({ error: "circuit-open", service: "svc", limit: "requests" });
  });

  it("balancer: circuit breaking: past maxConnections requests wait for a connection, past maxPendingRequests they get 503 saying so", async () => {
    const seen = new Set<unknown>();
    backends = [await startBackend("slow", (req, res) => {
      seen.add(req.socket);
      req.resume();
      setTimeout(() => res.end("slow"), 300);
    })];
    ep = await startEndpoint([table("svc", [endpointOf(backends[0]!)], { maxConnections: 2, maxPendingRequests: 1, maxRequests: 100 })]);
    const many = new Agent({ keepAlive: true, maxSockets: 10 });
    const replies = await Promise.all(Array.from({ length: 5 }, () => call(ep!.port, "/svc/svc/", { agent: many })));
    many.destroy();
    // Two go on the two connections, one waits for a free one and goes after, two are refused.
    expect(count(replies.map((r) => String(r.status)))).toEqual({ 200: 3, 503: 2 });
    expect(seen.size).toBe(2);
    for (const r of replies.filter((r) => r.status === 503)) expect(JSON.parse(r.body)).toMatchObject({ error: "circuit-open", service: "svc", limit: "pending" });
  });

  it("balancer: circuit breaking: at maxConnections a try to an instance with no connection is refused at once (503, limit connections)", async () => {
    const slow = (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
      req.resume();
      setTimeout(() => res.end("slow"), 300);
    };
    backends = [await startBackend("a", slow), await startBackend("b", slow)];
    ep = await startEndpoint([table("svc", backends.map((b) => endpointOf(b)), { policy: "round-robin", maxConnections: 1, maxRequests: 100 })]);
    const many = new Agent({ keepAlive: true, maxSockets: 10 });
    const replies = await Promise.all(Array.from({ length: 2 }, () => call(ep!.port, "/svc/svc/", { agent: many })));
    many.destroy();
    expect(count(replies.map((r) => String(r.status)))).toEqual({ 200: 1, 503: 1 });
    expect(JSON.parse(replies.find((r) => r.status === 503)!.body)).toMatchObject({ error: "circuit-open", service: "svc", limit: "connections" });
    // The connection is kept alive and reused: the next request is not refused.
    expect((await call(ep.port, "/svc/svc/")).status).toBe(200);
  });

  it("balancer: static fallback: a service with no instance and fallbackStatus answers with it", async () => {
    ep = await startEndpoint([table("svc", [], { fallbackStatus: 200, fallbackBody: "maintenance" })]);
    const r = await call(ep.port, "/svc/svc/");
    expect(r.status).toBe(200);
    expect(r.body).toBe("maintenance");
    expect(r.headers["x-raftmesh-fallback"]).toBe("svc");
  });

  it("balancer: drain: a request in flight to an instance removed from the table finishes", async () => {
    const slow = await startBackend("slow", (req, res) => {
      req.resume();
      setTimeout(() => res.end("done"), 400);
    });
    const other = await startBackend("other");
    backends = [slow, other];
    ep = await startEndpoint([table("svc", [endpointOf(slow)])]);
    const pending = call(ep.port, "/svc/svc/");
    await sleep(100);
    await ep.set([table("svc", [endpointOf(other)])]);
    expect(await pending).toMatchObject({ status: 200, body: "done" });
    expect((await call(ep.port, "/svc/svc/")).body).toBe("other");
  });

  it("balancer: master-slave routes only to the master of the newest epoch, with x-raftmesh-epoch; none known is 503", async () => {
    backends = await Promise.all(["a", "b", "c"].map((id) => startBackend(id)));
    const eps = backends.map((b) => endpointOf(b));
    ep = await startEndpoint([table("db", eps, { mode: "master-slave" }, { id: "b", epoch: 7 })]);
    for (let i = 0; i < 6; i++) expect((await call(ep.port, "/svc/db/", { agent })).body).toBe("b");
    expect(backends[1]!.last?.headers["x-raftmesh-epoch"]).toBe("7");
    await ep.set([table("db", eps, { mode: "master-slave" }, { id: "c", epoch: 9 })]);
    for (let i = 0; i < 3; i++) expect((await call(ep.port, "/svc/db/", { agent })).body).toBe("c");
    expect(backends[2]!.last?.headers["x-raftmesh-epoch"]).toBe("9");
    // An older epoch arriving late does not move traffic back.
    await ep.set([table("db", eps, { mode: "master-slave" }, { id: "a", epoch: 8 })]);
    expect((await call(ep.port, "/svc/db/", { agent })).body).toBe("c");
    await ep.set([table("db2", eps, { mode: "master-slave" })]);
    const r = await call(ep.port, "/svc/db2/", { agent });
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toMatchObject({ error: "no-master" });
  });

  it("balancer: Expect: 100-continue gets its 100 and the body goes through", async () => {
    backends = [await startBackend("echo", (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.once("end", () => res.end(Buffer.concat(chunks)));
    })];
    ep = await startEndpoint([table("svc", [endpointOf(backends[0]!)])]);
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: ep!.port, path: "/svc/svc/", method: "PUT", headers: { expect: "100-continue", "content-length": "5" } }, (res) => {
        let s = "";
        res.on("data", (c) => (s += c));
        res.once("end", () => resolve(s));
      });
      req.once("error", reject);
      req.once("continue", () => req.end("hello"));
    });
    expect(body).toBe("hello");
  });
});
