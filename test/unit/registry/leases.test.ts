import { describe, expect, it } from "vitest";
import {
  LEASE_EXPIRE_BATCH_MAX,
  LEASE_EXPIRED_NOTE_PREFIX,
  LEASE_REAP_BATCH_MAX,
  LEASE_RETRY_MS,
  LeaseTracker,
} from "../../../src/registry/lease-tracker.js";
import { TTL_MS_RANGE } from "../../../src/registry/limits.js";
import type { Instance, RegistryEvent } from "../../../src/registry/types.js";
import { instance } from "../../fixtures/registry.js";

const TTL = 5_000;

/** inst is instance "a" of service "web" with a TTL of TTL, passing. */
const inst = (over: Partial<Instance> = {}): Instance => instance("a", { ttlMs: TTL, ...over });

const put = (instance: Instance): RegistryEvent => ({ index: instance.modIndex, kind: "instance", type: "put", instance, previousHealth: undefined });

/** leaderWith returns a tracker that took over at `now` with the given instances. */
function leaderWith(now: number, ...instances: Instance[]): LeaseTracker {
  const t = new LeaseTracker();
  t.becomeLeader(now, instances);
  return t;
}

describe("lease tracker", () => {
  it("leases: limits are sane next to the TTL range", () => {
    // A retry must come well within the shortest TTL's lifetime of a critical instance, and after an election.
    expect(LEASE_RETRY_MS).toBeGreaterThanOrEqual(600);
    expect(LEASE_RETRY_MS).toBeLessThanOrEqual(TTL_MS_RANGE[0]);
    expect(LEASE_EXPIRE_BATCH_MAX).toBeGreaterThan(0);
    expect(LEASE_REAP_BATCH_MAX).toBeGreaterThan(0);
  });

  it("leases: expiry comes exactly ttl after the last renewal, not before", () => {
    const t = leaderWith(0, inst());
    expect(t.renew(1_000, "web", "a")).toEqual({ ok: true, ttlMs: TTL, deadline: 1_000 + TTL, change: null });
    expect(t.due(1_000 + TTL - 1, 0).expire).toEqual([]);
    const { expire } = t.due(1_000 + TTL, 0);
    expect(expire).toEqual([
      { service: "web", id: "a", health: "critical", note: `${LEASE_EXPIRED_NOTE_PREFIX} no heartbeat for ${TTL}ms`, ifModIndex: 1 },
    ]);
  });

  it("leases: a new leader gives every lease a full ttl from its takeover", () => {
    // The old leader acknowledged a heartbeat at its time 9_999 and stepped down at once. The new
    // leader's monotonic clock is unrelated (it reads 500_000 at takeover) and it never saw that
    // heartbeat; yet it must not expire the instance before ttl has passed since it took over,
    // which is later than ttl after the acknowledged heartbeat.
    const old = leaderWith(0, inst());
    expect(old.renew(9_999, "web", "a").ok).toBe(true);
    old.stepDown();
    expect(old.isLeading).toBe(false);
    expect(old.size).toBe(0);
    expect(old.due(1e12, 1e12)).toEqual({ expire: [], reap: [] });
    expect(old.renew(10_000, "web", "a")).toEqual({ ok: false, reason: "not-leader" });

    const takeover = 500_000;
    const next = leaderWith(takeover, inst());
    for (const now of [takeover, takeover + 1, takeover + TTL - 1]) expect(next.due(now, 0).expire).toEqual([]);
    expect(next.due(takeover + TTL, 0).expire.map((c) => c.id)).toEqual(["a"]);
  });

  it("leases: renew of an unknown instance says not-found and changes nothing", () => {
    const t = leaderWith(0, inst());
    expect(t.renew(1, "web", "b")).toEqual({ ok: false, reason: "not-found" });
    expect(t.renew(1, "api", "a")).toEqual({ ok: false, reason: "not-found" });
    expect(t.size).toBe(1);
  });

  it("leases: an expiry is not proposed again while in flight, and again after LEASE_RETRY_MS", () => {
    const t = leaderWith(0, inst());
    expect(t.due(TTL, 0).expire).toHaveLength(1);
    expect(t.due(TTL + 1, 0).expire).toEqual([]);
    expect(t.due(TTL + LEASE_RETRY_MS - 1, 0).expire).toEqual([]);
    // The proposal was lost (no event came): propose again.
    expect(t.due(TTL + LEASE_RETRY_MS, 0).expire).toHaveLength(1);
    expect(t.due(TTL + LEASE_RETRY_MS + 1, 0).expire).toEqual([]);
  });

  it("leases: once the expiry applies the instance is critical and never expired again", () => {
    const t = leaderWith(0, inst());
    const [change] = t.due(TTL, 0).expire;
    expect(change).toBeDefined();
    t.observe(TTL + 10, [put(inst({ health: "critical", note: change?.note ?? "", healthSince: 77, modIndex: 2 }))]);
    for (const now of [TTL + 20, TTL + LEASE_RETRY_MS * 5]) expect(t.due(now, 0).expire).toEqual([]);
  });

  it("leases: a re-registration after an expiry decision gets a fresh lease and the stale expiry is conditional", () => {
    const t = leaderWith(0, inst());
    const [stale] = t.due(TTL, 0).expire;
    expect(stale?.ifModIndex).toBe(1);
    // A re-registration (new createIndex) applied before the expiry: the expiry's ifModIndex no
    // longer matches, so the state machine drops it; the tracker starts a full lease.
    t.observe(TTL + 100, [put(inst({ createIndex: 3, modIndex: 3 }))]);
    expect(t.due(TTL + 100 + TTL - 1, 0).expire).toEqual([]);
    expect(t.due(TTL + 100 + TTL, 0).expire).toEqual([expect.objectContaining({ id: "a", ifModIndex: 3 })]);
  });

  it("leases: an event for the instance ends the in-flight mark, so a failed conditional expiry is redone at once", () => {
    const t = leaderWith(0, inst());
    expect(t.due(TTL, 0).expire).toEqual([expect.objectContaining({ ifModIndex: 1 })]);
    // An operator's warning lands first: the expiry (ifModIndex 1) will not apply, and the tracker
    // knows it from the event, without waiting LEASE_RETRY_MS.
    t.observe(TTL + 10, [put(inst({ health: "warning", note: "op", modIndex: 2 }))]);
    expect(t.due(TTL + 20, 0).expire).toEqual([expect.objectContaining({ ifModIndex: 2 })]);
  });

  it("leases: a re-registration that leaves health alone (e.g. a new address) starts a full lease", () => {
    const t = leaderWith(0, inst());
    t.observe(3_000, [put(inst({ address: "10.0.0.2", modIndex: 2 }))]);
    expect(t.due(3_000 + TTL - 1, 0).expire).toEqual([]);
    expect(t.due(3_000 + TTL, 0).expire).toEqual([expect.objectContaining({ ifModIndex: 2 })]);
  });

  it("leases: a health change keeps the deadline; a delete forgets the instance", () => {
    const t = leaderWith(0, inst(), inst({ id: "b" }));
    t.renew(1_000, "web", "a");
    // An operator marks a warning at 3_000: not a heartbeat, so the deadline stays 6_000.
    t.observe(3_000, [put(inst({ health: "warning", note: "disk", modIndex: 4 }))]);
    expect(t.due(5_999, 0).expire.map((c) => c.id)).toEqual(["b"]);
    expect(t.due(6_000, 0).expire).toEqual([expect.objectContaining({ id: "a", ifModIndex: 4 })]);
    t.observe(6_001, [{ index: 5, kind: "instance", type: "delete", service: "web", id: "b" }]);
    expect(t.size).toBe(1);
    expect(t.renew(6_002, "web", "b")).toEqual({ ok: false, reason: "not-found" });
  });

  it("leases: deleting a service forgets its instances; other services are kept", () => {
    const t = leaderWith(0, inst(), inst({ id: "b" }), inst({ service: "api" }));
    t.observe(1, [{ index: 9, kind: "service", type: "delete", name: "web" }]);
    expect(t.size).toBe(1);
    expect(t.renew(2, "api", "a").ok).toBe(true);
  });

  it("leases: becomeLeader answers the longest TTL it seeded (0 for none), which the driver fences masters with", () => {
    expect(new LeaseTracker().becomeLeader(0, [inst({ id: "x" }), inst({ id: "y", ttlMs: 3 * TTL }), inst({ service: "api", ttlMs: 2 * TTL })])).toBe(3 * TTL);
    expect(new LeaseTracker().becomeLeader(0, [])).toBe(0);
  });

  it("leases: events are ignored while not leading, and becomeLeader starts from the given state", () => {
    const t = new LeaseTracker();
    t.observe(0, [put(inst())]);
    expect(t.size).toBe(0);
    expect(t.becomeLeader(100, [inst(), inst({ id: "b" })])).toBe(TTL);
    expect(t.size).toBe(2);
    t.observe(200, [put(inst({ id: "c", createIndex: 7, modIndex: 7 }))]);
    expect(t.due(100 + TTL - 1, 0).expire.map((c) => c.id)).toEqual([]);
    expect(t.due(100 + TTL, 0).expire.map((c) => c.id).sort()).toEqual(["a", "b"]);
    expect(t.due(200 + TTL - 1, 0).expire.map((c) => c.id)).toEqual([]);
    expect(t.due(200 + TTL, 0).expire.map((c) => c.id)).toEqual(["c"]);
  });

  it("leases: a heartbeat status is proposed only when it differs from replicated health, once while in flight", () => {
    const t = leaderWith(0, inst());
    expect(t.renew(10, "web", "a", { health: "passing", note: "" })).toMatchObject({ ok: true, change: null });
    const r = t.renew(20, "web", "a", { health: "warning", note: "slow" });
    expect(r).toMatchObject({ ok: true, deadline: 20 + TTL });
    // Status changes are unconditional (ifModIndex 0): the instance's latest report wins.
    expect(r.ok && r.change).toEqual({ service: "web", id: "a", health: "warning", note: "slow", ifModIndex: 0 });
    // Same status again while the first is in flight: renewed, nothing new to propose.
    expect(t.renew(30, "web", "a", { health: "warning", note: "slow" })).toMatchObject({ deadline: 30 + TTL, change: null });
    // A different status is a new proposal.
    expect(t.renew(40, "web", "a", { health: "warning", note: "slower" })).toMatchObject({
      change: { health: "warning", note: "slower" },
    });
    // Lost proposal: the same status after LEASE_RETRY_MS is proposed again.
    expect(t.renew(40 + LEASE_RETRY_MS, "web", "a", { health: "warning", note: "slower" })).toMatchObject({
      change: { note: "slower" },
    });
    // Applied: now the replicated health says it, nothing to propose; the deadline is the heartbeat's.
    t.observe(2_000, [put(inst({ health: "warning", note: "slower", modIndex: 6 }))]);
    expect(t.renew(2_100, "web", "a", { health: "warning", note: "slower" })).toMatchObject({ change: null });
    expect(t.renew(2_200, "web", "a", { health: "passing", note: "" })).toMatchObject({ change: { health: "passing", ifModIndex: 0 } });
    expect(t.due(2_200 + TTL - 1, 0).expire).toEqual([]);
  });

  it("leases: of pipelined status heartbeats the last wins, compared with the change still in flight", () => {
    const t = leaderWith(0, inst());
    expect(t.renew(10, "web", "a", { health: "warning", note: "slow" })).toMatchObject({ change: { health: "warning" } });
    // Before the warning applies, a passing report: replicated health is still passing, but the
    // change in flight will make it warning, so passing must be proposed after it.
    expect(t.renew(11, "web", "a", { health: "passing", note: "" })).toMatchObject({ change: { health: "passing", ifModIndex: 0 } });
    expect(t.renew(12, "web", "a", { health: "passing", note: "" })).toMatchObject({ change: null });
  });

  it("leases: a plain heartbeat revives an expired instance, not one that reported itself critical", () => {
    const t = leaderWith(0, inst(), inst({ id: "b", health: "critical", note: "db down", modIndex: 2 }));
    const [expiry] = t.due(TTL, 0).expire;
    expect(expiry?.id).toBe("a");
    t.observe(TTL + 5, [put(inst({ health: "critical", note: expiry?.note ?? "", modIndex: 3 }))]);
    expect(t.renew(TTL + 10, "web", "a")).toMatchObject({ change: { health: "passing", note: "", ifModIndex: 0 } });
    expect(t.renew(TTL + 11, "web", "a")).toMatchObject({ change: null });
    expect(t.renew(TTL + 12, "web", "b")).toMatchObject({ change: null });
    expect(t.renew(TTL + 13, "web", "b", { health: "passing", note: "" })).toMatchObject({ change: { health: "passing" } });
  });

  it("leases: leaving critical with a passed deadline starts a fresh lease (no flapping)", () => {
    const t = leaderWith(0, inst());
    t.due(TTL, 0);
    t.observe(TTL + 1, [put(inst({ health: "critical", note: `${LEASE_EXPIRED_NOTE_PREFIX} x`, modIndex: 2 }))]);
    // An identical re-registration (same createIndex) or an operator sets passing long after.
    t.observe(20_000, [put(inst({ health: "passing", note: "", modIndex: 3 }))]);
    expect(t.due(20_000 + TTL - 1, 0).expire).toEqual([]);
    expect(t.due(20_000 + TTL, 0).expire).toEqual([expect.objectContaining({ ifModIndex: 3 })]);
  });

  it("leases: reap comes when critical for deregisterCriticalAfterMs by the wall clock, once while in flight", () => {
    const after = 60_000;
    const wall0 = 1_700_000_000_000;
    const t = leaderWith(0, inst({ deregisterCriticalAfterMs: after }), inst({ id: "never", deregisterCriticalAfterMs: 0 }));
    const { expire } = t.due(TTL, wall0);
    expect(expire).toHaveLength(2);
    t.observe(TTL + 1, [
      put(inst({ health: "critical", note: "x", healthSince: wall0, modIndex: 2, deregisterCriticalAfterMs: after })),
      put(inst({ id: "never", health: "critical", note: "x", healthSince: wall0, modIndex: 2 })),
    ]);
    // The monotonic clock is irrelevant for reaping; the wall clock decides.
    expect(t.due(1e9, wall0 + after - 1).reap).toEqual([]);
    expect(t.due(1e9, wall0 + after).reap).toEqual([{ service: "web", id: "a" }]);
    expect(t.due(1e9 + 1, wall0 + after + 1).reap).toEqual([]);
    expect(t.due(1e9 + LEASE_RETRY_MS, wall0 + after + 2).reap).toEqual([{ service: "web", id: "a" }]);
    // Applied: the instance is gone.
    t.observe(1e9 + LEASE_RETRY_MS + 1, [{ index: 3, kind: "instance", type: "delete", service: "web", id: "a" }]);
    expect(t.due(1e10, wall0 + 1e10).reap).toEqual([]);
  });

  it("leases: a new leader reaps by replicated healthSince, not by its takeover time", () => {
    const wall0 = 1_700_000_000_000;
    const t = leaderWith(0, inst({ health: "critical", note: "x", healthSince: wall0, deregisterCriticalAfterMs: 10_000 }));
    expect(t.due(0, wall0 + 10_000).reap).toEqual([{ service: "web", id: "a" }]);
  });

  it("leases: one due() answer holds at most LEASE_EXPIRE_BATCH_MAX expiries; the rest follow", () => {
    const n = LEASE_EXPIRE_BATCH_MAX + 5;
    const t = leaderWith(
      0,
      ...Array.from({ length: n }, (_, i) => inst({ id: `i${i}` })),
    );
    expect(t.due(TTL, 0).expire).toHaveLength(LEASE_EXPIRE_BATCH_MAX);
    expect(t.due(TTL, 0).expire).toHaveLength(5);
    expect(t.due(TTL, 0).expire).toHaveLength(0);
  });

  it("leases: one due() answer holds at most LEASE_REAP_BATCH_MAX reaps", () => {
    const n = LEASE_REAP_BATCH_MAX + 1;
    const t = leaderWith(
      0,
      ...Array.from({ length: n }, (_, i) => inst({ id: `i${i}`, health: "critical", deregisterCriticalAfterMs: 1 })),
    );
    expect(t.due(0, 10).reap).toHaveLength(LEASE_REAP_BATCH_MAX);
    expect(t.due(0, 10).reap).toHaveLength(1);
  });

  describe("a takeover seeded a slice at a time", () => {
    /** liveRegistry is a registry as the driver hands it over: a live walk (services, then ids) and a lookup. */
    function liveRegistry(...instances: Instance[]) {
      const byService = new Map<string, Map<string, Instance>>();
      for (const i of instances) {
        if (!byService.has(i.service)) byService.set(i.service, new Map());
        byService.get(i.service)?.set(i.id, i);
      }
      return {
        byService,
        *each(): Generator<Instance> {
          for (const m of byService.values()) yield* m.values();
        },
        find: (service: string, id: string) => byService.get(service)?.get(id),
      };
    }

    it("leases: seedSome seeds up to its count per call, and the longest TTL is known once all are seeded", () => {
      const reg = liveRegistry(inst(), inst({ id: "b", ttlMs: 2 * TTL }), inst({ id: "c" }), inst({ service: "api" }), inst({ service: "api", id: "b" }));
      const t = new LeaseTracker();
      t.beginTakeover(100, reg.each(), reg.find);
      expect([t.isLeading, t.isSeeding, t.size]).toEqual([true, true, 0]);
      expect(t.seedSome(2)).toBe(false);
      expect(t.size).toBe(2);
      expect(t.seedSome(2)).toBe(false);
      expect(t.seedSome(2)).toBe(true);
      expect([t.isSeeding, t.size, t.ttlMax]).toEqual([false, 5, 2 * TTL]);
      // Every lease runs from the takeover, not from when its slice ran.
      expect(t.due(100 + TTL - 1, 0).expire).toEqual([]);
      expect(t.due(100 + TTL, 0).expire.map((c) => `${c.service}/${c.id}`).sort()).toEqual(["api/a", "api/b", "web/a", "web/c"]);
    });

    it("leases: a renewal of an instance not seeded yet seeds it from the registry first; the walk then skips it", () => {
      const reg = liveRegistry(inst(), inst({ id: "b" }));
      const t = new LeaseTracker();
      t.beginTakeover(0, reg.each(), reg.find);
      const r = t.renew(3_000, "web", "b");
      expect(r.ok && r.deadline).toBe(3_000 + TTL);
      expect(t.renew(3_000, "web", "zz")).toEqual({ ok: false, reason: "not-found" });
      expect(t.seedSome(10)).toBe(true);
      expect(t.size).toBe(2);
      expect(t.due(TTL, 0).expire.map((c) => c.id)).toEqual(["a"]);
      expect(t.due(3_000 + TTL - 1, 0).expire.map((c) => c.id)).not.toContain("b");
      expect(t.due(3_000 + TTL, 0).expire.map((c) => c.id)).toContain("b");
    });

    it("leases: an instance changed before it was seeded is tracked from the change, as a registration (later, never sooner)", () => {
      const before = inst({ id: "b" });
      const reg = liveRegistry(inst(), before);
      const t = new LeaseTracker();
      t.beginTakeover(0, reg.each(), reg.find);
      expect(t.seedSome(1)).toBe(false);
      const after = { ...before, health: "warning" as const, note: "slow", modIndex: 5 };
      reg.byService.get("web")?.set("b", after);
      t.observe(400, [put(after)]);
      expect(t.seedSome(10)).toBe(true);
      expect(t.size).toBe(2);
      // Seeded all at once, b would keep the takeover's deadline (TTL); tracked from the change, it runs to 400 + TTL.
      expect(t.due(TTL, 0).expire.map((c) => c.id)).toEqual(["a"]);
      expect(t.due(400 + TTL, 0).expire.map((c) => c.id)).toEqual(["b"]);
    });

    it("leases: the instances of a service deleted while the walk was inside it are not seeded", () => {
      const reg = liveRegistry(inst(), inst({ id: "b" }), inst({ id: "c" }), inst({ service: "api" }));
      const t = new LeaseTracker();
      t.beginTakeover(0, reg.each(), reg.find);
      expect(t.seedSome(1)).toBe(false);
      // The registry drops the service's record; the walk still holds the record's map of instances.
      reg.byService.delete("web");
      t.observe(1, [{ index: 9, kind: "service", type: "delete", name: "web" }]);
      expect(t.seedSome(10)).toBe(true);
      expect(t.size).toBe(1);
      expect(t.renew(2, "api", "a").ok).toBe(true);
      expect(t.renew(2, "web", "b")).toEqual({ ok: false, reason: "not-found" });
    });

    it("leases: due() seeds whatever is left first, so its answer is the whole table's (a reap included)", () => {
      const reg = liveRegistry(inst(), inst({ id: "b", health: "critical", note: "down", deregisterCriticalAfterMs: 1_000, healthSince: 0 }));
      const t = new LeaseTracker();
      t.beginTakeover(0, reg.each(), reg.find);
      expect(t.due(0, 1_000)).toEqual({ expire: [], reap: [{ service: "web", id: "b" }] });
      expect([t.isSeeding, t.size]).toEqual([false, 2]);
    });

    it("leases: stepping down ends the seeding; becomeLeader replaces a takeover still seeding", () => {
      const reg = liveRegistry(inst(), inst({ id: "b" }));
      const t = new LeaseTracker();
      t.beginTakeover(0, reg.each(), reg.find);
      t.stepDown();
      expect([t.isLeading, t.isSeeding, t.size]).toEqual([false, false, 0]);
      t.beginTakeover(0, reg.each(), reg.find);
      expect(t.becomeLeader(10, [inst({ service: "api" })])).toBe(TTL);
      expect([t.isSeeding, t.size]).toEqual([false, 1]);
    });
  });
});
