/**
 * Retries of the HTTP/1.1 proxy that the budget and the master's table shape: a retry chain
 * leaves nothing held in the retry budget, and a master-slave request whose master refused its
 * connection waits for the table to name a new master instead of spending its retries on the
 * dead port. The in-process listener (the worker's own code on real sockets) lets the tests read
 * the route's counters; the worker-pool tests go through a real worker thread.
 */
import { type AddressInfo, createServer as createNetServer, type Server as NetServer, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createListener } from "../../../src/balancer/http-listener.js";
import { MASTER_WAIT_MS_MAX } from "../../../src/balancer/limits.js";
import type { AtomicCircuitBreaker } from "../../../src/balancer/policy/circuit-breaker.js";
import type { CountingRetryBudget } from "../../../src/balancer/policy/retry-budget.js";
import { RouteTable } from "../../../src/balancer/route-table.js";
import { UpstreamPools } from "../../../src/balancer/upstream-pool.js";
import type { WireTable } from "../../../src/balancer/messages.js";
import { type Backend, call, count, endpointOf, type Handler, startBackend, startEndpoint, type TestEndpoint, table } from "./harness.js";

const NO_EJECT = { outlierConsecutiveFailures: 0 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** refusingPort is a loopback port nothing listens on (a closed listener's): connects to it are refused. */
async function refusingPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** echo answers its id and the request's body. */
const echo: Handler = (req, res, b) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.once("end", () => res.end(`${b.id}:${Buffer.concat(chunks).toString()}`));
};

/** timed sends one request and says how long its answer took. */
async function timed(port: number, path: string, opts: Parameters<typeof call>[2] = {}): Promise<{ status: number; body: string; ms: number }> {
  const t0 = performance.now();
  const r = await call(port, path, opts);
  return { status: r.status, body: r.body, ms: performance.now() - t0 };
}

/** inProcess serves tables through the worker's listener in this thread, so its route counters can be read. */
async function inProcess(tables: WireTable[]): Promise<{ port: number; routes: RouteTable; server: NetServer; pools: UpstreamPools }> {
  const routes = new RouteTable("");
  routes.apply({ full: true, tables, removed: [] });
  const pools = new UpstreamPools();
  const server = createListener({ routes, pools, requestIdPrefix: "t-", random: Math.random });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { port: (server.address() as AddressInfo).port, routes, server, pools };
}

describe("balancer: HTTP/1.1 retry budget and master wait", () => {
  let backends: Backend[] = [];
  let closers: (() => Promise<void> | void)[] = [];

  afterEach(async () => {
    for (const c of closers) await c();
    closers = [];
    await Promise.all(backends.map((b) => b.close()));
    backends = [];
  });

  it("balancer: a retry that gets a 5xx and is retried again leaves nothing held in the retry budget", async () => {
    const five = (id: string) =>
      startBackend(id, (req, res) => {
        req.resume();
        res.statusCode = 503;
        res.end("down");
      });
    backends = [await five("f1"), await five("f2"), await startBackend("ok")];
    const p = await inProcess([table("chain", backends.map((b) => endpointOf(b)), { retries: 2, ...NO_EJECT })]);
    closers.push(() => {
      p.server.close();
      p.pools.close();
    });
    // Requests that meet both 5xx instances first need two retries; a reservation kept per such
    // chain would use up the budget's floor of 3 within a few requests and turn the rest into 503s.
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await call(p.port, "/svc/chain/")).status);
    expect(statuses).toEqual(Array(12).fill(200));
    expect(backends[0]!.hits + backends[1]!.hits).toBeGreaterThanOrEqual(12);
    const budget = p.routes.get("chain")!.budget as CountingRetryBudget;
    expect(budget.counts()).toEqual({ requests: 0, retries: 0 });
  });

  describe("a master-slave master that refuses its connections", () => {
    let ep: TestEndpoint | undefined;
    afterEach(async () => {
      await ep?.stop();
      ep = undefined;
    });

    const ms = (a: number, b: Backend, master: { id: string; epoch: number }, over: { aHealth?: "passing" | "critical" } = {}) =>
      table("ms", [endpointOf({ id: "a", port: a }, { health: over.aHealth ?? "passing" }), endpointOf(b)], { mode: "master-slave", retries: 2, ...NO_EJECT }, master);

    it("balancer: GETs and a POST wait for the table to name the new master and are answered by it, no 5xx", async () => {
      const a = await refusingPort();
      backends = [await startBackend("b", echo)];
      const b = backends[0]!;
      ep = await startEndpoint([ms(a, b, { id: "a", epoch: 1 })]);
      const gets = Array.from({ length: 4 }, () => timed(ep!.port, "/svc/ms/"));
      const post = timed(ep.port, "/svc/ms/", { method: "POST", body: "payload" });
      // The table names the new master 150 ms after the requests met the dead one: far past the
      // backoffs of two retries (≤ 25 + 50 ms), which alone would have answered 502.
      await sleep(150);
      await ep.set([ms(a, b, { id: "b", epoch: 2 })]);
      const got = await Promise.all([...gets, post]);
      expect(got.map((r) => `${r.status} ${r.body}`)).toEqual([...Array(4).fill("200 b:"), "200 b:payload"]);
      for (const r of got) expect(r.ms).toBeGreaterThanOrEqual(140);
      expect(b.hits).toBe(5);
    });

    it("balancer: with no new master in the table the request fails after MASTER_WAIT_MS_MAX with 502 (a master gone critical meanwhile: the same)", async () => {
      const a = await refusingPort();
      backends = [await startBackend("b", echo)];
      const b = backends[0]!;
      ep = await startEndpoint([ms(a, b, { id: "a", epoch: 1 })]);
      const alone = await timed(ep.port, "/svc/ms/");
      expect(alone.status).toBe(502);
      expect(JSON.parse(alone.body)).toMatchObject({ error: "upstream-failed" });
      expect(alone.ms).toBeGreaterThanOrEqual(MASTER_WAIT_MS_MAX - 5);
      // At the bound the retries go on as before the wait: a few backoffs, not another wait.
      expect(alone.ms).toBeLessThan(MASTER_WAIT_MS_MAX + 1_500);
      // An update that names no master (the old one critical) is no reason to stop waiting.
      const held = timed(ep.port, "/svc/ms/");
      await sleep(100);
      await ep.set([ms(a, b, { id: "a", epoch: 1 }, { aHealth: "critical" })]);
      const r = await held;
      expect(r.status).toBe(502);
      expect(r.ms).toBeGreaterThanOrEqual(MASTER_WAIT_MS_MAX - 5);
      expect(b.hits).toBe(0);
    });

    it("balancer: a GET reset by the master, retried while the table names no master (it went critical), waits for the new one", async () => {
      backends = [await startBackend("b", echo)];
      const b = backends[0]!;
      let table2: Promise<void> | undefined;
      // The master marks itself critical as the request arrives, then drops the connection: the
      // retry (after ≤ 25 ms) finds the table between masters.
      const a = await startBackend("a", (req) => {
        table2 = ep!.set([ms(a.port, b, { id: "a", epoch: 1 }, { aHealth: "critical" })]);
        setTimeout(() => req.socket.destroy(), 60);
      });
      backends.push(a);
      ep = await startEndpoint([ms(a.port, b, { id: "a", epoch: 1 })]);
      const got = timed(ep.port, "/svc/ms/");
      await sleep(250);
      await table2;
      await ep.set([ms(a.port, b, { id: "b", epoch: 2 })]);
      const r = await got;
      expect(`${r.status} ${r.body}`).toBe("200 b:");
      expect(a.hits).toBe(1);
      expect(b.hits).toBe(1);
    });

    it("balancer: six GETs in flight when the master dies (all reset at once) are all answered by the new master, though the budget's floor is 3", async () => {
      const N = 6;
      backends = [await startBackend("b", echo)];
      const b = backends[0]!;
      // The master takes the N requests, then dies with all of them in flight: its connections are
      // reset together and its port refuses from then on, as after a supervised process's exit.
      const a = await startBackend("a", (_req, _res, self) => {
        if (self.hits < N) return;
        self.server.close();
        self.server.closeAllConnections();
      });
      backends.push(a);
      const msTable = (master: { id: string; epoch: number }) =>
        table("ms", [endpointOf(a), endpointOf(b)], { mode: "master-slave", retries: 3, ...NO_EJECT }, master);
      const p = await inProcess([msTable({ id: "a", epoch: 1 })]);
      closers.push(() => {
        p.server.close();
        p.pools.close();
      });
      const gets = Array.from({ length: N }, () => timed(p.port, "/svc/ms/"));
      while (a.hits < N) await sleep(5);
      // The table names the new master 100 ms after the crash (a supervised crash's failover on a
      // loaded machine), past every backoff of the retries.
      await sleep(100);
      p.routes.apply({ full: true, tables: [msTable({ id: "b", epoch: 2 })], removed: [] });
      const got = await Promise.all(gets);
      expect(got.map((r) => `${r.status} ${r.body}`)).toEqual(Array(N).fill("200 b:"));
      expect(b.hits).toBe(N);
      const route = p.routes.get("ms")!;
      expect((route.budget as CountingRetryBudget).counts()).toEqual({ requests: 0, retries: 0 });
      expect((route.breaker as AtomicCircuitBreaker).counts()).toMatchObject({ pending: 0, requests: 0 });
    });

    it("balancer: the retry budget still holds for a master that resets every request and no new master comes (tries stay within the budget)", async () => {
      const N = 20;
      const a = await startBackend("a", (req) => {
        setTimeout(() => req.socket.destroy(), 20);
      });
      backends = [a, await startBackend("b", echo)];
      const p = await inProcess([table("ms", [endpointOf(a), endpointOf(backends[1]!)], { mode: "master-slave", retries: 3, retryBudgetPercent: 20, ...NO_EJECT }, { id: "a", epoch: 1 })]);
      closers.push(() => {
        p.server.close();
        p.pools.close();
      });
      const got = await Promise.all(Array.from({ length: N }, () => timed(p.port, "/svc/ms/")));
      expect(count(got.map((r) => String(r.status)))).toEqual({ 502: N });
      // Without a budget: N × (1 + 3) = 80 tries. With max(3, 20 % of 20) = 4 retries in flight,
      // each spending its 3 retries: N + 4 × 3 = 32 at most.
      expect(a.hits).toBeGreaterThanOrEqual(N);
      expect(a.hits).toBeLessThanOrEqual(N + 4 * 3);
      expect(backends[1]!.hits).toBe(0);
      expect((p.routes.get("ms")!.budget as CountingRetryBudget).counts()).toEqual({ requests: 0, retries: 0 });
    });

    it("balancer: a held request counts as pending (past maxPendingRequests a retry backs off as before); one whose client left is dropped", async () => {
      const a = await refusingPort();
      backends = [await startBackend("b", echo)];
      const b = backends[0]!;
      const msTable = (master: { id: string; epoch: number }) =>
        table("ms", [endpointOf({ id: "a", port: a }), endpointOf(b)], { mode: "master-slave", retries: 2, maxPendingRequests: 1, ...NO_EJECT }, master);
      const p = await inProcess([msTable({ id: "a", epoch: 1 })]);
      closers.push(() => {
        p.server.close();
        p.pools.close();
      });
      const route = p.routes.get("ms")!;
      const breaker = route.breaker as AtomicCircuitBreaker;
      const budget = route.budget as CountingRetryBudget;
      // Two requests, one pending place: one waits, the other spends its retries on the dead port.
      const two = [timed(p.port, "/svc/ms/"), timed(p.port, "/svc/ms/")];
      const first = await Promise.race(two);
      expect(first.status).toBe(502);
      expect(first.ms).toBeLessThan(MASTER_WAIT_MS_MAX);
      expect(breaker.counts().pending).toBe(1);
      p.routes.apply({ full: true, tables: [msTable({ id: "b", epoch: 2 })], removed: [] });
      const got = await Promise.all(two);
      expect(got.map((r) => r.status).sort()).toEqual([200, 502]);
      expect(b.hits).toBe(1);
      // (connections: the one to b stays open, idle in its pool.)
      expect(breaker.counts()).toMatchObject({ pending: 0, requests: 0 });

      // A client that leaves while its request waits: the wait ends, nothing goes to the next master.
      p.routes.apply({ full: true, tables: [msTable({ id: "a", epoch: 3 })], removed: [] });
      const s = new Socket();
      await new Promise<void>((r) => s.connect(p.port, "127.0.0.1", () => r()));
      s.on("error", () => {});
      s.write("GET /svc/ms/ HTTP/1.1\r\nhost: x\r\n\r\n");
      await sleep(100);
      expect(breaker.counts()).toMatchObject({ pending: 1, requests: 1 });
      // A reset, not an end: a client that only ends its side may still read the answer (allowHalfOpen).
      s.resetAndDestroy();
      await sleep(50);
      expect(breaker.counts()).toMatchObject({ pending: 0, requests: 0 });
      p.routes.apply({ full: true, tables: [msTable({ id: "b", epoch: 4 })], removed: [] });
      await sleep(50);
      expect(b.hits).toBe(1);
      expect(budget.counts()).toEqual({ requests: 0, retries: 0 });
    });
  });
});
