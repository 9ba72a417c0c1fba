import { describe, expect, it } from "vitest";
import { EXITED_PROCESSES_MAX, LeaseDriver, MASTER_PROCESSES_TRACKED_MAX } from "../../../src/registry/lease-driver.js";
import type { OkResult } from "../../../src/registry/writer.js";
import { DEFAULT_SERVICE_CONFIG } from "../../../src/registry/types.js";
import { Harness, spec } from "./registry-harness.js";

/**
 * The handover fence after a supervised process's exit (lease-driver.ts, fenceOf): an exit report
 * lifts the fence for the answers its process received, and for nothing else. Each test is a
 * schedule in which a careless rule would let two masters act at once.
 */
const TTL = 10_000;

function setup() {
  const h = new Harness();
  h.ok({ op: "service.put", name: "db", config: { ...DEFAULT_SERVICE_CONFIG, mode: "master-slave" } });
  for (const id of ["m", "s"]) h.ok({ op: "instance.register", instance: spec(id, { service: "db", ttlMs: TTL }) });
  const clock = { now: 1_000 };
  const sm = h.sm;
  const driver: LeaseDriver = new LeaseDriver({
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
  driver.onRole(true);
  // Past the new leader's own fence (one TTL from its election), so only the answers it gave count.
  clock.now += TTL;
  return { h, clock, driver, epoch: h.sm.masterOf("db").epoch };
}

interface Beat {
  masterEpoch?: number;
  status?: string;
  processToken?: string;
  exitedProcess?: string;
}
const beat = (id: string, b: Beat = {}) => ({ service: "db", id, status: b.status ?? "", note: "", masterEpoch: b.masterEpoch ?? 0, processToken: b.processToken ?? "", exitedProcess: b.exitedProcess ?? "" });
const roleOf = async (driver: LeaseDriver, id: string, b: Beat = {}) => (await driver.renew([beat(id, b)]))[0]?.response?.role;

describe("lease driver: exit reports and the handover fence", () => {
  it("exit: the master's process exits and its supervisor says so: the standby is told master at once", async () => {
    const { h, clock, driver, epoch } = setup();
    expect(await roleOf(driver, "m", { masterEpoch: epoch, processToken: "p1" })).toBe("master");
    clock.now += 500;
    // The supervisor's own heartbeats speak for the same process.
    expect(await roleOf(driver, "m", { status: "passing", processToken: "p1" })).toBe("master");
    clock.now += 500;
    expect(await roleOf(driver, "m", { status: "critical", processToken: "p1", exitedProcess: "p1" })).toBe("standby");
    expect(h.sm.masterOf("db").master).toBe("s");
    expect(await roleOf(driver, "s")).toBe("master");
    driver.stop();
  });

  it("exit: the same critical without an exit report keeps the fence (the process may still act)", async () => {
    const { h, clock, driver, epoch } = setup();
    expect(await roleOf(driver, "m", { masterEpoch: epoch, processToken: "p1" })).toBe("master");
    const ackedAt = clock.now;
    clock.now += 1_000;
    await roleOf(driver, "m", { status: "critical", processToken: "p1" });
    expect(h.sm.masterOf("db").master).toBe("s");
    expect(await roleOf(driver, "s")).toBe("standby");
    clock.now = ackedAt + TTL;
    expect(await roleOf(driver, "s")).toBe("master");
    driver.stop();
  });

  it("exit: an orphan of a killed supervisor still acts as master: the exit of the new process lifts nothing of the orphan's lease", async () => {
    const { h, clock, driver, epoch } = setup();
    // p0: the process of a supervisor that was SIGKILLed; its child lives on and heartbeats as master.
    expect(await roleOf(driver, "m", { masterEpoch: epoch, processToken: "p0" })).toBe("master");
    const orphanAckedAt = clock.now;
    clock.now += 2_000;
    // A new supervisor of the same instance starts p1, which is told master too (same instance, same epoch).
    expect(await roleOf(driver, "m", { masterEpoch: epoch, processToken: "p1" })).toBe("master");
    clock.now += 100;
    await roleOf(driver, "m", { status: "critical", processToken: "p1", exitedProcess: "p1" });
    expect(h.sm.masterOf("db").master).toBe("s");
    // s must wait for p0's lease: p0 stands down by itself only at its own deadline.
    expect(await roleOf(driver, "s")).toBe("standby");
    clock.now = orphanAckedAt + TTL - 1;
    expect(await roleOf(driver, "s")).toBe("standby");
    clock.now = orphanAckedAt + TTL;
    expect(await roleOf(driver, "s")).toBe("master");
    driver.stop();
  });

  it("exit: answers given to heartbeats that named no process are never lifted", async () => {
    const { h, clock, driver, epoch } = setup();
    expect(await roleOf(driver, "m", { masterEpoch: epoch })).toBe("master"); // e.g. an SDK session outside any supervisor
    const ackedAt = clock.now;
    expect(await roleOf(driver, "m", { masterEpoch: epoch, processToken: "p1" })).toBe("master");
    clock.now += 100;
    await roleOf(driver, "m", { status: "critical", exitedProcess: "p1" });
    expect(h.sm.masterOf("db").master).toBe("s");
    expect(await roleOf(driver, "s")).toBe("standby");
    clock.now = ackedAt + TTL;
    expect(await roleOf(driver, "s")).toBe("master");
    driver.stop();
  });

  it("exit: a report about another instance's process, or a report without critical, lifts nothing", async () => {
    const { h, clock, driver, epoch } = setup();
    expect(await roleOf(driver, "m", { masterEpoch: epoch, processToken: "p1" })).toBe("master");
    clock.now += 100;
    // s's supervisor names m's token: it speaks for s, not for the master.
    await roleOf(driver, "s", { status: "critical", exitedProcess: "p1" });
    await roleOf(driver, "s", { status: "passing" });
    // Not critical: the driver ignores the report (the API refuses it: INVALID_ARGUMENT exited_process).
    // A warning master is still master: this answer renews its lease.
    expect(await roleOf(driver, "m", { status: "warning", processToken: "p1", exitedProcess: "p1" })).toBe("master");
    const ackedAt = clock.now;
    h.ok({ op: "failover", service: "db", to: "s", reason: "switchover" });
    expect(await roleOf(driver, "s")).toBe("standby");
    clock.now = ackedAt + TTL;
    expect(await roleOf(driver, "s")).toBe("master");
    driver.stop();
  });

  it("exit: a report that reaches a leader elected after the master's last answers keeps that leader's own fence", async () => {
    const { h, clock, driver, epoch } = setup();
    expect(await roleOf(driver, "m", { masterEpoch: epoch, processToken: "p1" })).toBe("master");
    // Leadership moves away and back: the answers above belong to an earlier term.
    driver.onRole(false);
    driver.onRole(true);
    const electedAt = clock.now;
    clock.now += 100;
    await roleOf(driver, "m", { status: "critical", processToken: "p1", exitedProcess: "p1" });
    expect(h.sm.masterOf("db").master).toBe("s");
    expect(await roleOf(driver, "s")).toBe("standby");
    clock.now = electedAt + TTL;
    expect(await roleOf(driver, "s")).toBe("master");
    driver.stop();
  });

  it("exit: an earlier leader's answer to another process still fences after this leader lifted its own answers", async () => {
    const { h, clock, driver, epoch } = setup();
    // p0 was told master by the previous leader and then went quiet towards this one (cut off, or an orphan).
    expect(await roleOf(driver, "m", { masterEpoch: epoch, processToken: "p0" })).toBe("master");
    driver.onRole(false);
    driver.onRole(true);
    const electedAt = clock.now;
    clock.now += 100;
    // p1 already acts as master of the epoch: told so at once, and recorded by this leader.
    expect(await roleOf(driver, "m", { masterEpoch: epoch, processToken: "p1" })).toBe("master");
    clock.now += 100;
    await roleOf(driver, "m", { status: "critical", processToken: "p1", exitedProcess: "p1" });
    expect(h.sm.masterOf("db").master).toBe("s");
    // This leader knows nothing of p0; only its election fence covers it.
    expect(await roleOf(driver, "s")).toBe("standby");
    clock.now = electedAt + TTL - 1;
    expect(await roleOf(driver, "s")).toBe("standby");
    clock.now = electedAt + TTL;
    expect(await roleOf(driver, "s")).toBe("master");
    driver.stop();
  });

  it("exit: a late heartbeat of the dead process, answered after the report, does not put the fence back", async () => {
    const { h, clock, driver, epoch } = setup();
    expect(await roleOf(driver, "m", { masterEpoch: epoch, processToken: "p1" })).toBe("master");
    clock.now += 100;
    // The report arrives first, with a status that does not demote (the instance is still master) ...
    await driver.renew([beat("m", { status: "critical", processToken: "p1", exitedProcess: "p1" }), beat("m", { masterEpoch: epoch, processToken: "p1" })]);
    expect(h.sm.masterOf("db").master).toBe("s");
    expect(await roleOf(driver, "s")).toBe("master");
    void h;
    driver.stop();
  });

  it("exit: at most MASTER_PROCESSES_TRACKED_MAX processes are told apart; past that no exit lifts the fence", async () => {
    const { h, clock, driver, epoch } = setup();
    for (let i = 0; i < MASTER_PROCESSES_TRACKED_MAX; i++) expect(await roleOf(driver, "m", { masterEpoch: epoch, processToken: `p${i}` })).toBe("master");
    for (let i = 0; i < MASTER_PROCESSES_TRACKED_MAX - 1; i++) await driver.renew([beat("m", { status: "warning", processToken: `p${i}` })]);
    // Exactly at the limit: the reports of all of them lift the fence.
    const lifted = setup();
    for (let i = 0; i < MASTER_PROCESSES_TRACKED_MAX; i++) await roleOf(lifted.driver, "m", { masterEpoch: lifted.epoch, processToken: `p${i}` });
    for (let i = 0; i < MASTER_PROCESSES_TRACKED_MAX - 1; i++) await lifted.driver.renew([beat("m", { status: "critical", processToken: `p${i}`, exitedProcess: `p${i}` })]);
    await lifted.driver.renew([beat("m", { status: "critical", exitedProcess: `p${MASTER_PROCESSES_TRACKED_MAX - 1}` })]);
    expect(await roleOf(lifted.driver, "s")).toBe("master");
    lifted.driver.stop();
    // One more process: the answers are folded under "no process", which no report lifts.
    expect(await roleOf(driver, "m", { masterEpoch: epoch, processToken: "extra" })).toBe("master");
    const ackedAt = clock.now;
    for (let i = 0; i < MASTER_PROCESSES_TRACKED_MAX; i++) await driver.renew([beat("m", { status: "critical", exitedProcess: `p${i}` })]);
    await driver.renew([beat("m", { status: "critical", exitedProcess: "extra" })]);
    expect(h.sm.masterOf("db").master).toBe("s");
    expect(await roleOf(driver, "s")).toBe("standby");
    clock.now = ackedAt + TTL;
    expect(await roleOf(driver, "s")).toBe("master");
    expect(EXITED_PROCESSES_MAX).toBeGreaterThanOrEqual(MASTER_PROCESSES_TRACKED_MAX);
    driver.stop();
  });
});
