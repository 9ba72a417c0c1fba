/**
 * Heartbeat leases on a real 3-node cluster, with a 2 s TTL and heartbeats every TTL/4 through
 * followers: an instance that heartbeats stays passing (also across a SIGKILL of the leader), one
 * that stops turns critical within a bound and not before its TTL ran out, heartbeat statuses and
 * revival, reaping of long-critical instances, KeepAlive ordering, and that renewals are not log
 * entries.
 */
import { type Client, type ClientDuplexStream, credentials, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventMsg, HeartbeatRequestMsg, HeartbeatResponseMsg } from "../../../src/common/messages.js";
import { clientApi } from "../../../src/common/proto.js";
import { type RaftmeshClient, RaftmeshError } from "../../../src/client/index.js";
import { DEREGISTER_CRITICAL_AFTER_MS_MIN } from "../../../src/registry/limits.js";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

const NODES = ["n1", "n2", "n3"] as const;
/** TTL_MS is every instance's lease here; HEARTBEAT_EVERY_MS is TTL/4, as the brief asks. */
const TTL_MS = 2_000;
const HEARTBEAT_EVERY_MS = TTL_MS / 4;
/** EXPIRY_SLACK_MS bounds how late after TTL an expiry is seen: the 100 ms lease check, one commit, one watch delivery, with room for a busy 2-core machine. */
const EXPIRY_SLACK_MS = 1_000;
/** POLL_EVERY_MS is how often the pollers read every live node. */
const POLL_EVERY_MS = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ack is one acknowledged heartbeat: when it was sent and when the answer came. */
interface Ack {
  readonly sentAt: number;
  readonly ackAt: number;
  readonly via: string;
}

/**
 * heartbeater heartbeats one instance every HEARTBEAT_EVERY_MS through the given nodes in turn; a
 * failed heartbeat is sent again at once through the next node. It records every acknowledgement.
 */
function heartbeater(clientOf: (id: string) => RaftmeshClient, nodes: () => string[], service: string, id: string) {
  const acks: Ack[] = [];
  const failures: string[] = [];
  let stopped = false;
  let turn = 0;
  const loop = (async () => {
    while (!stopped) {
      const round = Date.now();
      for (let attempt = 0; attempt < 6 && !stopped; attempt++) {
        const via = nodes()[turn++ % nodes().length] as string;
        const sentAt = Date.now();
        try {
          await clientOf(via).heartbeat(service, id, "", "", { deadlineMs: 1_000 });
          acks.push({ sentAt, ackAt: Date.now(), via });
          break;
        } catch (err) {
          failures.push(`${via}: ${(err as Error).message}`);
          await sleep(50);
        }
      }
      await sleep(Math.max(0, HEARTBEAT_EVERY_MS - (Date.now() - round)));
    }
  })();
  return {
    acks,
    failures,
    /** stop ends the loop; the last ack after it is the last heartbeat the leader accepted. */
    async stop(): Promise<void> {
      stopped = true;
      await loop;
    },
    /** maxGapMs is the longest time between consecutive acknowledgements (by send time of the later). */
    maxGapMs(): number {
      let gap = 0;
      for (let i = 1; i < acks.length; i++) gap = Math.max(gap, (acks[i] as Ack).sentAt - (acks[i - 1] as Ack).ackAt);
      return gap;
    },
  };
}

/** Seen is one observation of an instance's health, by a poller or a watch. */
interface Seen {
  readonly at: number;
  readonly by: string;
  readonly health: string;
  readonly note: string;
}

