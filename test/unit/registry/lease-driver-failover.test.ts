import { describe, expect, it } from "vitest";
import { LeaseDriver } from "../../../src/registry/lease-driver.js";
import type { OkResult } from "../../../src/registry/writer.js";
import { DEFAULT_SERVICE_CONFIG, type RegistryCommand } from "../../../src/registry/types.js";
import { Harness, spec } from "./registry-harness.js";

/** driverOn runs a lease driver over a real registry machine: its proposals apply at once, in order. */
function driverOn(h: Harness, proposed: RegistryCommand[], clock: { now: number } = { now: 0 }): LeaseDriver {
  const sm = h.sm;
  const driver = new LeaseDriver({
    registry: {
      eachInstance: () => sm.eachInstance(),
      instance: (s, i) => sm.instance(s, i),
      instances: (s) => sm.instances(s),
      getService: (n) => sm.getService(n),
      roleOf: (s, i) => sm.roleOf(s, i),
      masterOf: (s) => sm.masterOf(s),
      failbacksDue: (now) => sm.failbacksDue(now),
    },
    propose: async (cmd) => {
      proposed.push(cmd);
      const r = h.run(cmd);
      if (!r.ok) throw new Error(r.message);
      driver.onEvents(h.lastEvents);
      return r as OkResult;
    },
    logger: { debug() {}, warn() {} },
    leadership: { isLeader: () => true, readIndex: async () => 0 },
    clusterNow: () => h.at,
    monoMs: () => clock.now,
  });
  return driver;
}

