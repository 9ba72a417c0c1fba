/**
 * Sessioned writes ride out the leader's failure. Through one follower: while the cluster elects,
 * that follower answers "no leader" (UNAVAILABLE, not applied) or a forwarded write breaks
 * (DEADLINE_EXCEEDED, outcome unknown), and the SDK sends the same seq again until the new leader
 * answers, within the call's deadline. Two faults, each against the leader of the moment: SIGKILL
 * (its connections close, the followers campaign early) and SIGSTOP (silent: only the election
 * timeout finds it). Every write must be acknowledged, and every acknowledged value read back
 * (at-most-once: a write sent again is answered with its first result, never applied twice — a
 * put applied twice would look the same, so each value is checked against the put that wrote it
 * and the keys' versions count the applications). A second client lists every node and writes to
 * the leader it learned directly: a silent leader holds those calls until the client's pings find
 * the connection dead.
 */
import { afterAll, describe, expect, it } from "vitest";
import { RaftmeshClient } from "../../../src/client/index.js";
import { ProcessCluster } from "../harness/process-cluster.js";

/** WRITERS: writes in flight at once, each a loop of puts to keys of its own. */
const WRITERS = 4;
/** WRITES_BEFORE_FAULT / WRITES_AFTER_ELECTION: acknowledged writes before the fault, and after a new leader is known. */
const WRITES_BEFORE_FAULT = 20;
const WRITES_AFTER_ELECTION = 20;
/** DEADLINE_MS: each write's deadline, long beside an election at the defaults (300-600 ms) on a loaded machine. */
const DEADLINE_MS = 10_000;
/**
 * DIRECT_DEADLINE_MS / DIRECT_SLOWEST_MS_MAX: the deadline of the client that writes to the leader
 * directly, and what its slowest write may take: a silent leader's connection is found dead in 2-4 s
 * (pings every 2 s), the write then goes on through a follower to the new leader. Without the pings
 * the write would wait out the whole deadline.
 */
const DIRECT_DEADLINE_MS = 30_000;
const DIRECT_SLOWEST_MS_MAX = 12_000;
/** PHASE_MS_MAX bounds a phase in time. */
const PHASE_MS_MAX = 60_000;

interface Ack {
  readonly key: string;
  readonly value: string;
  readonly ms: number;
}

/**
 * writeThrough runs WRITERS loops of puts through client until stop() says so, and returns what
 * was acknowledged and every error.
 */
function writeThrough(client: RaftmeshClient, tag: string) {
  const acks: Ack[] = [];
  const errors: Error[] = [];
  let stopping = false;
  const startedAt = Date.now();
  const loops = Array.from({ length: WRITERS }, async (_, w) => {
    for (let i = 0; !stopping && Date.now() - startedAt < PHASE_MS_MAX; i++) {
      const key = `${tag}/w${w}/${i}`;
      const value = `${tag}-${w}-${i}`;
      const t0 = Date.now();
      try {
        await client.put(key, value);
        acks.push({ key, value, ms: Date.now() - t0 });
      } catch (err) {
        errors.push(err as Error);
      }
    }
  });
  return {
    acks,
    errors,
    async waitForAcks(n: number): Promise<void> {
      const from = acks.length;
      const until = Date.now() + PHASE_MS_MAX;
      while (acks.length < from + n && Date.now() < until && errors.length === 0) await new Promise((r) => setTimeout(r, 20));
    },
    async stop(): Promise<void> {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

describe("sessioned writes through a leader's failure", () => {
  let c: ProcessCluster | undefined;
  const clients: RaftmeshClient[] = [];
  afterAll(async () => {
    for (const cl of clients) cl.close();
    await c?.cleanup();
  });

  async function phase(cluster: ProcessCluster, fault: "kill" | "stop"): Promise<void> {
    const leader = await cluster.waitForLeader(30_000);
    const follower = cluster.runningIds().find((id) => id !== leader) as string;
    // One endpoint: a pass is one try, so riding out the election is the passes' doing alone.
    const client = new RaftmeshClient([cluster.api(follower)], { deadlineMs: DEADLINE_MS });
    // Every endpoint, the follower first: its first forwarded answer names the leader, and the
    // client then writes to the leader directly — the calls a silent leader holds on to.
    const others = cluster.runningIds().filter((id) => id !== follower);
    const direct = new RaftmeshClient([follower, ...others].map((id) => cluster.api(id)), { deadlineMs: DIRECT_DEADLINE_MS });
    clients.push(client, direct);
    const load = writeThrough(client, fault);
    const directLoad = writeThrough(direct, `${fault}-direct`);
    await load.waitForAcks(WRITES_BEFORE_FAULT);
    await directLoad.waitForAcks(WRITES_BEFORE_FAULT);
    const pid = cluster.pid(leader) as number;
    if (fault === "kill") await cluster.kill(leader);
    else process.kill(pid, "SIGSTOP");
    try {
      const next = await cluster.waitForLeader(30_000, cluster.runningIds().filter((id) => id !== leader));
      expect(next).not.toBe(leader);
      await load.waitForAcks(WRITES_AFTER_ELECTION);
      await directLoad.waitForAcks(WRITES_AFTER_ELECTION);
    } finally {
      await Promise.all([load.stop(), directLoad.stop()]);
      if (fault === "stop") process.kill(pid, "SIGCONT");
    }
    expect(load.errors.map((e) => e.message)).toEqual([]);
    expect(directLoad.errors.map((e) => e.message)).toEqual([]);
    expect(load.acks.length).toBeGreaterThanOrEqual(WRITES_BEFORE_FAULT + WRITES_AFTER_ELECTION);
    expect(directLoad.acks.length).toBeGreaterThanOrEqual(WRITES_BEFORE_FAULT + WRITES_AFTER_ELECTION);
    // Writes held by a silent leader move on once the connection's ping goes unanswered
    // (KEEPALIVE_MS_DEFAULT), long before their deadline.
    const directSlowest = Math.max(...directLoad.acks.map((a) => a.ms));
    expect(directSlowest).toBeLessThan(DIRECT_SLOWEST_MS_MAX);
    // Every acknowledged write is there with its value, applied once (version 1: each key is
    // written by one put; a put applied twice would be version 2).
    for (const a of [...load.acks, ...directLoad.acks]) {
      const got = await client.get(a.key);
      expect(got.value.toString(), a.key).toBe(a.value);
      expect(got.kv?.version, a.key).toBe(1);
    }
    const slowest = Math.max(...load.acks.map((a) => a.ms));
    console.log(
      `${fault}: ${load.acks.length} writes acknowledged through ${follower}, 0 failed, slowest ${slowest} ms; ${directLoad.acks.length} through every endpoint (the leader's first), 0 failed, slowest ${directSlowest} ms`,
    );
  }

  it("a leader's SIGKILL, then a silent leader (SIGSTOP): every write through one follower is acknowledged once", async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    await phase(c, "kill");
    // The killed node comes back as a follower; the next fault is against whoever leads then.
    const killed = ["n1", "n2", "n3"].find((id) => !c?.isRunning(id)) as string;
    c.start(killed);
    await c.waitForLeader(30_000);
    await phase(c, "stop");
  }, 240_000);
});
