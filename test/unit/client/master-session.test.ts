import { describe, expect, it } from "vitest";
import {
  type DemotionReason,
  type HeartbeatAnswer,
  MasterSession,
  type MasterSessionOptions,
  SELF_DEMOTION_SCHEDULING_MS,
  type SessionClock,
  selfDemotionMarginMs,
} from "../../../src/client/index.js";

/** ManualClock is a SessionClock whose time moves only by advance(), running due timers in order. */
class ManualClock implements SessionClock {
  private t = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** jump moves time without running any timer (a paused process). */
  jump(ms: number): void {
    this.t += ms;
  }
  /** advance moves time to now + ms, firing each due timer at its own time. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

const flush = () => new Promise<void>((r) => setImmediate(r));

interface Pending {
  readonly sentAt: number;
  readonly req: { replicationPosition?: number };
  resolve(a: HeartbeatAnswer): void;
  reject(e: unknown): void;
}

function setup(extra: Partial<MasterSessionOptions> = {}) {
  const clock = new ManualClock();
  const pending: Pending[] = [];
  const events: string[] = [];
  const session = new MasterSession(
    (req) =>
      new Promise<HeartbeatAnswer>((resolve, reject) => {
        pending.push({ sentAt: clock.now(), req, resolve, reject });
      }),
    {
      service: "db",
      id: "a",
      ttlMs: 3_000,
      clock,
      onPromoted: (e) => events.push(`promoted ${e} @${clock.now()}`),
      onDemoted: (r: DemotionReason, e) => events.push(`demoted ${r} ${e} @${clock.now()}`),
      ...extra,
    },
  );
  return { clock, pending, events, session };
}

const master = (epoch: number): HeartbeatAnswer => ({ health: "passing", role: "master", epoch });

describe("master session", () => {
  it("margin: the clock-rate bound over the TTL plus the scheduling allowance", () => {
    expect(selfDemotionMarginMs(1_000)).toBe(10 + SELF_DEMOTION_SCHEDULING_MS);
    expect(selfDemotionMarginMs(10_000)).toBe(100 + SELF_DEMOTION_SCHEDULING_MS);
    expect(() => setup({ ttlMs: 1_000, marginMs: 1_000 })).toThrow(/marginMs/);
    expect(() => setup({ marginMs: -1 })).toThrow(/marginMs/);
  });

  it("self-demotion: at TTL - margin counted from the send time of the last acknowledged heartbeat", async () => {
    const { clock, pending, events, session } = setup();
    const margin = selfDemotionMarginMs(3_000);
    session.start();
    expect(pending).toHaveLength(1);
    // Answered 400 ms after it was sent: the deadline still counts from the send (t = 0).
    await clock.advance(400);
    pending[0]?.resolve(master(7));
    await flush();
    expect(session.isMaster()).toBe(true);
    expect(session.epoch).toBe(7);
    expect(events).toEqual(["promoted 7 @400"]);
    // Every later heartbeat is lost (never answered).
    await clock.advance(3_000 - margin - 400 - 1);
    expect(session.isMaster()).toBe(true);
    await clock.advance(1);
    expect(session.isMaster()).toBe(false);
    expect(events).toEqual(["promoted 7 @400", `demoted lease-lost 7 @${3_000 - margin}`]);
  });

  it("renewal: each acknowledged heartbeat moves the deadline to its own send time + TTL - margin", async () => {
    const { clock, pending, events, session } = setup();
    const margin = selfDemotionMarginMs(3_000);
    session.start();
    pending[0]?.resolve(master(7));
    await flush();
    await clock.advance(1_000); // second heartbeat sent at 1000
    expect(pending).toHaveLength(2);
    await clock.advance(500);
    pending[1]?.resolve(master(7));
    await flush();
    await clock.advance(3_000 - margin - 1_500 + 1_000 - 1);
    expect(session.isMaster()).toBe(true);
    await clock.advance(1);
    expect(events).toEqual(["promoted 7 @0", `demoted lease-lost 7 @${1_000 + 3_000 - margin}`]);
  });

  it("late answer: an acknowledgement that arrives after its own deadline promotes nothing", async () => {
    const { clock, pending, events, session } = setup();
    session.start();
    await clock.advance(3_000);
    pending[0]?.resolve(master(7));
    await flush();
    expect(session.isMaster()).toBe(false);
    expect(events).toEqual([]);
  });

  it("paused process: isMaster is false past the deadline even before the demotion timer runs", async () => {
    const { clock, pending, events, session } = setup();
    session.start();
    pending[0]?.resolve(master(3));
    await flush();
    expect(session.isMaster()).toBe(true);
    clock.jump(5_000); // as after SIGSTOP/SIGCONT: time moved, no timer ran yet
    expect(session.isMaster()).toBe(false);
    expect(session.epoch).toBe(0);
    expect(events).toEqual(["promoted 3 @0"]);
  });

  it("out of order: an answer to an older heartbeat neither renews nor changes the role", async () => {
    const { clock, pending, events, session } = setup();
    session.start();
    await clock.advance(1_000);
    pending[1]?.resolve(master(9));
    await flush();
    pending[0]?.resolve({ health: "passing", role: "standby", epoch: 9 });
    await flush();
    expect(session.isMaster()).toBe(true);
    expect(events).toEqual(["promoted 9 @1000"]);
  });

  it("standby and new epoch: an answer naming another master demotes; a later epoch as master re-promotes", async () => {
    const { clock, pending, events, session } = setup();
    session.start();
    pending[0]?.resolve(master(5));
    await flush();
    await clock.advance(1_000);
    pending[1]?.resolve({ health: "passing", role: "standby", epoch: 8 });
    await flush();
    await clock.advance(1_000);
    pending[2]?.resolve(master(12));
    await flush();
    // An answer from a lagging node with an older epoch is ignored.
    await clock.advance(1_000);
    pending[3]?.resolve({ health: "passing", role: "standby", epoch: 8 });
    await flush();
    expect(events).toEqual(["promoted 5 @0", "demoted standby 5 @1000", "promoted 12 @2000"]);
    expect(session.newestEpoch).toBe(12);
    expect(session.isMaster()).toBe(true);
  });

  it("replication position: each heartbeat reports the supplier's value", async () => {
    let lsn = 100;
    const { clock, pending, session } = setup({ replicationPosition: () => lsn });
    session.start();
    lsn = 250;
    await clock.advance(1_000);
    expect(pending.map((p) => p.req.replicationPosition)).toEqual([100, 250]);
    session.stop();
  });

  it("heartbeatNow: sends at once and restarts the interval from there", async () => {
    const { clock, pending, session } = setup();
    session.start();
    await clock.advance(400);
    session.heartbeatNow();
    expect(pending.map((p) => p.sentAt)).toEqual([0, 400]);
    await clock.advance(999);
    expect(pending).toHaveLength(2);
    await clock.advance(1);
    expect(pending.map((p) => p.sentAt)).toEqual([0, 400, 1_400]);
    session.stop();
  });

  it("in flight: at most one TTL's worth of heartbeats await answers", async () => {
    const { clock, pending, session } = setup();
    session.start();
    await clock.advance(10_000);
    expect(pending).toHaveLength(3);
    session.stop();
  });

  it("unsafe ignore-lost-renewals: a master stays master however long no heartbeat is acknowledged", async () => {
    const { clock, pending, events, session } = setup({ unsafeIgnoreLostRenewals: true });
    session.start();
    pending[0]?.resolve(master(4));
    await flush();
    await clock.advance(60_000);
    expect(session.isMaster()).toBe(true);
    expect(events).toEqual(["promoted 4 @0"]);
  });

  it("zero margin: stands down exactly one TTL after the send", async () => {
    const { clock, pending, events, session } = setup({ marginMs: 0 });
    session.start();
    pending[0]?.resolve(master(4));
    await flush();
    await clock.advance(3_000);
    expect(events).toEqual(["promoted 4 @0", "demoted lease-lost 4 @3000"]);
  });
});
