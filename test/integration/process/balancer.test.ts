/**
 * The balancing endpoint of a real node process: fed by the node's own applied registry, so an
 * instance registered through the API takes traffic, and one deregistered stops, within
 * milliseconds of the change being applied.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Backend, call, count, startBackend } from "../balancer/harness.js";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

describe("balancer: the node's endpoint follows its registry", () => {
  let c: ProcessCluster;
  let backends: Backend[];

  beforeAll(async () => {
    backends = await Promise.all(["h1", "h2"].map((id) => startBackend(id)));
    c = await ProcessCluster.create({ size: 1 });
    c.startAll();
    await c.waitForLeader();
  }, 20_000);
  afterAll(async () => {
    await c?.cleanup();
    await Promise.all(backends.map((b) => b.close()));
  });

  it("balancer: registered instances take traffic through the node's endpoint; a deregistered one stops at once", async () => {
    const port = c.specs.get("n1")!.balancerPort;
    const client = c.client("n1");
    // The agent starts its balancing workers after its API answers, so a leader known is not yet
    // a listening endpoint (a fresh-clone run's first call here was refused): wait for it.
    const first = await waitFor("the balancing endpoint listens", async () => call(port, "/svc/hello/").catch(() => undefined));
    expect(first.status).toBe(404);
    for (const b of backends) await client.register({ service: "hello", id: b.id, address: "127.0.0.1", port: b.port, ttlMs: 10_000 });
    await waitFor("both instances routed", async () => {
      const seen = [];
      for (let i = 0; i < 4; i++) seen.push((await call(port, "/svc/hello/")).body);
      return Object.keys(count(seen)).length === 2;
    });
    await client.deregister("hello", "h2");
    // The write is acknowledged once applied on the leader (this node); the table reaches the
    // worker a message later: within milliseconds (100 ms leaves room for a loaded machine).
    const acked = Date.now();
    let inARow = 0;
    for (let i = 0; i < 500 && inARow < 2; i++) inARow = (await call(port, "/svc/hello/")).body === "h1" ? inARow + 1 : 0;
    expect(inARow).toBe(2);
    expect(Date.now() - acked).toBeLessThan(100);
    const seen = [];
    for (let i = 0; i < 10; i++) seen.push((await call(port, "/svc/hello/")).body);
    expect(count(seen)).toEqual({ h1: 10 });
    await client.deregister("hello", "h1");
    const r = await call(port, "/svc/hello/");
    expect(r.status).toBe(503);
  });
});
