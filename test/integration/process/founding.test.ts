/**
 * Founding on real processes: nodes with empty data directories and the default bootstrap found a
 * cluster together even when they start seconds apart, and a member whose directory was wiped and
 * which is restarted with the defaults refuses to start instead of rejoining as a voter that forgot
 * its votes and its log, whether its peers are up or all down.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

const FOUNDERS = ["n1", "n2", "n3"];
/** START_GAP_MS is the pause between starting one founder and the next, longer than an election timeout (300-600 ms). */
const START_GAP_MS = 3_000;
/** REFUSAL = the words every refusal must carry: what happened and the repair procedure. */
const REFUSAL = [/refusing to start: the data directory of n\d is empty, but member n\d already holds this cluster's state/, /raftmesh members remove n\d/, /--bootstrap false/, /raftmesh members promote n\d/];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** expectHolds checks that every node in ids answers every key with its value from its own state. */
async function expectHolds(c: ProcessCluster, ids: readonly string[], expected: ReadonlyMap<string, string>): Promise<void> {
  const leader = await c.waitForLeader(20_000, ids);
  const { commit } = await c.client(leader).status();
  await waitFor(`${ids.join(", ")} to apply index ${commit}`, async () => {
    const views = await Promise.all(ids.map((id) => c.client(id).status({ deadlineMs: 1_000 })));
    return views.every((v) => v.applied >= commit && v.leader === leader);
  });
  for (const id of ids) {
    for (const [key, value] of expected) {
      const got = await c.client(id).get(key, { stale: true });
      expect(got.found && got.value.toString(), `${key} on ${id}`).toBe(value);
    }
  }
}

/** expectRefused waits for node id to exit by itself and checks it exited 1 with the refusal, never founding. */
async function expectRefused(c: ProcessCluster, id: string, logOffset: number, timeoutMs = 20_000): Promise<void> {
  const code = await c.exited(id, timeoutMs);
  const log = (await c.logOf(id)).slice(logOffset);
  expect(code).toBe(1);
  for (const words of REFUSAL) expect(log).toMatch(words);
  expect(log).not.toContain("founded a new cluster");
  expect(log).not.toContain("agent started");
}

describe("founding", () => {
  let c: ProcessCluster;
  const written = new Map<string, string>();
  /** refused is the member wiped in the second case (the third wipes it again). */
  let refused = "n3";
  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3 });
  });
  afterAll(async () => {
    await c?.cleanup();
  });

  it("founding: three empty nodes started seconds apart with the default bootstrap found one cluster", async () => {
    let lastStartMs = 0;
    for (const [i, id] of FOUNDERS.entries()) {
      if (i > 0) await sleep(START_GAP_MS);
      lastStartMs = Date.now();
      c.start(id);
      // Up means listening for peers: process start-up time must not close the gap.
      await waitFor(`${id} to listen for peers`, async () => (await c.logOf(id)).includes("peer server listening"), 30_000);
    }
    const leader = await c.waitForLeader(30_000, FOUNDERS);
    for (const id of FOUNDERS) {
      // Every founder founded once the last one was up: the first ones waited for it.
      // The line comes at the end of a node's start-up (after its balancing endpoint's worker is
      // up), which may be after the other two elected a leader: wait for it.
      const founded = await waitFor(`${id} to log that it founded`, async () => (await c.logOf(id)).split("\n").find((line) => line.includes("founded a new cluster")), 30_000);
      expect(founded, `${id} founded`).toBeDefined();
      expect((JSON.parse(founded as string) as { time: number }).time).toBeGreaterThan(lastStartMs);
      expect((await c.client(id).status()).voters.sort()).toEqual(FOUNDERS);
    }
    for (let i = 0; i < 10; i++) {
      await c.client(FOUNDERS[i % 3] as string).put(`fresh-${i}`, `v-${i}`);
      written.set(`fresh-${i}`, `v-${i}`);
    }
    await expectHolds(c, FOUNDERS, written);
    expect(FOUNDERS).toContain(leader);
  });

  it("founding: a wiped member restarted with the defaults refuses to start, naming the repair; the cluster keeps its data and takes writes", async () => {
    const leader = await c.waitForLeader(20_000, FOUNDERS);
    const wiped = FOUNDERS.find((id) => id !== leader) as string;
    refused = wiped;
    const others = FOUNDERS.filter((id) => id !== wiped);
    expect(await c.stop(wiped)).toBe(0);
    await c.wipe(wiped);
    // A new leader tracks no progress for the wiped node, so nothing would stop a forgetful rejoin
    // on the Raft level: the refusal has to come before the node writes anything.
    const next = others.find((id) => id !== leader) as string;
    await c.client(leader).transferLeader(next);
    await c.client(next).put("while-wiped", "yes");
    written.set("while-wiped", "yes");
    const before = await Promise.all(others.map((id) => c.client(id).status()));

    const offset = (await c.logOf(wiped)).length;
    c.start(wiped);
    await expectRefused(c, wiped, offset);
    // A supervisor restarting it gets the same answer: the refusal wrote nothing.
    const offset2 = (await c.logOf(wiped)).length;
    c.start(wiped);
    await expectRefused(c, wiped, offset2);

    for (let i = 0; i < 10; i++) {
      await c.client(others[i % 2] as string).put(`after-${i}`, `ok-${i}`);
      written.set(`after-${i}`, `ok-${i}`);
    }
    await expectHolds(c, others, written);
    const after = await Promise.all(others.map((id) => c.client(id).status()));
    for (const [i, view] of after.entries()) {
      expect(view.term).toBeGreaterThanOrEqual(before[i]?.term ?? 0);
      expect(view.commit).toBeGreaterThan(before[i]?.commit ?? 0);
      expect(view.voters.sort()).toEqual(FOUNDERS);
    }
  });

  it("founding: a wiped member whose peers are all down waits instead of founding, and refuses once they are back", async () => {
    const wiped = refused;
    const others = FOUNDERS.filter((id) => id !== wiped);
    for (const id of c.runningIds()) await c.stop(id);
    await c.wipe(wiped);

    const offset = (await c.logOf(wiped)).length;
    c.start(wiped);
    await waitFor(`${wiped} to say it waits`, async () => (await c.logOf(wiped)).slice(offset).includes("waiting until every member answers"), 20_000);
    await sleep(3_000);
    expect(c.isRunning(wiped)).toBe(true);
    expect((await c.logOf(wiped)).slice(offset)).not.toContain("founded a new cluster");

    for (const id of others) c.start(id);
    await expectRefused(c, wiped, offset);
    await expectHolds(c, others, written);
  });
});