describe("registry leases on a 3-node cluster", () => {
  let c: ProcessCluster;
  const stubs: Client[] = [];
  const cancels: (() => void)[] = [];

  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    await c.waitForLeader();
  });
  afterAll(async () => {
    for (const cancel of cancels) cancel();
    for (const s of stubs) s.close();
    await c?.cleanup();
  });

  const followersOf = (leader: string) => NODES.filter((n) => n !== leader && c.isRunning(n));
  const register = (via: string, service: string, id: string, extra: Record<string, unknown> = {}) =>
    c.client(via).register({ service, id, address: "127.0.0.1", port: 9000, ttlMs: TTL_MS, ...extra });
  const commitOf = async (leader: string) => (await c.client(leader).status()).commit;

  /** watchInstance records every event of one instance as seen by a watch on node `on`, from `fromIndex`. */
  function watchInstance(on: string, service: string, id: string, fromIndex: number) {
    const seen: (Seen & { type: string; index: number })[] = [];
    const errors: string[] = [];
    const w = c.client(on).watch(
      { fromIndex, service, kinds: ["instance"] },
      {
        onMessage: (m) => {
          for (const e of m.events as EventMsg[]) {
            if ((e.instance?.id ?? e.id) !== id) continue;
            seen.push({ at: Date.now(), by: `watch@${on}`, type: e.type, index: e.index, health: e.instance?.health ?? "", note: e.instance?.note ?? "" });
          }
        },
        onEnd: (err) => {
          if (err) errors.push(err.message);
        },
      },
    );
    cancels.push(() => w.cancel());
    return { seen, errors, cancel: () => w.cancel() };
  }

  /** poller reads the instance with STALE GetService on every running node every POLL_EVERY_MS. */
  function poller(service: string, id: string) {
    const seen: Seen[] = [];
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        await Promise.all(
          NODES.filter((n) => c.isRunning(n)).map(async (n) => {
            const got = await c
              .client(n)
              .getService(service, { stale: true, deadlineMs: 500 })
              .catch(() => undefined);
            const inst = got?.instances.find((i) => i.id === id);
            if (inst) seen.push({ at: Date.now(), by: `poll@${n}`, health: inst.health, note: inst.note });
          }),
        );
        await sleep(POLL_EVERY_MS);
      }
    })();
    return {
      seen,
      async stop() {
        stopped = true;
        await loop;
      },
    };
  }

  it("leases: an instance heartbeating through followers stays passing for 3×TTL, then turns critical within TTL+1 s of its last heartbeat and not before TTL", async () => {
    const leader = await c.waitForLeader();
    const followers = followersOf(leader);
    const reg = await register(followers[0] as string, "lease-a", "a-1");
    const watch = watchInstance(followers[1] as string, "lease-a", "a-1", reg.index);
    const poll = poller("lease-a", "a-1");
    const hb = heartbeater((id) => c.client(id), () => followers, "lease-a", "a-1");
    await sleep(3 * TTL_MS);
    await hb.stop();
    const last = hb.acks.at(-1) as Ack;
    expect(hb.acks.length).toBeGreaterThanOrEqual((3 * TTL_MS) / HEARTBEAT_EVERY_MS - 1);
    expect(new Set(hb.acks.map((a) => a.via))).toEqual(new Set(followers));
    expect(hb.maxGapMs()).toBeLessThan(TTL_MS / 2);
    expect(poll.seen.filter((s) => s.health !== "passing")).toEqual([]);
    expect(watch.seen).toEqual([]);

    const critical = await waitFor("a-1 to turn critical", () => watch.seen.find((s) => s.health === "critical"), TTL_MS + 3_000);
    await sleep(2 * POLL_EVERY_MS);
    await poll.stop();
    // The leader renewed the lease at some moment between send and ack: the expiry can come no
    // earlier than TTL after the send, and must come within the slack after TTL from the ack.
    const afterSendMs = critical.at - last.sentAt;
    const afterAckMs = critical.at - last.ackAt;
    console.log(`lease expiry seen ${afterAckMs} ms after the last ack (${afterSendMs} ms after its send; ttl ${TTL_MS} ms)`);
    expect(afterSendMs).toBeGreaterThanOrEqual(TTL_MS);
    expect(afterAckMs).toBeLessThanOrEqual(TTL_MS + EXPIRY_SLACK_MS);
    expect(critical.note).toMatch(/^lease expired: /);
    // No node reported it critical before the lease could have run out; every node sees it critical now.
    expect(poll.seen.filter((s) => s.health !== "passing" && s.at < last.sentAt + TTL_MS)).toEqual([]);
    for (const n of NODES) expect((await c.client(n).getService("lease-a")).instances[0]?.health).toBe("critical");
    expect(watch.seen.map((s) => s.health)).toEqual(["critical"]);
    expect(watch.errors).toEqual([]);
    await c.client(leader).deregister("lease-a", "a-1");
  });

  it("leases: across a SIGKILL of the leader, an instance whose heartbeats kept being acknowledged within TTL is never reported critical; the old leader catches up", async () => {
    const leader = await c.waitForLeader();
    const followers = followersOf(leader);
    const reg = await register(followers[0] as string, "lease-c", "c-1");
    // The watch is on a follower that survives; the pollers read every live node.
    const watch = watchInstance(followers[0] as string, "lease-c", "c-1", reg.index);
    const poll = poller("lease-c", "c-1");
    const hb = heartbeater((id) => c.client(id), () => followers, "lease-c", "c-1");
    await sleep(TTL_MS);
    const killedAt = Date.now();
    await c.kill(leader);
    const next = await c.waitForLeader(20_000, followers);
    const electedAfterMs = Date.now() - killedAt;
    // Keep going for 2×TTL under the new leader: its fresh leases must not expire while heartbeats arrive.
    await sleep(2 * TTL_MS);
    await hb.stop();
    await poll.stop();
    console.log(
      `leader ${leader} killed; ${next} led after ${electedAfterMs} ms; longest gap between acknowledged heartbeats ${hb.maxGapMs()} ms; ${hb.failures.length} heartbeats refused`,
    );
    // The premise: acknowledged heartbeats kept coming within TTL, through the failover too.
    expect(hb.maxGapMs()).toBeLessThan(TTL_MS);
    expect(hb.acks.filter((a) => a.ackAt > killedAt + electedAfterMs).length).toBeGreaterThanOrEqual(4);
    // The claim: never reported critical (nor anything but passing) by any node or the watch.
    expect(poll.seen.filter((s) => s.health !== "passing")).toEqual([]);
    expect(poll.seen.filter((s) => s.at > killedAt + electedAfterMs).length).toBeGreaterThan(10);
    expect(watch.seen).toEqual([]);
    expect(watch.errors).toEqual([]);

    const dereg = await c.client(next).deregister("lease-c", "c-1");
    c.start(leader);
    await waitFor(
      `${leader} to catch up to ${dereg.index}`,
      async () => (await c.client(leader).status({ deadlineMs: 1_000 })).applied >= dereg.index,
      20_000,
    );
    const gone = await c.client(leader).getService("lease-c", { stale: true });
    expect(gone.instances).toEqual([]);
    await c.waitForLeader();
  });

  it("leases: a heartbeat's status and note change health in one log entry; a plain heartbeat keeps it; an expired instance is revived by a plain heartbeat", async () => {
    const leader = await c.waitForLeader();
    const [f1, f2] = followersOf(leader) as [string, string];
    await register(f1, "lease-d", "d-1");
    const c0 = await commitOf(leader);

    const warn = await c.client(f1).heartbeat("lease-d", "d-1", "warning", "disk 91% full");
    expect(warn).toMatchObject({ service: "lease-d", id: "d-1", ttlMs: TTL_MS, health: "warning", index: c0 + 1 });
    expect(await commitOf(leader)).toBe(c0 + 1);
    for (const n of NODES) expect((await c.client(n).getService("lease-d")).instances[0]).toMatchObject({ health: "warning", note: "disk 91% full" });

    // status "" keeps the health (and note) as they are, and writes nothing.
    const plain = await c.client(f2).heartbeat("lease-d", "d-1");
    expect(plain).toMatchObject({ health: "warning", index: 0 });
    expect(await commitOf(leader)).toBe(c0 + 1);
    // The same status again writes nothing either.
    expect(await c.client(f2).heartbeat("lease-d", "d-1", "warning", "disk 91% full")).toMatchObject({ health: "warning", index: 0 });
    expect(await commitOf(leader)).toBe(c0 + 1);

    const pass = await c.client(f2).heartbeat("lease-d", "d-1", "passing");
    expect(pass).toMatchObject({ health: "passing", index: c0 + 2 });
    expect(await commitOf(leader)).toBe(c0 + 2);
    expect((await c.client(f1).getService("lease-d")).instances[0]).toMatchObject({ health: "passing", note: "" });

    // Let it expire, then one plain heartbeat brings it back.
    await waitFor("d-1 to expire", async () => (await c.client(f1).getService("lease-d")).instances[0]?.health === "critical", TTL_MS + 3_000);
    const expired = (await c.client(f1).getService("lease-d")).instances[0];
    expect(expired?.note).toMatch(/^lease expired: /);
    const revived = await c.client(f1).heartbeat("lease-d", "d-1");
    expect(revived.health).toBe("passing");
    expect(revived.index).toBeGreaterThan(c0 + 2);
    for (const n of NODES) expect((await c.client(n).getService("lease-d")).instances[0]).toMatchObject({ health: "passing", note: "" });
    // The revived lease is a full one: it does not expire again at once.
    await sleep(TTL_MS / 2);
    expect((await c.client(f2).getService("lease-d")).instances[0]?.health).toBe("passing");
    await c.client(leader).deregister("lease-d", "d-1");
  });

  it("leases: an instance critical for deregisterCriticalAfterMs is removed (the minimum is 10 s: 3 s is refused)", async () => {
    const leader = await c.waitForLeader();
    const [f1, f2] = followersOf(leader) as [string, string];
    const tooShort = await register(f1, "lease-e", "e-1", { deregisterCriticalAfterMs: 3_000 }).catch((e: unknown) => e);
    expect(tooShort).toBeInstanceOf(RaftmeshError);
    expect([(tooShort as RaftmeshError).code, (tooShort as RaftmeshError).details]).toEqual([
      status.INVALID_ARGUMENT,
      `instance.deregisterCriticalAfterMs: must be 0 (never) or at least ${DEREGISTER_CRITICAL_AFTER_MS_MIN}, got 3000`,
    ]);

    const reg = await register(f1, "lease-e", "e-1", { deregisterCriticalAfterMs: DEREGISTER_CRITICAL_AFTER_MS_MIN });
    const watch = watchInstance(f2, "lease-e", "e-1", reg.index);
    const ack = await c.client(f1).heartbeat("lease-e", "e-1");
    const ackAt = Date.now();
    expect(ack.health).toBe("passing");
    const removed = await waitFor("e-1 to be removed", () => watch.seen.find((s) => s.type === "delete"), TTL_MS + DEREGISTER_CRITICAL_AFTER_MS_MIN + 5_000);
    const critical = watch.seen.find((s) => s.health === "critical");
    expect(critical).toBeDefined();
    const criticalForMs = removed.at - (critical as Seen).at;
    console.log(`e-1 critical ${(critical as Seen).at - ackAt} ms after its last heartbeat, removed ${criticalForMs} ms later`);
    expect((critical as Seen).at - ackAt).toBeLessThanOrEqual(TTL_MS + EXPIRY_SLACK_MS);
    expect(criticalForMs).toBeGreaterThanOrEqual(DEREGISTER_CRITICAL_AFTER_MS_MIN - 200);
    expect(criticalForMs).toBeLessThanOrEqual(DEREGISTER_CRITICAL_AFTER_MS_MIN + EXPIRY_SLACK_MS);
    expect(watch.seen.map((s) => s.type)).toEqual(["put", "delete"]);
    for (const n of NODES) expect((await c.client(n).getService("lease-e")).instances).toEqual([]);
  }, 40_000);

  /** keepAlive opens a KeepAlive stream to node `on`, sends every heartbeat at once, ends it, and returns the answers and how it ended. */
  async function keepAlive(on: string, beats: HeartbeatRequestMsg[]) {
    const stub = new (clientApi().Registry)(c.api(on), credentials.createInsecure());
    stubs.push(stub);
    const call = (stub as unknown as { KeepAlive(o: object): ClientDuplexStream<HeartbeatRequestMsg, HeartbeatResponseMsg> }).KeepAlive({
      deadline: new Date(Date.now() + 10_000),
    });
    const answers: HeartbeatResponseMsg[] = [];
    const ended = new Promise<{ code?: number; details?: string }>((resolve) => {
      call.on("data", (m: HeartbeatResponseMsg) => answers.push(m));
      call.on("error", (err: { code?: number; details?: string }) => resolve(err));
      call.on("end", () => resolve({}));
    });
    for (const h of beats) call.write(h);
    call.end();
    return { answers, end: await ended };
  }

  it("leases: a KeepAlive stream answers in order, one answer per heartbeat, and ends with NOT_FOUND for an unknown instance", async () => {
    const leader = await c.waitForLeader();
    const [f1] = followersOf(leader) as [string];
    await register(f1, "lease-f", "f-1");
    await register(f1, "lease-f", "f-2");
    // Two status changes (each waits for a commit) among plain heartbeats (answered at once), so
    // later answers are ready before earlier ones: the stream must still answer in request order.
    const beats = Array.from({ length: 12 }, (_, i) => ({
      service: "lease-f",
      id: i % 2 === 0 ? "f-1" : "f-2",
      status: i === 1 || i === 4 ? "warning" : "",
      note: i === 1 || i === 4 ? `beat ${i}` : "",
    }));
    const { answers, end } = await keepAlive(f1, [...beats, { service: "lease-f", id: "f-unknown", status: "", note: "" }]);
    expect(answers.map((a) => a.id)).toEqual(beats.map((h) => h.id));
    expect(answers.every((a) => a.service === "lease-f" && a.ttlMs === TTL_MS)).toBe(true);
    expect([answers[1]?.health, answers[4]?.health]).toEqual(["warning", "warning"]);
    expect(answers[1]?.index).toBeGreaterThan(0);
    expect(answers[4]?.index).toBeGreaterThan(0);
    // The unknown instance ends the stream with its status, after every answer before it.
    expect(end.code).toBe(status.NOT_FOUND);
    expect(end.details).toBe("instance f-unknown of service lease-f is not registered");
    // A bad heartbeat while an earlier one waits for its commit ends the stream with INVALID_ARGUMENT (and the node keeps running).
    const bad = await keepAlive(f1, [
      { service: "lease-f", id: "f-1", status: "critical", note: "down" },
      { service: "lease-f", id: "f-1", status: "bogus", note: "" },
    ]);
    expect(bad.answers.map((a) => a.health)).toEqual(["critical"]);
    expect(bad.end.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.end.details).toMatch(/^status: /);
    expect(c.isRunning(f1)).toBe(true);
    await c.client(leader).deleteService("lease-f");
  });

  // Regression: the tracker compared a heartbeat's status with the replicated health only, so
  // "passing" right after "warning" (still in flight) was dropped and the instance stayed warning.
  it("leases: the last status of pipelined heartbeats wins (warning, then passing, leaves it passing)", async () => {
    const leader = await c.waitForLeader();
    const [f1] = followersOf(leader) as [string];
    await register(f1, "lease-h", "h-1");
    const { answers, end } = await keepAlive(f1, [
      { service: "lease-h", id: "h-1", status: "warning", note: "slow" },
      { service: "lease-h", id: "h-1", status: "passing", note: "" },
    ]);
    expect(end.code).toBeUndefined();
    const got = (await c.client(leader).getService("lease-h")).instances[0];
    await c.client(leader).deleteService("lease-h");
    expect(got?.health).toBe("passing");
    expect(answers[1]?.health).toBe("passing");
  });

  it("leases: 50 instances heartbeating for 5 s add no log entries but health changes", async () => {
    const leader = await c.waitForLeader();
    const followers = followersOf(leader);
    const ids = Array.from({ length: 50 }, (_, i) => `g-${i}`);
    await Promise.all(ids.map((id, i) => register(followers[i % 2] as string, "lease-g", id)));
    const c0 = await commitOf(leader);
    const indexes = new Set<number>();
    const w = c.client(followers[0] as string).watch(
      { fromIndex: c0 },
      {
        onMessage: (m) => {
          for (const e of m.events) indexes.add(e.index);
        },
        onEnd: () => undefined,
      },
    );
    cancels.push(() => w.cancel());
    let acked = 0;
    const started = Date.now();
    for (let round = 0; Date.now() - started < 5_000; round++) {
      const t = Date.now();
      await Promise.all(
        ids.map(async (id, i) => {
          await c.client(followers[(i + round) % 2] as string).heartbeat("lease-g", id);
          acked++;
        }),
      );
      await sleep(Math.max(0, HEARTBEAT_EVERY_MS - (Date.now() - t)));
    }
    const c1 = await commitOf(leader);
    await sleep(200);
    w.cancel();
    console.log(`${acked} heartbeats acknowledged; leader commit ${c0} -> ${c1}; indexes with events: ${[...indexes].join(",")}`);
    expect(acked).toBeGreaterThanOrEqual(50 * 8);
    // Every entry committed in the window is a change someone can watch (a health change), and there are none or almost none.
    expect(c1 - c0).toBe([...indexes].filter((i) => i > c0 && i <= c1).length);
    expect(c1 - c0).toBeLessThanOrEqual(2);
    const got = await c.client(leader).getService("lease-g");
    expect(got.service).toMatchObject({ instances: 50, passing: 50 });
    await c.client(leader).deleteService("lease-g");
  });
});
