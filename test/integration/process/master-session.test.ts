/**
 * The master session helper against a real 3-node cluster (agent processes), TTL 1 s: the first
 * instance to pass becomes master; when the node the master heartbeats through is killed, the
 * master stands down on its own before the cluster promotes the standby, and the standby is
 * promoted with a newer epoch within a bound after the master's last acknowledged heartbeat.
 */
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DemotionReason, type MasterSession, RaftmeshClient, startMasterSession } from "../../../src/client/index.js";
import { DemoBackend, EPOCH_HEADER } from "../../../src/demo/backend.js";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

const TTL_MS = 1_000;
/**
 * PROMOTION_BOUND_MS bounds promotion after the last acknowledged heartbeat beyond the TTL: an
 * election when the killed node led (~1 s with the agent's defaults), the 100 ms lease check,
 * one commit and one heartbeat round trip of the standby, with room for a busy 2-core machine.
 */
const PROMOTION_BOUND_MS = 4_000;

interface Trace {
  readonly id: string;
  readonly via: string;
  readonly promoted: { at: number; epoch: number }[];
  readonly demoted: { at: number; epoch: number; reason: DemotionReason }[];
  readonly acks: { sentAt: number; at: number; role: string }[];
  session?: MasterSession;
  client?: RaftmeshClient;
}

describe("master session on a 3-node cluster", () => {
  let c: ProcessCluster;
  const traces: Trace[] = [];

  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    await c.waitForLeader();
  });
  afterAll(async () => {
    for (const t of traces) {
      t.session?.stop();
      t.client?.close();
    }
    await c?.cleanup();
  });

  it("master session: the master whose node dies stands down before the standby is promoted", async () => {
    await c.client("n1").putService("db", { mode: "master-slave" });
    for (const [id, via] of [
      ["db-a", "n1"],
      ["db-b", "n2"],
    ] as const) {
      const t: Trace = { id, via, promoted: [], demoted: [], acks: [] };
      traces.push(t);
      // Each instance reaches only its own node, so killing that node cuts it off.
      t.client = new RaftmeshClient([c.api(via)]);
      t.session = await startMasterSession(t.client, {
        service: "db",
        id,
        address: "127.0.0.1",
        port: 9000,
        ttlMs: TTL_MS,
        onPromoted: (epoch) => t.promoted.push({ at: performance.now(), epoch }),
        onDemoted: (reason, epoch) => t.demoted.push({ at: performance.now(), epoch, reason }),
        onAnswer: (a, sentAt) => t.acks.push({ sentAt, at: performance.now(), role: a.role }),
      });
    }
    const master = await waitFor("a master", () => traces.find((t) => t.session?.isMaster()), 15_000);
    const standby = traces.find((t) => t !== master) as Trace;
    // Both hear the same epoch; only one is master.
    await waitFor("the standby's answer", () => standby.acks.some((a) => a.role === "standby"), 5_000);
    expect(standby.session?.isMaster()).toBe(false);
    const firstEpoch = master.promoted[0]?.epoch as number;
    expect(firstEpoch).toBeGreaterThan(0);

    await c.kill(master.via);
    await waitFor("the standby's promotion", () => standby.promoted.length > 0, TTL_MS + PROMOTION_BOUND_MS + 2_000);
    const lastAck = master.acks.filter((a) => a.role === "master").at(-1) as Trace["acks"][number];
    const demoted = master.demoted[0];
    const promoted = standby.promoted[0] as Trace["promoted"][number];
    expect(demoted?.reason).toBe("lease-lost");
    // Stood down at TTL - margin after the send of its last acknowledged heartbeat (timers run late, never early)…
    expect((demoted?.at as number) - lastAck.sentAt).toBeGreaterThanOrEqual(TTL_MS - (master.session?.marginMs as number) - 1);
    // …and before the standby took over, with a newer epoch, within the bound.
    expect(demoted?.at as number).toBeLessThan(promoted.at);
    expect(promoted.epoch).toBeGreaterThan(firstEpoch);
    expect(promoted.at - lastAck.at).toBeLessThan(TTL_MS + PROMOTION_BOUND_MS);
    expect(master.session?.isMaster()).toBe(false);

    // Fencing: the demo backends on both sessions refuse what belongs to the other epoch.
    const backends = [master, standby].map((t) => new DemoBackend({ id: t.id, session: t.session as MasterSession, now: () => performance.now() }));
    try {
      const [oldPort, newPort] = await Promise.all(backends.map((b) => b.listen(0)));
      const write = async (port: number | undefined, epoch: number) => {
        const res = await fetch(`http://127.0.0.1:${port}/write`, { method: "POST", headers: { [EPOCH_HEADER]: String(epoch) }, body: "x" });
        return { status: res.status, body: (await res.json()) as { error?: string; epoch?: number } };
      };
      expect(await write(newPort, firstEpoch)).toMatchObject({ status: 409, body: { error: "stale-epoch" } });
      expect(await write(oldPort, promoted.epoch)).toMatchObject({ status: 409, body: { error: "not-master" } });
      expect(await write(oldPort, firstEpoch)).toMatchObject({ status: 409 });
      expect(await write(newPort, promoted.epoch)).toMatchObject({ status: 200, body: { epoch: promoted.epoch } });
    } finally {
      await Promise.all(backends.map((b) => b.close()));
    }
  });
});
