/**
 * A learner that joins through a snapshot holds exactly the leader's registry, on real processes:
 * the snapshot's instances (format 5 writes them in binary, with repeated strings by reference)
 * carry tags, metadata with non-ASCII values, zones, weights, priorities, health and notes,
 * maintenance and deregistrations, and registrations go on while the learner installs it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RaftmeshClient } from "../../../src/client/index.js";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

/** INSTANCES registered before the learner joins; SNAPSHOT_ENTRIES makes the leader snapshot several times meanwhile. */
const INSTANCES = 600;
const SNAPSHOT_ENTRIES = 200;
/** CONCURRENCY of the registrations. */
const CONCURRENCY = 16;
/** SERVICES the instances are dealt over. */
const SERVICES = 4;
/** LATE_MAX bounds the registrations made while the learner installs the snapshot. */
const LATE_MAX = 2_000;
const TTL_MS = 3_600_000;

describe("snapshot install with instances", () => {
  let c: ProcessCluster;
  let client: RaftmeshClient;
  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3, env: { RAFTMESH_SNAPSHOT_ENTRIES: String(SNAPSHOT_ENTRIES) } });
    c.startAll();
    await c.waitForLeader();
    client = new RaftmeshClient([c.api("n1"), c.api("n2"), c.api("n3")], { deadlineMs: 5_000 });
  });
  afterAll(async () => {
    client?.close();
    await c?.cleanup();
  });

  it("a learner installing a snapshot of 600 instances, while registrations go on, holds the leader's registry field for field", async () => {
    const register = (i: number) =>
      client.register(
        {
          id: `i-${i}`,
          service: `svc-${i % SERVICES}`,
          address: `10.1.${i >> 8}.${i & 255}`,
          port: 8_000 + (i % 7),
          tags: ["shared", `t-${i % 5}`, `u-${i}`],
          metadata: { build: `b${i}`, emoji: "🚀", team: i % 2 === 0 ? "paiements-zürich" : "core" },
          weight: 1 + (i % 10),
          priority: i % 3,
          zone: i % 2 === 0 ? "eu-1a" : "eu-1b",
          ttlMs: TTL_MS,
        },
        i % 9 === 0 ? { health: "warning", note: "démarrage" } : {},
      );
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < INSTANCES; i = next++) await register(i);
      }),
    );
    for (let i = 0; i < INSTANCES; i += 50) await client.deregister(`svc-${i % SERVICES}`, `i-${i}`);
    for (let i = 1; i < INSTANCES; i += 37) await client.setMaintenance(`svc-${i % SERVICES}`, `i-${i}`, true, "noyau à jour");

    // Registrations go on while the learner joins and installs the snapshot.
    let stopLate = false;
    let late = 0;
    const lateLoop = (async () => {
      while (!stopLate && late < LATE_MAX) await register(INSTANCES + late++);
    })();
    try {
      await c.allocate("n4");
      c.start("n4");
      await waitFor("n4 to wait in join mode", async () => (await c.logOf("n4")).includes("waiting for the leader to add this node"));
      await client.addMember({ id: "n4", peer: c.peer("n4"), api: c.api("n4"), learner: true });
      await waitFor("n4 to install a snapshot", async () => (await c.logOf("n4")).includes("installed snapshot from leader"), 30_000);
    } finally {
      stopLate = true;
      await lateLoop;
    }
    expect(late, "registrations made while the learner joined").toBeGreaterThan(0);

    const installed = (await c.logOf("n4")).split("\n").find((l) => l.includes("installed snapshot from leader"));
    expect(JSON.parse(installed as string).index, "the snapshot holds the instances").toBeGreaterThan(INSTANCES);
    const leader = await c.waitForLeader(20_000, ["n1", "n2", "n3"]);
    const { commit } = await c.client(leader).status();
    await waitFor(`n4 to apply index ${commit}`, async () => (await c.client("n4").status({ deadlineMs: 1_000 })).applied >= commit, 30_000);

    const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const leaderServices = await c.client(leader).listServices({ stale: true });
    expect(leaderServices.services.map((s) => s.name).sort()).toEqual(Array.from({ length: SERVICES }, (_, k) => `svc-${k}`));
    expect((await c.client("n4").listServices({ stale: true })).services).toEqual(leaderServices.services);
    let instances = 0;
    for (const { name } of leaderServices.services) {
      const want = await c.client(leader).getService(name, { stale: true });
      const got = await c.client("n4").getService(name, { stale: true });
      expect([...got.instances].sort(byId), `instances of ${name} on n4`).toEqual([...want.instances].sort(byId));
      instances += want.instances.length;
    }
    expect(instances).toBe(INSTANCES - INSTANCES / 50 + late);
    // Spot checks that the comparison compared values, not two empty lists.
    const one = (await c.client("n4").getService("svc-1", { stale: true })).instances.find((i) => i.id === "i-1");
    expect(one).toMatchObject({ tags: ["shared", "t-1", "u-1"], metadata: { build: "b1", emoji: "🚀", team: "core" }, zone: "eu-1b", maintenance: true, maintenanceReason: "noyau à jour" });
    const warned = (await c.client("n4").getService("svc-1", { stale: true })).instances.find((i) => i.id === "i-9");
    expect(warned).toMatchObject({ health: "warning", note: "démarrage" });
  }, 120_000);
});
