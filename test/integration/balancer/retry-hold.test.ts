/**
 * Retries of the HTTP/1.1 proxy that the budget and the master's table shape: a retry chain
 * leaves nothing held in the retry budget, and a master-slave request whose master refused its
 * connection waits for the table to name a new master instead of spending its retries on the
 * dead port. The in-process listener (the worker's own code on real sockets) lets the tests read
 * the route's counters; the worker-pool tests go through a real worker thread.
 */
import type { AddressInfo, Server as NetServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createListener } from "../../../src/balancer/http-listener.js";
import type { CountingRetryBudget } from "../../../src/balancer/policy/retry-budget.js";
import { RouteTable } from "../../../src/balancer/route-table.js";
import { UpstreamPools } from "../../../src/balancer/upstream-pool.js";
import type { WireTable } from "../../../src/balancer/messages.js";
import { type Backend, call, endpointOf, startBackend, table } from "./harness.js";

const NO_EJECT = { outlierConsecutiveFailures: 0 };

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
});
