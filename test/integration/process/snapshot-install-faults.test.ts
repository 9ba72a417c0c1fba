/**
 * A learner joining through a snapshot full of instances (format 5: instance rows in binary, with
 * repeated strings by reference) holds exactly the leader's registry, on real processes: the
 * instances carry tags, metadata with non-ASCII values, zones, weights, priorities, warning health
 * and notes, maintenance and deregistrations, and registrations go on while it installs.
 *
 * And faults while a learner joins that way.
 * A node acknowledges a snapshot only once it is stored and installed, and a crash must never leave
 * it with a state it cannot restart from or one that mixes two snapshots. Three schedules aim at the
 * windows where that could break (test/fixtures/snapshot-faults.mjs places each fault exactly):
 *
 * - the learner SIGKILLed halfway through writing the leader's snapshot to its temporary file;
 * - the learner SIGKILLed after the file is renamed into place but before the log store records it;
 * - the leader SIGKILLed while its snapshot is in transfer (the learner stopped on the call's
 *   headers, so the transfer is cut for certain), after which a new leader sends its own.
 *
 * After each, the learner (restarted where it died) must install a snapshot and then hold the
 * leader's registry field for field, while registrations go on throughout.
 *
 * And a rolling upgrade's case: a learner that does not say which snapshot format it reads, as the
 * builds before format 5 did not, must be sent format 4, which they read.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RaftmeshClient } from "../../../src/client/index.js";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

const FAULTS_PRELOAD = fileURLToPath(new URL("../../fixtures/snapshot-faults.mjs", import.meta.url));
const OLDER_BUILD_PRELOAD = fileURLToPath(new URL("../../fixtures/older-build-claim.mjs", import.meta.url));
/** INSTANCES registered before any learner joins; SNAPSHOT_ENTRIES makes the leader snapshot often. */
const INSTANCES = 600;
/** DEREGISTER_EVERY: every this-many-th of the first instances is deregistered, MAINTENANCE_EVERY in maintenance. */
const DEREGISTER_EVERY = 50;
const MAINTENANCE_EVERY = 37;
const SNAPSHOT_ENTRIES = 200;
/** CONCURRENCY of the registrations. */
const CONCURRENCY = 16;
/** SERVICES the instances are dealt over. */
const SERVICES = 4;
/** LATE_MAX bounds the registrations made while one learner joins. */
const LATE_MAX = 1_000;
const TTL_MS = 3_600_000;
/** INSTALL_WAIT_MS bounds each wait for a learner's install (three agents share two cores here). */
const INSTALL_WAIT_MS = 40_000;

type Fault = "kill-mid-write" | "kill-after-rename" | "stop-on-receive";

