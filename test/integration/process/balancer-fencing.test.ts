/**
 * The balancing endpoint never routes to a demoted master: a 3-node cluster, a master-slave
 * service with two demo backends (src/demo/backend.ts) each running a master session, and a
 * client writing through a follower's endpoint all the time. The master's heartbeats are cut (its
 * process stays up and keeps answering). Through the failover every request through the endpoint
 * gets 503 (no master), 502, a 409 from the old master that already stood down, or a write
 * accepted by the new master at the new epoch: never a write accepted by the old master after it
 * stood down, never one with the old epoch after the new master accepted one, and every accepted
 * write carried the epoch the endpoint sent.
 */
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientHeartbeat, type HeartbeatCall, MasterSession } from "../../../src/client/master-session.js";
import { type BackendRecord, DemoBackend, hostMonotonicMs } from "../../../src/demo/backend.js";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

/** TTL_MS is the smallest lease the registry allows, so the failover fits the test's budget. */
const TTL_MS = 1_000;
/** PROBE_FOR_MS covers the whole failover: one TTL plus room for the promotion on a busy machine. */
const PROBE_FOR_MS = TTL_MS + 3_000;
const SERVICE = "fenced";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Instance {
  readonly id: string;
  readonly backend: DemoBackend;
  readonly session: MasterSession;
  readonly records: BackendRecord[];
  cut: boolean;
  demotedAt: number;
}

describe("balancer: fencing through a failover", () => {
  let c: ProcessCluster;
  const instances: Instance[] = [];

  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    await c.waitForLeader();
  }, 30_000);

  afterAll(async () => {
    for (const i of instances) {
      i.session.stop();
      await i.backend.close();
    }
    await c?.cleanup();
  });

  it("balancer: requests during a failover get 503/409 or reach the new master with the new epoch, never the demoted one", async () => {
    const leader = await c.waitForLeader();
    const follower = (["n1", "n2", "n3"] as const).find((n) => n !== leader) as string;
    const client = c.client(leader);
    await client.putService(SERVICE, { mode: "master-slave" });
    for (const id of ["a", "b"]) {
      const records: BackendRecord[] = [];
      // The heartbeat path can be cut while the backend keeps serving: a master cut off from the cluster.
      let inst: Instance | undefined;
      const real = clientHeartbeat(c.client(leader));
      const hb: HeartbeatCall = (req, deadline) => (inst?.cut ? Promise.reject(new Error("cut")) : real(req, deadline));
      const sessionRef: { s?: MasterSession } = {};
      const backend = new DemoBackend({
        id,
        now: hostMonotonicMs,
        session: { isMaster: () => sessionRef.s?.isMaster() === true, get epoch() { return sessionRef.s?.epoch ?? 0; }, get newestEpoch() { return sessionRef.s?.newestEpoch ?? 0; } },
        record: (r) => records.push(r),
      });
      const port = await backend.listen(0);
      await client.register({ id, service: SERVICE, address: "127.0.0.1", port, ttlMs: TTL_MS });
      // A master stands down at its deadline (isMaster() is false from then on, whatever its timer
      // does); the demotion callback runs when the timer fires, which a busy loop makes late. So
      // the moment it stood down is the deadline, carried over to the host clock.
      const session: MasterSession = new MasterSession(hb, {
        service: SERVICE,
        id,
        ttlMs: TTL_MS,
        onDemoted: (reason) => {
          const late = reason === "lease-lost" ? Math.max(0, performance.now() - session.deadline) : 0;
          if (inst) inst.demotedAt = hostMonotonicMs() - late;
        },
      });
      sessionRef.s = session;
      inst = { id, backend, session, records, cut: false, demotedAt: Number.POSITIVE_INFINITY };
      instances.push(inst);
      session.start();
    }
    const [a, b] = instances as [Instance, Instance];
    const url = `http://127.0.0.1:${c.specs.get(follower)!.balancerPort}/svc/${SERVICE}/write`;
    const write = async () => {
      const sentAt = hostMonotonicMs();
      const res = await fetch(url, { method: "POST", body: "x", signal: AbortSignal.timeout(2_000) });
      const body = (await res.json().catch(() => ({}))) as { id?: string; epoch?: number; error?: string };
      return { sentAt, at: hostMonotonicMs(), status: res.status, body };
    };
    const first = await waitFor("a write through the endpoint accepted by a", async () => {
      const r = await write();
      return r.status === 200 && r.body.id === "a" ? r : undefined;
    });
    const oldEpoch = Number(first.body.epoch);

    a.cut = true;
    const cutAt = hostMonotonicMs();
    const seen: Awaited<ReturnType<typeof write>>[] = [];
    while (hostMonotonicMs() - cutAt < PROBE_FOR_MS) {
      seen.push(await write());
      await sleep(5);
    }
    const statuses = new Set(seen.map((r) => r.status));
    console.log(`balancer fencing: ${seen.length} requests during the failover, statuses ${[...statuses].sort().join(",")}; a stood down ${Math.round(a.demotedAt - cutAt)} ms after the cut`);

    // The failover happened and the new master took writes through the endpoint.
    const firstNew = seen.find((r) => r.status === 200 && r.body.id === "b");
    expect(firstNew).toBeDefined();
    const newEpoch = Number(firstNew?.body.epoch);
    expect(newEpoch).toBeGreaterThan(oldEpoch);
    expect(a.demotedAt).toBeLessThan(firstNew?.at as number);
    for (const r of seen) {
      expect([200, 409, 502, 503]).toContain(r.status);
      if (r.status !== 200) continue;
      if (r.body.id === "a") {
        // a may serve only while it still held its lease: such a request was sent before a stood
        // down (its answer may arrive after; the backends' records below give the exact moment).
        expect(Number(r.body.epoch)).toBe(oldEpoch);
        expect(r.sentAt).toBeLessThan(a.demotedAt);
      } else {
        expect(r.body.id).toBe("b");
        expect(Number(r.body.epoch)).toBe(newEpoch);
      }
    }
    // The backends' own records: each accepted write carried the endpoint's epoch, equal to the
    // writer's; a accepted nothing after it stood down.
    for (const i of instances) {
      for (const w of i.records) {
        if (w.type !== "write") continue;
        expect(w.headerEpoch).toBe(w.epoch);
        if (i === a) expect(w.t).toBeLessThan(a.demotedAt);
      }
    }
    expect(b.records.some((w) => w.type === "write" && w.epoch === newEpoch)).toBe(true);
  }, 25_000);
});
