/**
 * Membership changes on real processes: a node joins as a learner through the CLI, catches up,
 * is promoted, and a founder (the leader) is removed while a writer keeps writing; a wiped node
 * comes back through remove + add and catches up from a snapshot; and what a wiped founder does
 * when an operator restarts it without that procedure.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RaftmeshClient } from "../../../src/client/index.js";
import { type CliResult, ProcessCluster, runCli, waitFor } from "../harness/process-cluster.js";
import { rejection } from "../harness/rejection.js";

/** WRITE_GAP_MS_MAX bounds the longest stretch without an acknowledged write during a change (election timeouts are 300-600 ms). */
const WRITE_GAP_MS_MAX = 8_000;

/** cli runs a client command against the given endpoints and fails the test with its output when the exit status differs. */
async function cli(args: string[], endpoints: string, expectedCode = 0): Promise<CliResult> {
  const res = await runCli([...args, "--endpoints", endpoints]);
  if (res.code !== expectedCode) {
    throw new Error(`raftmesh ${args.join(" ")} exited ${res.code}, expected ${expectedCode}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`);
  }
  return res;
}


/**
 * Writer writes unique keys one after another until stopped, remembering every acknowledged
 * write and the longest time between two acknowledgements. A failed write is indeterminate: it
 * is neither retried nor expected.
 */
class Writer {
  readonly acked = new Map<string, string>();
  failures = 0;
  gapMsMax = 0;
  private stopped = false;
  private done: Promise<void> = Promise.resolve();

  constructor(private readonly client: RaftmeshClient) {}

