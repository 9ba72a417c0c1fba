/**
 * /readyz of a real node says ready only once the node can take traffic: a leader known, caught up,
 * and its balancing endpoint listening. The agent starts the endpoint's workers after Raft and the
 * client API (a member that waited for them would delay the cluster's next election), so a member
 * that restarts beside a running cluster learns its leader from the first heartbeat, well before its
 * workers (a thread each, loading the balancer's modules) listen. Ready before that, a load balancer
 * that asks /readyz sends mesh traffic to a port that refuses it.
 */
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { acceptsConnection as accepts } from "../harness/ports.js";
import { ProcessCluster } from "../harness/process-cluster.js";

/** READY_POLL_MS: how often the test asks /readyz; small, so the first 200 is seen soon after it is true. */
const READY_POLL_MS = 5;
/**
 * WORKER_DELAY_MS holds the restarted member's worker threads back (test/fixtures/slow-worker-start.mjs),
 * as a loaded machine does: longer than the leader's reconnect backoff (1 s at most), so the member
 * knows its leader while its endpoint does not listen yet, on a quiet machine too.
 */
const WORKER_DELAY_MS = 3_000;
const SLOW_WORKER_PRELOAD = fileURLToPath(new URL("../../fixtures/slow-worker-start.mjs", import.meta.url));
/** READY_WAIT_MS bounds the wait for the starting member to be ready (tsx compiles on a loaded machine). */
const READY_WAIT_MS = 60_000;

describe("readyz: ready means the balancing endpoint listens", () => {
  let c: ProcessCluster | undefined;
  afterAll(async () => {
    await c?.cleanup();
  });

  it("readyz: a member restarted beside a running cluster answers 503 (naming its endpoint) until its endpoint accepts connections", async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    await c.waitForLeader(30_000);
    // Restart a member (with its data): a cluster that runs on without it, which it rejoins.
    const leader = await c.waitForLeader(30_000);
    const member = ["n1", "n2", "n3"].find((id) => id !== leader) as string;
    await c.stop(member);
    const spec = c.specs.get(member) as { adminPort: number; balancerPort: number };
    c.start(member, { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${SLOW_WORKER_PRELOAD}`, RAFTMESH_TEST_WORKER_DELAY_MS: String(WORKER_DELAY_MS) });
    const reasons = new Set<string>();
    const deadline = Date.now() + READY_WAIT_MS;
    let ready = false;
    while (!ready && Date.now() < deadline) {
      const r = await fetch(`http://127.0.0.1:${spec.adminPort}/readyz`).catch(() => undefined);
      if (r?.status === 200) ready = true;
      else {
        if (r) reasons.add(((await r.json()) as { reason: string }).reason);
        await new Promise((t) => setTimeout(t, READY_POLL_MS));
      }
    }
    expect(ready).toBe(true);
    // At the first 200, the endpoint takes connections.
    expect(await accepts(spec.balancerPort)).toBe(true);
    // And the wait was for the endpoint, not only the leader (the race this test is about was run).
    expect([...reasons]).toContain("balancing endpoint not listening yet");
  }, 90_000);
});