describe("lease driver: failover", () => {
  it("lease driver: heartbeat positions stay in memory until an entry that can choose a master carries them; answers give role and epoch", async () => {
    const h = new Harness();
    h.ok({ op: "service.put", name: "db", config: { ...DEFAULT_SERVICE_CONFIG, mode: "master-slave" } });
    for (const id of ["m", "s1", "s2"]) h.ok({ op: "instance.register", instance: spec(id, { service: "db", priority: id === "s2" ? 0 : 1 }) });
    const proposed: RegistryCommand[] = [];
    const driver = driverOn(h, proposed);
    driver.onRole(true);
    // m already acts as master of epoch 2 (a previous leader told it so): it is told so at once.
    const beat = (id: string, replicationPosition: number, status = "") => ({ service: "db", id, status, note: "", replicationPosition, masterEpoch: id === "m" ? 2 : 0 });
    const answers = await driver.renew([beat("m", 100), beat("s1", 99), beat("s2", 50)]);
    // Plain heartbeats: no entry, positions only in memory.
    expect(proposed).toEqual([]);
    expect(h.sm.instance("db", "s1")?.replicationPosition).toBe(0);
    expect(answers.map((a) => [a.response?.id, a.response?.role, a.response?.epoch])).toEqual([
      ["m", "master", 2],
      ["s1", "standby", 2],
      ["s2", "standby", 2],
    ]);
    // The master reports critical: the health.set carries the positions, and s1 (99) beats s2 (50, better priority).
    const [crit] = await driver.renew([beat("m", 100, "critical")]);
    expect(proposed).toHaveLength(1);
    expect(proposed[0]).toMatchObject({ op: "health.set", positions: [{ service: "db", id: "m", position: 100 }, { service: "db", id: "s1", position: 99 }, { service: "db", id: "s2", position: 50 }] });
    expect(h.sm.masterOf("db")).toMatchObject({ master: "s1", epoch: h.index });
    expect(crit?.response).toMatchObject({ role: "standby", epoch: h.index, health: "critical" });
    // Positions now recorded are not sent again.
    expect(driver.positionsFor(["db"])).toEqual([]);
    driver.stop();
  });

  it("lease driver: a due fail-back is proposed once the hold-down passed", async () => {
    const h = new Harness();
    h.ok({ op: "service.put", name: "db", config: { ...DEFAULT_SERVICE_CONFIG, mode: "master-slave", failback: "p", failbackHoldDownMs: 1_000 } });
    for (const id of ["p", "s"]) h.ok({ op: "instance.register", instance: spec(id, { service: "db" }) });
    h.ok({ op: "health.set", changes: [{ service: "db", id: "p", health: "critical", note: "", ifModIndex: 0 }] });
    h.ok({ op: "health.set", changes: [{ service: "db", id: "p", health: "passing", note: "", ifModIndex: 0 }] });
    expect(h.sm.masterOf("db").master).toBe("s");
    const proposed: RegistryCommand[] = [];
    const driver = driverOn(h, proposed);
    driver.onRole(true);
    const check = () => (driver as unknown as { check(): Promise<void> }).check();
    await check();
    expect(proposed.filter((c) => c.op === "failover")).toEqual([]);
    h.at += 1_000;
    await check();
    expect(proposed.filter((c) => c.op === "failover")).toEqual([{ op: "failover", service: "db", to: "p", reason: "failback" }]);
    expect(h.sm.masterOf("db")).toMatchObject({ master: "p" });
    driver.stop();
  });

  describe("handover fence: a newly chosen master is told so only once its predecessor has surely stood down", () => {
    const TTL = 10_000;
    const beat = (id: string, masterEpoch = 0, status = "") => ({ service: "db", id, status, note: "", masterEpoch });
    function setup() {
      const h = new Harness();
      h.ok({ op: "service.put", name: "db", config: { ...DEFAULT_SERVICE_CONFIG, mode: "master-slave" } });
      for (const id of ["m", "s"]) h.ok({ op: "instance.register", instance: spec(id, { service: "db", ttlMs: TTL }) });
      const clock = { now: 1_000 };
      const proposed: RegistryCommand[] = [];
      const driver = driverOn(h, proposed, clock);
      driver.onRole(true);
      return { h, clock, driver };
    }
    const roleOf = async (driver: LeaseDriver, b: ReturnType<typeof beat>) => (await driver.renew([b]))[0]?.response?.role;

    it("fence: a new leader tells a master that does not yet act so only one TTL after its election; one that acts already, at once", async () => {
      const { h, clock, driver } = setup();
      const epoch = h.sm.masterOf("db").epoch;
      expect(h.sm.masterOf("db").master).toBe("m");
      // A previous leader may have told another instance "master" just before this one was elected.
      expect(await roleOf(driver, beat("m"))).toBe("standby");
      expect(await roleOf(driver, beat("m", epoch))).toBe("master");
      driver.stop();
      const fresh = setup();
      fresh.clock.now += TTL - 1;
      expect(await roleOf(fresh.driver, beat("m"))).toBe("standby");
      fresh.clock.now += 1;
      expect(await roleOf(fresh.driver, beat("m"))).toBe("master");
      fresh.driver.stop();
      void clock;
    });

    it("fence: after a switchover the new master is told standby until the old master's last lease ran out, the old one standby at once", async () => {
      const { h, clock, driver } = setup();
      const e1 = h.sm.masterOf("db").epoch;
      expect(await roleOf(driver, beat("m", e1))).toBe("master"); // acked at t=1000, acts until before 11000
      clock.now = 3_000;
      h.ok({ op: "failover", service: "db", to: "s", reason: "switchover" });
      const e2 = h.sm.masterOf("db").epoch;
      expect(h.sm.masterOf("db").master).toBe("s");
      expect(await roleOf(driver, beat("m", e1))).toBe("standby");
      expect(await roleOf(driver, beat("s"))).toBe("standby");
      clock.now = 1_000 + TTL - 1;
      expect(await roleOf(driver, beat("s"))).toBe("standby");
      clock.now = 1_000 + TTL;
      expect(await roleOf(driver, beat("s"))).toBe("master");
      expect(driver.masterFence("db")).toEqual({ id: "s", until: 1_000 + TTL + TTL });
      // Once it acts, it stays master; the old master stays standby.
      clock.now += 100;
      expect(await roleOf(driver, beat("s", e2))).toBe("master");
      expect(await roleOf(driver, beat("m"))).toBe("standby");
      driver.stop();
    });

    it("fence: a failover after the master's lease expired adds no wait (its last acknowledged lease ended before the expiry)", async () => {
      const { h, clock, driver } = setup();
      const e1 = h.sm.masterOf("db").epoch;
      expect(await roleOf(driver, beat("m", e1))).toBe("master");
      clock.now = 1_000 + TTL; // m's lease, renewed at 1000, expires now
      h.ok({ op: "health.set", changes: [{ service: "db", id: "m", health: "critical", note: "lease expired", ifModIndex: 0 }] });
      expect(h.sm.masterOf("db").master).toBe("s");
      expect(await roleOf(driver, beat("s"))).toBe("master");
      driver.stop();
    });
  });
});