describe("snapshot install faults", () => {
  let c: ProcessCluster;
  let client: RaftmeshClient;
  let registered = 0;

  let deregistered = 0;

  const register = (i: number) =>
    client.register(
      {
        id: `i-${i}`,
        service: `svc-${i % SERVICES}`,
        address: `10.2.${(i >> 8) & 255}.${i & 255}`,
        port: 9_000 + (i % 7),
        tags: ["shared", `t-${i % 5}`, `u-${i}`],
        metadata: { build: `b${i}`, emoji: "🚀", owner: i % 2 === 0 ? "équipe-zürich" : "core" },
        weight: 1 + (i % 10),
        priority: i % 3,
        zone: i % 2 === 0 ? "eu-1a" : "eu-1b",
        ttlMs: TTL_MS,
      },
      i % 9 === 0 ? { health: "warning", note: "démarrage" } : {},
    );

  /** whileRegistering runs body while registrations go on, and returns how many were made meanwhile. */
  async function whileRegistering(body: () => Promise<void>): Promise<number> {
    let stop = false;
    let late = 0;
    const loop = (async () => {
      while (!stop && late < LATE_MAX) {
        await register(registered++);
        late++;
      }
    })();
    try {
      await body();
    } finally {
      stop = true;
      await loop;
    }
    return late;
  }

  const faultEnv = (fault: Fault) => ({ NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${FAULTS_PRELOAD}`, RAFTMESH_TEST_SNAPSHOT_FAULT: fault });

  /** startLearner starts id with a fault armed and adds it as a learner once it waits to be added. */
  async function startLearner(id: string, fault: Fault): Promise<void> {
    await c.allocate(id);
    c.start(id, faultEnv(fault));
    await waitFor(`${id} to wait in join mode`, async () => (await c.logOf(id)).includes("waiting for the leader to add this node"));
    await client.addMember({ id, peer: c.peer(id), api: c.api(id), learner: true });
  }

  /** installs lists the "installed snapshot from leader" lines of id's log. */
  const installs = async (id: string) => (await c.logOf(id)).split("\n").filter((l) => l.includes("installed snapshot from leader"));

  /** expectSameRegistry waits until id has applied the leader's commit, then compares every service and instance. */
  async function expectSameRegistry(id: string, voters: readonly string[]): Promise<void> {
    const leader = await c.waitForLeader(20_000, voters);
    const { commit } = await c.client(leader).status();
    await waitFor(`${id} to apply index ${commit}`, async () => (await c.client(id).status({ deadlineMs: 1_000 })).applied >= commit, INSTALL_WAIT_MS);
    const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const want = await c.client(leader).listServices({ stale: true });
    expect(want.services.map((s) => s.name).sort()).toEqual(Array.from({ length: SERVICES }, (_, k) => `svc-${k}`));
    expect((await c.client(id).listServices({ stale: true })).services).toEqual(want.services);
    let instances = 0;
    for (const { name } of want.services) {
      const a = await c.client(leader).getService(name, { stale: true });
      const b = await c.client(id).getService(name, { stale: true });
      expect([...b.instances].sort(byId), `instances of ${name} on ${id}`).toEqual([...a.instances].sort(byId));
      instances += a.instances.length;
    }
    expect(instances, "every registration made, less the deregistered, is on the learner").toBe(registered - deregistered);
    // Spot checks that the comparison compared values, not two empty lists.
    const svc1 = (await c.client(id).getService("svc-1", { stale: true })).instances;
    expect(svc1.find((i) => i.id === "i-1")).toMatchObject({ tags: ["shared", "t-1", "u-1"], metadata: { build: "b1", emoji: "🚀", owner: "core" }, zone: "eu-1b", weight: 2, priority: 1, maintenance: true, maintenanceReason: "noyau à jour" });
    expect(svc1.find((i) => i.id === "i-9")).toMatchObject({ health: "warning", note: "démarrage" });
  }

  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3, env: { RAFTMESH_SNAPSHOT_ENTRIES: String(SNAPSHOT_ENTRIES) } });
    c.startAll();
    await c.waitForLeader();
    client = new RaftmeshClient([c.api("n1"), c.api("n2"), c.api("n3")], { deadlineMs: 5_000 });
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (registered < INSTANCES) await register(registered++);
      }),
    );
    for (let i = 0; i < INSTANCES; i += DEREGISTER_EVERY) {
      await client.deregister(`svc-${i % SERVICES}`, `i-${i}`);
      deregistered++;
    }
    for (let i = 1; i < INSTANCES; i += MAINTENANCE_EVERY) await client.setMaintenance(`svc-${i % SERVICES}`, `i-${i}`, true, "noyau à jour");
  }, 120_000);
  afterAll(async () => {
    client?.close();
    await c?.cleanup();
  });

  it("a learner installing the snapshot while registrations go on holds the leader's registry field for field", async () => {
    const late = await whileRegistering(async () => {
      await c.allocate("n8");
      c.start("n8");
      await waitFor("n8 to wait in join mode", async () => (await c.logOf("n8")).includes("waiting for the leader to add this node"));
      await client.addMember({ id: "n8", peer: c.peer("n8"), api: c.api("n8"), learner: true });
      await waitFor("n8 to install a snapshot", async () => (await installs("n8")).length > 0, INSTALL_WAIT_MS);
    });
    expect(late, "registrations made while the learner joined").toBeGreaterThan(0);
    const [installed] = await installs("n8");
    expect((JSON.parse(installed as string) as { index: number; format: number }).index, "the snapshot holds the instances").toBeGreaterThan(INSTANCES);
    expect((JSON.parse(installed as string) as { format: number }).format, "every member reads format 5").toBe(5);
    await expectSameRegistry("n8", ["n1", "n2", "n3"]);
  }, 180_000);

  it("a learner SIGKILLed halfway through writing the leader's snapshot restarts, drops the torn file, fetches the snapshot again and holds the leader's registry", async () => {
    const late = await whileRegistering(async () => {
      await startLearner("n4", "kill-mid-write");
      expect(await c.exited("n4", INSTALL_WAIT_MS), "n4 was killed by its fault").toBeNull();
    });
    expect(late, "registrations made while n4 joined").toBeGreaterThan(0);
    const snapshots = join(c.dataDir, "n4", "snapshots");
    expect(readdirSync(snapshots).filter((f) => f.endsWith(".tmp")), "the torn file n4 left").toHaveLength(1);
    expect(await installs("n4"), "n4 died before installing").toHaveLength(0);

    await whileRegistering(async () => {
      c.start("n4");
      await waitFor("n4 to install a snapshot", async () => (await installs("n4")).length > 0, INSTALL_WAIT_MS);
    });
    expect(await c.logOf("n4")).toContain("removing unfinished snapshot file left by a crash");
    expect(readdirSync(snapshots).filter((f) => f.endsWith(".tmp"))).toHaveLength(0);
    await expectSameRegistry("n4", ["n1", "n2", "n3"]);
  }, 180_000);

  it("a learner SIGKILLed after the snapshot file is in place but before its store records it restarts without it, fetches the snapshot again and holds the leader's registry", async () => {
    await whileRegistering(async () => {
      await startLearner("n5", "kill-after-rename");
      expect(await c.exited("n5", INSTALL_WAIT_MS), "n5 was killed by its fault").toBeNull();
    });
    const snapshots = join(c.dataDir, "n5", "snapshots");
    const orphan = readdirSync(snapshots).filter((f) => f.endsWith(".snap"));
    expect(orphan, "the file n5 renamed into place before it died").toHaveLength(1);
    expect(await installs("n5")).toHaveLength(0);

    await whileRegistering(async () => {
      c.start("n5");
      await waitFor("n5 to install a snapshot", async () => (await installs("n5")).length > 0, INSTALL_WAIT_MS);
    });
    // The file was never recorded as current: the restart removes it rather than trust it.
    expect(await c.logOf("n5")).toContain("removing snapshot file that never became current");
    await expectSameRegistry("n5", ["n1", "n2", "n3"]);
  }, 180_000);

  it("a learner that does not say which snapshot format it reads (an older build) is sent format 4, not the leader's format-5 snapshot, and holds the leader's registry", async () => {
    const leader = await c.waitForLeader(20_000, ["n1", "n2", "n3"]);
    const formatOf = (line: string) => (JSON.parse(line) as { format?: number }).format;
    // The founders all read format 5: the leader's snapshots are in it, heartbeats forwarded by the
    // followers on the peer port (calls that do not carry the claim) notwithstanding.
    const followers = ["n1", "n2", "n3"].filter((id) => id !== leader);
    const taken = async () => (await c.logOf(leader)).split("\n").filter((l) => l.includes('"took snapshot and compacted the log"'));
    const takenBefore = (await taken()).length;
    await waitFor("the leader to snapshot in format 5 while followers forward heartbeats", async () => {
      // Heartbeats first: every snapshot counted is taken after some were forwarded.
      for (const f of followers) await c.client(f).heartbeat(`svc-${registered % SERVICES}`, `i-${registered - SERVICES}`);
      await Promise.all(Array.from({ length: CONCURRENCY }, () => register(registered++)));
      const since = (await taken()).slice(takenBefore);
      return since.length > 0 && since.every((l) => ((JSON.parse(l) as { membersReadMax?: number }).membersReadMax ?? 5) >= 5);
    }, INSTALL_WAIT_MS);
    await c.allocate("n7");
    c.start("n7", { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${OLDER_BUILD_PRELOAD}` });
    await waitFor("n7 to wait in join mode", async () => (await c.logOf("n7")).includes("waiting for the leader to add this node"));
    await whileRegistering(async () => {
      await client.addMember({ id: "n7", peer: c.peer("n7"), api: c.api("n7"), learner: true });
      await waitFor("n7 to install a snapshot", async () => (await installs("n7")).length > 0, INSTALL_WAIT_MS);
    });
    const installed = await installs("n7");
    expect(installed.map(formatOf), "formats n7 installed").toEqual(installed.map(() => 4));
    await expectSameRegistry("n7", ["n1", "n2", "n3"]);
  }, 180_000);

  it("the leader SIGKILLed while its snapshot is in transfer: the learner drops the cut transfer, installs the new leader's snapshot and holds its registry", async () => {
    const oldLeader = await c.waitForLeader(20_000, ["n1", "n2", "n3"]);
    await c.allocate("n6");
    c.start("n6", faultEnv("stop-on-receive"));
    await waitFor("n6 to wait in join mode", async () => (await c.logOf("n6")).includes("waiting for the leader to add this node"));
    const pid = c.pid("n6") as number;
    await client.addMember({ id: "n6", peer: c.peer("n6"), api: c.api("n6"), learner: true });
    // n6 stops itself when the snapshot call's headers arrive: none of its data has been read.
    await waitFor("n6 to stop on the snapshot call", () => processState(pid) === "T", INSTALL_WAIT_MS);
    await c.kill(oldLeader);
    process.kill(pid, "SIGCONT");
    const voters = ["n1", "n2", "n3"].filter((id) => id !== oldLeader);
    await whileRegistering(async () => {
      await waitFor("n6 to install a snapshot", async () => (await installs("n6")).length > 0, INSTALL_WAIT_MS);
    });
    const newLeader = await c.waitForLeader(20_000, voters);
    const received = (await c.logOf("n6")).split("\n").filter((l) => l.includes('"snapshot received"'));
    expect(received.length, "snapshots n6 received whole").toBeGreaterThan(0);
    // The first whole snapshot n6 got came from the new leader: the old one's was cut by its death.
    expect(JSON.parse(received[0] as string).peer, "sender of the first whole snapshot").not.toBe(oldLeader);
    await expectSameRegistry("n6", voters);
    expect(newLeader).not.toBe(oldLeader);

    // The old leader comes back as a follower and holds the same registry too.
    c.start(oldLeader);
    await expectSameRegistry(oldLeader, voters);
  }, 180_000);
});

/** processState is the state letter of /proc/<pid>/stat ("T" when stopped by a signal). */
function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
}