  start(): void {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    let last = Date.now();
    for (let i = 0; !this.stopped; i++) {
      const key = `w-${i}`;
      const value = `value-${i}`;
      try {
        await this.client.put(key, value, { deadlineMs: 3_000 });
        this.acked.set(key, value);
        const now = Date.now();
        this.gapMsMax = Math.max(this.gapMsMax, now - last);
        last = now;
      } catch {
        this.failures++;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    this.gapMsMax = Math.max(this.gapMsMax, Date.now() - last);
  }

  /** waitForMore resolves once n more writes were acknowledged. */
  async waitForMore(n: number, timeoutMs = 15_000): Promise<void> {
    const target = this.acked.size + n;
    await waitFor(`${n} more acknowledged writes`, () => this.acked.size >= target, timeoutMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/**
 * expectConverged waits until every node in ids reports the same leader and has applied that
 * leader's commit index, then checks each holds every expected key with its value (stale reads,
 * i.e. each node's own state machine).
 */
async function expectConverged(c: ProcessCluster, ids: readonly string[], expected: ReadonlyMap<string, string>): Promise<void> {
  const leader = await c.waitForLeader(20_000, ids);
  const { commit } = await c.client(leader).status();
  await waitFor(`${ids.join(", ")} to apply index ${commit}`, async () => {
    const views = await Promise.all(ids.map((id) => c.client(id).status({ deadlineMs: 1_000 })));
    return views.every((v) => v.applied >= commit && v.leader === leader);
  });
  for (const id of ids) {
    const missing: string[] = [];
    for (const [key, value] of expected) {
      const got = await c.client(id).get(key, { stale: true });
      if (!got.found || got.value.toString() !== value) missing.push(key);
    }
    expect(missing, `keys missing or wrong on ${id}`).toEqual([]);
  }
}

describe("membership through the CLI", () => {
  let c: ProcessCluster;
  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    await c.waitForLeader();
  });
  afterAll(async () => {
    await c?.cleanup();
  });

  it("membership: promote of a non-member is NOT_FOUND and adding an existing member is FAILED_PRECONDITION", async () => {
    const leader = await c.waitForLeader();
    const follower = ["n1", "n2", "n3"].find((id) => id !== leader) as string;
    const promote = await rejection(c.client(follower).promoteMember("n9"));
    expect(promote.code).toBe(GrpcStatus.NOT_FOUND);
    expect(promote.details).toContain("n9");
    const add = await rejection(c.client(follower).addMember({ id: "n2", peer: c.peer("n2"), api: c.api("n2"), learner: true }));
    expect(add.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(add.details).toContain("already a member");
    // The CLI reports the same answers with exit status 1 and the code in its message.
    const promoteCli = await cli(["members", "promote", "n9"], c.api(follower), 1);
    expect(promoteCli.stderr).toContain("NOT_FOUND");
    const addCli = await cli(["members", "add", "n3", "--peer", c.peer("n3")], c.api(follower), 1);
    expect(addCli.stderr).toContain("FAILED_PRECONDITION");
    // Nothing changed.
    const { members } = await c.client(leader).members();
    expect(members.map((m) => [m.id, m.learner])).toEqual([
      ["n1", false],
      ["n2", false],
      ["n3", false],
    ]);
  });

  it("membership: transfer-leader n2 moves leadership and status --json shows it", async () => {
    let leader = await c.waitForLeader();
    if (leader === "n2") {
      // Start from another leader, so that the transfer under test really moves leadership.
      await c.client("n1").transferLeader("n1", { deadlineMs: 10_000 });
      leader = await c.waitForLeader();
      expect(leader).toBe("n1");
    }
    const other = ["n1", "n3"].find((id) => id !== leader) as string;
    const res = await cli(["transfer-leader", "n2"], c.api(other));
    expect(res.stdout).toMatch(/^leader: n2 \(term \d+\)/);
    expect(await c.waitForLeader()).toBe("n2");
    const json = await cli(["status", "--json"], c.api("n3"));
    const view = JSON.parse(json.stdout) as { leader: string; members: { id: string; status?: { role: string; leader: string } }[] };
    expect(view.leader).toBe("n2");
    expect(view.members.map((m) => [m.id, m.status?.role, m.status?.leader])).toEqual([
      ["n1", "follower", "n2"],
      ["n2", "leader", "n2"],
      ["n3", "follower", "n2"],
    ]);
  });

  it("membership: n4 joins as a learner through a follower, catches up, is promoted, and the leader is removed while writes continue", async () => {
    const before = new Map<string, string>();
    for (let i = 0; i < 30; i++) before.set(`before-${i}`, `old-${i}`);
    await Promise.all([...before].map(([k, v]) => c.client("n1").put(k, v)));

    const writer = new Writer(new RaftmeshClient([c.api("n1"), c.api("n2"), c.api("n3")], { deadlineMs: 3_000 }));
    writer.start();
    try {
      await writer.waitForMore(10);
      const leader = await c.waitForLeader();
      const follower = ["n1", "n2", "n3"].find((id) => id !== leader) as string;

      // A node with an empty directory and bootstrap off waits to be added.
      await c.allocate("n4");
      c.start("n4");
      await waitFor("n4 to wait in join mode", async () => (await c.logOf("n4")).includes("waiting for the leader to add this node"));
      const add = await cli(["members", "add", "n4", "--peer", c.peer("n4"), "--api", c.api("n4")], c.api(follower));
      expect(add.stdout).toMatch(/^n4\s+learner\s+127\.0\.0\.1:\d+\s+127\.0\.0\.1:\d+/m);
      // It catches up: a stale read on n4 (its own state machine) sees data written before it joined.
      await waitFor("n4 to catch up", async () => {
        const got = await c.client("n4").get("before-29", { stale: true });
        return got.found && got.value.toString() === "old-29";
      });
      expect((await c.client("n4").status()).role).toBe("learner");
      await writer.waitForMore(10);

      const promote = await cli(["members", "promote", "n4"], c.api(follower));
      expect(promote.stdout).toMatch(/^n4\s+voter\s/m);
      await waitFor("n4 to see itself as a voter", async () => (await c.client("n4").status()).voters.includes("n4"));
      await writer.waitForMore(10);

      // Remove the leader itself, through a follower: it leads until its removal commits, then
      // the remaining voters elect a leader among themselves.
      const removed = await c.waitForLeader();
      const via = ["n1", "n2", "n3"].find((id) => id !== removed) as string;
      const remove = await cli(["members", "remove", removed], c.api(via));
      expect(remove.stdout).not.toMatch(new RegExp(`^${removed}\\s`, "m"));
      const survivors = ["n1", "n2", "n3", "n4"].filter((id) => id !== removed);
      const next = await c.waitForLeader(20_000, survivors);
      expect(next).not.toBe(removed);
      await writer.waitForMore(20);
      const { members } = await c.client(next).members();
      expect(members.map((m) => m.id).sort()).toEqual(survivors);
      expect(members.every((m) => !m.learner)).toBe(true);
      // The removed node no longer leads anyone: it is not a voter in its own view.
      const gone = await c.client(removed).status();
      expect(gone.role).not.toBe("leader");
      expect(gone.voters).not.toContain(removed);

      await writer.stop();
      expect(writer.gapMsMax, `longest time without an acknowledged write (failures: ${writer.failures})`).toBeLessThan(WRITE_GAP_MS_MAX);
      expect(await c.stop(removed)).toBe(0);
      await expectConverged(c, survivors, new Map([...before, ...writer.acked]));
    } finally {
      await writer.stop();
    }
  });
});


/** firstErrorLine is the first line of a node's log (since offset) that names an error, for failure messages. */
async function firstErrorLine(c: ProcessCluster, id: string, offset: number): Promise<string> {
  const log = (await c.logOf(id)).slice(offset);
  return log.split("\n").find((l) => /^\w*Error: |"level":(50|60)/.test(l)) ?? "(no error in its log)";
}

/** waitForCatchUp waits until node id's own state machine holds key, and fails at once if the process exits first. */
async function waitForCatchUp(c: ProcessCluster, id: string, key: string, logOffset: number): Promise<void> {
  const outcome = await waitFor(
    `${id} to catch up (hold ${key})`,
    async () => {
      if (!c.isRunning(id)) return "exited";
      const got = await c.client(id).get(key, { stale: true });
      return got.found ? "caught up" : undefined;
    },
    20_000,
  );
  if (outcome === "exited") throw new Error(`${id} exited before catching up: ${await firstErrorLine(c, id, logOffset)}`);
}

describe("wiped node", () => {
  let c: ProcessCluster;
  const written = new Map<string, string>();
  const founders = ["n1", "n2", "n3"];
  beforeAll(async () => {
    // A snapshot every 100 entries, so that after > 300 writes the leader's log no longer reaches
    // back to index 1 and a node with an empty log can only catch up through a snapshot. Members
    // snapshot at staggered indexes (up to two thirds of an interval past each multiple), so 400
    // writes put every member's latest snapshot at 300 or more (with 350, a leader whose phase is
    // 66 had its latest at 274: a CI failure).
    c = await ProcessCluster.create({ size: 3, env: { RAFTMESH_SNAPSHOT_ENTRIES: "100" } });
    c.startAll();
    await c.waitForLeader();
    for (let batch = 0; batch < 40; batch++) {
      await Promise.all(
        Array.from({ length: 10 }, (_, j) => {
          const i = batch * 10 + j;
          written.set(`k-${i}`, `v-${i}`);
          return c.client("n1").put(`k-${i}`, `v-${i}`);
        }),
      );
    }
    const leader = await c.waitForLeader();
    expect((await c.client(leader).status()).snapshotIndex).toBeGreaterThanOrEqual(300);
  });
  afterAll(async () => {
    await c?.cleanup();
  });

  /**
   * rejoin runs the documented procedure for a node whose directory was lost, up to the point
   * where it has caught up as a learner; it returns the log offset where the new run began.
   *
   * Why remove + add: a Raft voter's vote and log are promises to the rest of the cluster. A node
   * that lost its directory forgot whom it voted for in its last term and which entries it
   * acknowledged; back as its old self it could vote twice in one term, or help a candidate that
   * lacks committed entries win (any log is "as up to date" as its empty one), and a committed
   * entry could be lost. Removing it makes the cluster stop counting it; adding it back as a
   * learner gives it a fresh progress (match 0) and no vote until it holds the log and is promoted.
   */
  async function rejoin(wiped: string, via: string, leader: string): Promise<number> {
    const { members } = await c.client(via).members();
    if (members.some((m) => m.id === wiped)) await cli(["members", "remove", wiped], c.api(via));
    await c.client(leader).put(`after-remove-${wiped}`, "yes");
    written.set(`after-remove-${wiped}`, "yes");
    const logOffset = (await c.logOf(wiped)).length;
    c.start(wiped, { RAFTMESH_BOOTSTRAP: "false" });
    await waitFor(`${wiped} to wait in join mode`, async () => (await c.logOf(wiped)).slice(logOffset).includes("waiting for the leader"));
    await cli(["members", "add", wiped, "--peer", c.peer(wiped), "--api", c.api(wiped)], c.api(via));
    await waitForCatchUp(c, wiped, `after-remove-${wiped}`, logOffset);
    return logOffset;
  }

  /** expectSnapshotCatchUp checks the rejoined learner got a snapshot and holds the old data, then promotes it. */
  async function expectSnapshotCatchUpAndPromote(wiped: string, via: string, logOffset: number): Promise<void> {
    expect((await c.logOf(wiped)).slice(logOffset)).toContain("installed snapshot from leader");
    for (const key of ["k-0", "k-150", "k-349"]) {
      const got = await c.client(wiped).get(key, { stale: true });
      expect(got.value.toString()).toBe(written.get(key));
    }
    expect((await c.client(wiped).status()).role).toBe("learner");
    await cli(["members", "promote", wiped], c.api(via));
    await waitFor(`${wiped} to be a voter`, async () => (await c.client(wiped).status()).voters.includes(wiped));
    await c.client(wiped).put(`after-promote-${wiped}`, "yes");
    written.set(`after-promote-${wiped}`, "yes");
    await expectConverged(c, founders, written);
  }

  // Regression: stale heartbeats queued for the old incarnation (commit = its old match) must not
  // reach the empty node. Removal retires the peer connection on every node, dropping the queue.
  it("wiped node: the documented remove + add procedure on the same address catches up through a snapshot", async () => {
    const leader = await c.waitForLeader();
    const wiped = founders.find((id) => id !== leader) as string;
    const via = founders.find((id) => id !== leader && id !== wiped) as string;
    expect(await c.stop(wiped)).toBe(0);
    await c.wipe(wiped);
    try {
      const logOffset = await rejoin(wiped, via, leader);
      await expectSnapshotCatchUpAndPromote(wiped, via, logOffset);
    } finally {
      // Leave the cluster as the next test expects it: the node removed, stopped and wiped.
      await c.kill(wiped);
      const { members } = await c.client(via).members();
      if (members.some((m) => m.id === wiped)) await cli(["members", "remove", wiped], c.api(via));
      await c.wipe(wiped);
    }
  });

  it("wiped node: remove, restart empty on a new peer address, add as a learner, catch up through a snapshot, promote", async () => {
    const leader = await c.waitForLeader();
    let wiped = founders.find((id) => id !== leader && !c.isRunning(id));
    if (!wiped) {
      wiped = founders.find((id) => id !== leader) as string;
      expect(await c.stop(wiped)).toBe(0);
      await c.wipe(wiped);
    }
    const via = founders.find((id) => id !== leader && id !== wiped) as string;
    // New ports: the address recorded by `members add` then differs from the old one, which makes
    // every node's transport drop its old peer client and whatever was queued for the old node.
    await c.reallocate(wiped);
    const logOffset = await rejoin(wiped, via, leader);
    await expectSnapshotCatchUpAndPromote(wiped, via, logOffset);
  });

  it("wiped node: a wiped founder restarted with bootstrap on, without remove + add, refuses to start (exit 1); the rest stays correct and available", async () => {
    const leader = await c.waitForLeader();
    const wiped = founders.find((id) => id !== leader) as string;
    const others = founders.filter((id) => id !== wiped);
    expect(await c.stop(wiped)).toBe(0);
    await c.wipe(wiped);
    await c.client(leader).put("while-wiped", "yes");
    written.set("while-wiped", "yes");

    // The operator's mistake: start it as before (founders bootstrap an empty directory). It asks
    // the other members first, hears that they hold the cluster, and refuses to start, naming the
    // repair procedure, before it writes anything.
    const logOffset = (await c.logOf(wiped)).length;
    c.start(wiped);
    const code = await c.exited(wiped, 20_000);
    const log = (await c.logOf(wiped)).slice(logOffset);
    expect(code).toBe(1);
    expect(log).toContain(`refusing to start: the data directory of ${wiped} is empty, but member`);
    expect(log).toContain(`raftmesh members remove ${wiped}`);
    expect(log).not.toContain("founded a new cluster");

    // A supervisor restarting it gets the same refusal: it never rejoins as its old self.
    const logOffset2 = (await c.logOf(wiped)).length;
    c.start(wiped);
    expect(await c.exited(wiped, 20_000)).toBe(1);
    const log2 = (await c.logOf(wiped)).slice(logOffset2);
    expect(log2).toContain("refusing to start");
    expect(log2).not.toContain("agent started");

    // The other two keep a leader, take writes through either node, and hold everything.
    for (let i = 0; i < 20; i++) {
      await c.client(others[i % 2] as string).put(`after-wiped-${i}`, `ok-${i}`);
      written.set(`after-wiped-${i}`, `ok-${i}`);
    }
    await expectConverged(c, others, written);
    expect((await c.client(leader).status()).voters.sort()).toEqual(founders);
  });
});
