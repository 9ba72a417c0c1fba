/**
 * Master-slave failover on a real 3-node cluster: three instances of a master-slave service with a
 * 1 s TTL heartbeat with replication positions through followers; the master's heartbeats stop and
 * the most up-to-date standby is promoted with a larger epoch about one TTL after the master's last
 * acknowledged heartbeat (never before the TTL counted from when it was sent); heartbeat answers
 * carry role and epoch; `raftmesh failover --to` switches over and refuses an ineligible target
 * with the reason; a watch sees every master change in order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventMsg, MasterChangeMsg } from "../../../src/common/messages.js";
import type { RaftmeshClient } from "../../../src/client/index.js";
import { ProcessCluster, runCli, waitFor } from "../harness/process-cluster.js";

const NODES = ["n1", "n2", "n3"] as const;
/** TTL_MS is the smallest lease the registry allows, so the test is short. */
const TTL_MS = 1_000;
const HEARTBEAT_EVERY_MS = TTL_MS / 4;
/** PROMOTION_SLACK_MS bounds how late after TTL the promotion is seen: the 100 ms lease check, one commit and a poll, with room for a busy 2-core machine. */
const PROMOTION_SLACK_MS = 1_500;
/** POSITIONS: b is the most up-to-date standby (c has the better priority but is behind). */
const POSITIONS: Record<string, number> = { a: 1_000, b: 990, c: 950 };
const PRIORITIES: Record<string, number> = { a: 0, b: 2, c: 1 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Beat {
  readonly sentAt: number;
  readonly role: string;
  readonly epoch: number;
}

/** heartbeater heartbeats one instance with its position every HEARTBEAT_EVERY_MS through the followers in turn, recording acknowledged answers. */
function heartbeater(clientOf: (id: string) => RaftmeshClient, via: () => string[], id: string) {
  const acks: Beat[] = [];
  let stopped = false;
  let turn = 0;
  const loop = (async () => {
    while (!stopped) {
      const round = Date.now();
      const nodes = via();
      const node = nodes[turn++ % nodes.length] as string;
      const sentAt = Date.now();
      try {
        const res = await clientOf(node).heartbeat("db", id, "", "", { deadlineMs: 800, replicationPosition: POSITIONS[id] });
        if (!stopped) acks.push({ sentAt, role: res.role ?? "", epoch: res.epoch ?? 0 });
      } catch {
        // Sent again in the next round.
      }
      await sleep(Math.max(0, HEARTBEAT_EVERY_MS - (Date.now() - round)));
    }
  })();
  return {
    acks,
    async stop(): Promise<void> {
      stopped = true;
      await loop;
    },
  };
}

describe("master-slave failover on a 3-node cluster", () => {
  let c: ProcessCluster;
  let endpoints: string;
  const masters: { at: number; m: MasterChangeMsg; index: number }[] = [];
  let cancelWatch: (() => void) | undefined;

  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    await c.waitForLeader();
    endpoints = NODES.map((id) => c.api(id)).join(",");
  }, 30_000);

  afterAll(async () => {
    cancelWatch?.();
    await c?.cleanup();
  });

  it("failover: the master's heartbeats stop → the most up-to-date standby is promoted with a larger epoch about one TTL later; switchover with --to; watch sees it all", async () => {
    const leader = await c.waitForLeader();
    const followers = () => NODES.filter((n) => n !== leader);
    const watcher = c.client(followers()[0] as string);
    cancelWatch = watcher.watch(
      { fromIndex: 0, service: "db", kinds: ["master"] },
      {
        onMessage: (msg) => {
          for (const e of msg.events as EventMsg[]) if (e.master) masters.push({ at: Date.now(), m: e.master, index: e.index });
        },
        onEnd: () => undefined,
      },
    ).cancel;

    const cl = c.client(leader);
    await cl.putService("db", { mode: "master-slave" });
    for (const id of ["a", "b", "c"]) {
      await cl.register({ id, service: "db", address: "127.0.0.1", port: 5432, ttlMs: TTL_MS, priority: PRIORITIES[id] });
    }
    const beats = Object.fromEntries(["a", "b", "c"].map((id) => [id, heartbeater((n) => c.client(n), followers, id)]));
    // a passed first: it is master; the answers say so, with its epoch.
    const first = await waitFor("a's heartbeat answered as master", () => beats.a!.acks.find((b) => b.role === "master"));
    expect(first.epoch).toBeGreaterThan(0);
    await waitFor("standbys answered as standby", () => beats.b!.acks.some((b) => b.role === "standby") && beats.c!.acks.some((b) => b.role === "standby"));
    // Positions reach the leader's lease driver with these heartbeats; give every standby a few.
    await sleep(3 * HEARTBEAT_EVERY_MS);

    await beats.a!.stop();
    const lastAck = beats.a!.acks.at(-1) as Beat;
    const promoted = await waitFor(
      "b promoted",
      async () => {
        const s = await watcher.getService("db", { stale: true });
        return s.service.master?.instanceId === "b" ? { at: Date.now(), epoch: s.service.master.epoch } : undefined;
      },
      10_000,
    );
    const elapsed = promoted.at - lastAck.sentAt;
    console.log(`failover: promoted b at epoch ${promoted.epoch} (from ${first.epoch}) ${elapsed} ms after a's last acknowledged heartbeat was sent (TTL ${TTL_MS} ms)`);
    expect(promoted.epoch).toBeGreaterThan(first.epoch);
    expect(elapsed).toBeGreaterThanOrEqual(TTL_MS);
    expect(elapsed).toBeLessThanOrEqual(TTL_MS + PROMOTION_SLACK_MS);
    await waitFor("b's heartbeat answered as master at the new epoch", () => beats.b!.acks.some((b) => b.role === "master" && b.epoch === promoted.epoch));
    const got = await watcher.getService("db");
    expect(Object.fromEntries(got.instances.map((i) => [i.id, [i.role, i.health]]))).toEqual({ a: ["standby", "critical"], b: ["master", "passing"], c: ["standby", "passing"] });
    expect(got.instances.find((i) => i.id === "b")?.replicationPosition).toBe(POSITIONS.b);

    // Switchover to c (behind, but no lag rule); a (critical) is refused with the reason.
    const sw = await runCli(["failover", "db", "--to", "c", "--endpoints", endpoints]);
    expect(sw.stderr).toBe("");
    expect(sw.code).toBe(0);
    const m = /master c at epoch (\d+)/.exec(sw.stdout);
    expect(m).not.toBeNull();
    const swEpoch = Number(m?.[1]);
    expect(swEpoch).toBeGreaterThan(promoted.epoch);
    const refused = await runCli(["failover", "db", "--to", "a", "--endpoints", endpoints]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/instance a is critical, not passing/);
    expect((await watcher.getService("db")).service.master).toEqual({ instanceId: "c", epoch: swEpoch });

    // The watch saw each change once, in order, with growing epochs.
    await waitFor("watch saw the switchover", () => masters.some((x) => x.m.reason === "switchover"));
    expect(masters.map((x) => [x.m.master, x.m.reason, x.m.previous])).toEqual([
      ["a", "promoted", ""],
      ["b", "promoted", "a"],
      ["c", "switchover", "b"],
    ]);
    expect(masters.map((x) => x.m.epoch)).toEqual([first.epoch, promoted.epoch, swEpoch]);
    for (const x of masters) expect(x.index).toBe(x.m.epoch);
    for (const b of Object.values(beats)) await b.stop();
  }, 20_000);
});
