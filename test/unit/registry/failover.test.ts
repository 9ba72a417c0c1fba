import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import { DEFAULT_SERVICE_CONFIG, type Health, type RegistryCommand, type RegistryEvent, type ServiceConfig } from "../../../src/registry/types.js";
import { Harness, spec, T0 } from "./registry-harness.js";

const MS: ServiceConfig = { ...DEFAULT_SERVICE_CONFIG, mode: "master-slave" };
const set = (id: string, health: Health, note = ""): RegistryCommand => ({ op: "health.set", changes: [{ service: "db", id, health, note, ifModIndex: 0 }] });
const pos = (entries: Record<string, number>) => Object.entries(entries).map(([id, position]) => ({ service: "db", id, position }));
const masterEvents = (h: Harness) => h.events.flat().filter((e): e is Extract<RegistryEvent, { kind: "master" }> => e.kind === "master");

/** db builds a master-slave service "db" with the given instances registered in order. */
function db(ids: string[], config: Partial<ServiceConfig> = {}, priorities: Record<string, number> = {}): Harness {
  const h = new Harness();
  h.ok({ op: "service.put", name: "db", config: { ...MS, ...config } });
  for (const id of ids) h.ok({ op: "instance.register", instance: spec(id, { service: "db", priority: priorities[id] ?? 0 }) });
  return h;
}

describe("failover rules in apply", () => {
  it("failover: the first instance to pass becomes master at the index of its registration; the others are standbys", () => {
    const h = db(["b", "a"]);
    expect(h.sm.masterOf("db")).toEqual({ master: "b", epoch: 2, since: T0 });
    expect(masterEvents(h)).toEqual([{ index: 2, kind: "master", type: "put", service: "db", master: "b", previous: "", epoch: 2, reason: "promoted" }]);
    expect(h.sm.roleOf("db", "b")).toBe("master");
    expect(h.sm.roleOf("db", "a")).toBe("standby");
    // The registration's instance event carries the role after the entry.
    expect(h.events[1]?.find((e) => e.kind === "instance")).toMatchObject({ role: "master" });
    expect(h.lastEvents.find((e) => e.kind === "instance")).toMatchObject({ role: "standby" });
  });

  it("failover: the master turning critical promotes the most up-to-date passing standby in the same entry; epoch = that index", () => {
    const h = db(["m", "s1", "s2", "s3"], {}, { s1: 5, s2: 1, s3: 1 });
    h.ok({ op: "health.set", changes: [], positions: pos({ s1: 100, s2: 90, s3: 90 }) });
    const r = h.ok({ ...set("m", "critical", "lease expired: x"), positions: pos({ m: 120 }) } as RegistryCommand);
    // s1 is most up to date: position beats its worse priority.
    expect(h.sm.masterOf("db")).toMatchObject({ master: "s1", epoch: r.index });
    expect(h.lastEvents.map((e) => e.kind)).toEqual(["instance", "master"]);
    expect(h.lastEvents[0]).toMatchObject({ kind: "instance", role: "standby" });
    expect(h.lastEvents[1]).toMatchObject({ master: "s1", previous: "m", reason: "promoted", epoch: r.index });
  });

  it("failover: equal positions fall to priority (lower first), then id", () => {
    const h = db(["m", "c", "b", "a"], {}, { c: 1, b: 2, a: 2 });
    h.ok(set("m", "critical"));
    expect(h.sm.masterOf("db").master).toBe("c");
    h.ok(set("c", "critical"));
    expect(h.sm.masterOf("db").master).toBe("a");
  });

  it("failover: a standby more than max_lag_on_failover behind the best known position is not eligible; none eligible means no master", () => {
    const h = db(["m", "s1", "s2"], { maxLagOnFailover: 10 });
    h.ok({ op: "health.set", changes: [], positions: pos({ m: 100, s1: 89, s2: 85 }) });
    const r = h.ok(set("m", "critical"));
    expect(h.sm.masterOf("db")).toEqual({ master: "", epoch: r.index, since: T0 });
    expect(h.lastEvents.at(-1)).toMatchObject({ kind: "master", master: "", previous: "m", reason: "no-master" });
    // s1 catches up to within the lag: the next entry that carries it promotes it.
    const r2 = h.ok({ op: "health.set", changes: [], positions: pos({ s1: 91 }) });
    expect(h.sm.masterOf("db")).toMatchObject({ master: "s1", epoch: r2.index });
  });

  it("failover: with no passing standby there is no master; the next instance to pass becomes master; the old master returns as standby", () => {
    const h = db(["m", "s"]);
    h.ok(set("s", "critical"));
    h.ok(set("m", "critical"));
    expect(h.sm.masterOf("db").master).toBe("");
    expect(h.lastEvents.at(-1)).toMatchObject({ kind: "master", reason: "no-master", previous: "m" });
    const r = h.ok(set("s", "passing"));
    expect(h.sm.masterOf("db")).toMatchObject({ master: "s", epoch: r.index });
    h.ok(set("m", "passing"));
    expect(h.sm.masterOf("db").master).toBe("s");
    expect(h.sm.roleOf("db", "m")).toBe("standby");
  });

  it("failover: an instance registered critical is never made master by its registration; it is once it passes", () => {
    const h = new Harness();
    h.ok({ op: "service.put", name: "db", config: MS });
    h.ok({ op: "instance.register", instance: spec("late", { service: "db" }), health: "critical", note: "starting" });
    expect(h.sm.masterOf("db").master).toBe("");
    expect(masterEvents(h)).toEqual([]);
    // Nor does its re-registration while it still fails.
    h.ok({ op: "instance.register", instance: spec("late", { service: "db", weight: 9 }), health: "critical", note: "starting" });
    expect(h.sm.masterOf("db").master).toBe("");
    const r = h.ok(set("late", "passing"));
    expect(h.sm.masterOf("db")).toMatchObject({ master: "late", epoch: r.index });
  });

  it("failover: a warning master keeps the role; deregistration and reaping of the master promote", () => {
    const h = db(["m", "s1", "s2"]);
    h.ok(set("m", "warning"));
    expect(h.sm.masterOf("db").master).toBe("m");
    h.ok({ op: "instance.deregister", service: "db", id: "m" });
    expect(h.sm.masterOf("db").master).toBe("s1");
    h.ok(set("s1", "critical"));
    expect(h.sm.masterOf("db").master).toBe("s2");
    // s1 came back: then s2 is reaped after being critical long enough (deregisterCriticalAfterMs 60 s).
    h.ok(set("s1", "passing"));
    h.ok(set("s2", "critical"));
    expect(h.sm.masterOf("db").master).toBe("s1");
    h.at += 60_000;
    h.ok({ op: "instance.reap", service: "db", id: "s2" });
    expect(h.sm.masterOf("db").master).toBe("s1");
  });

  it("failover: changing the mode chooses a master (to master-slave) or demotes it (to active-active)", () => {
    const h = new Harness();
    for (const id of ["b", "a"]) h.ok({ op: "instance.register", instance: spec(id, { service: "db" }) });
    expect(h.sm.masterOf("db").master).toBe("");
    expect(h.sm.roleOf("db", "a")).toBe("");
    const r = h.ok({ op: "service.put", name: "db", config: MS });
    expect(h.sm.masterOf("db")).toMatchObject({ master: "a", epoch: r.index });
    h.ok({ op: "service.put", name: "db", config: DEFAULT_SERVICE_CONFIG });
    expect(h.sm.masterOf("db").master).toBe("");
    expect(h.lastEvents.at(-1)).toMatchObject({ kind: "master", reason: "demoted", previous: "a" });
  });

  it("failover: switchover moves the role in one entry; an ineligible target is refused with the reason and nothing changes", () => {
    const h = db(["m", "s1", "s2", "s3"], { maxLagOnFailover: 10 });
    h.ok({ op: "health.set", changes: [], positions: pos({ m: 100, s1: 95, s2: 50 }) });
    h.ok(set("s3", "critical"));
    const before = h.sm.masterOf("db");
    const refuse = (to: string, reason: RegExp) => {
      const r = h.run({ op: "failover", service: "db", to, reason: "switchover" });
      expect(r).toMatchObject({ ok: false, code: "failed-precondition" });
      expect(r.ok ? "" : r.message).toMatch(reason);
      expect(h.sm.masterOf("db")).toEqual(before);
    };
    refuse("s2", /s2 is 50 behind the best known replication position 100, more than max_lag_on_failover 10/);
    refuse("s3", /s3 is critical, not passing/);
    refuse("zz", /zz is not registered/);
    refuse("m", /m is the master already/);
    expect(h.run({ op: "failover", service: "nope", to: "", reason: "switchover" })).toMatchObject({ ok: false, code: "not-found" });
    const r = h.ok({ op: "failover", service: "db", to: "s1", reason: "switchover" });
    expect(r).toMatchObject({ master: "s1", epoch: r.index });
    expect(h.lastEvents).toEqual([{ index: r.index, kind: "master", type: "put", service: "db", master: "s1", previous: "m", epoch: r.index, reason: "switchover" }]);
    // Without --to: the best eligible standby (m, caught up at 100).
    const r2 = h.ok({ op: "failover", service: "db", to: "", reason: "switchover" });
    expect(r2).toMatchObject({ master: "m", epoch: r2.index });
  });

  it("failover: fail-back to the preferred instance only after it passed, and the master held, for the hold-down", () => {
    const h = db(["p", "s"], { failback: "p", failbackHoldDownMs: 10_000 });
    h.ok(set("p", "critical"));
    expect(h.sm.masterOf("db").master).toBe("s");
    h.at += 5_000;
    h.ok(set("p", "passing"));
    const failback = { op: "failover", service: "db", to: "p", reason: "failback" } as const;
    expect(h.sm.failbacksDue(h.at)).toEqual([]);
    expect(h.run(failback)).toMatchObject({ ok: false, code: "failed-precondition" });
    h.at += 9_999;
    expect(h.sm.failbacksDue(h.at)).toEqual([]);
    expect(h.run(failback)).toMatchObject({ ok: false, code: "failed-precondition" });
    h.at += 1;
    expect(h.sm.failbacksDue(h.at)).toEqual([{ service: "db", to: "p" }]);
    const r = h.ok(failback);
    expect(h.sm.masterOf("db")).toMatchObject({ master: "p", epoch: r.index });
    expect(h.lastEvents.at(-1)).toMatchObject({ reason: "failback", previous: "s" });
    expect(h.sm.failbacksDue(h.at + 100_000)).toEqual([]);
  });

  it("failover: masters survive snapshot and restore, and go on from there alike", () => {
    const h = db(["m", "s1", "s2"]);
    h.ok(set("m", "critical"));
    const copy = new Harness();
    copy.sm.restore(h.sm.snapshot());
    copy.index = h.index;
    expect(copy.sm.masterOf("db")).toEqual(h.sm.masterOf("db"));
    for (const x of [h, copy]) x.ok(set("s1", "critical"));
    expect(copy.sm.masterOf("db")).toEqual(h.sm.masterOf("db"));
    expect(Buffer.from(copy.sm.snapshot()).equals(Buffer.from(h.sm.snapshot()))).toBe(true);
  });
});

// ------------------------------------------------------------ property: random sequences

const IDS = ["a", "b", "c", "d"] as const;
type Op =
  | { k: "health"; id: string; health: Health }
  | { k: "pos"; id: string; position: number }
  | { k: "register"; id: string; priority: number }
  | { k: "deregister"; id: string }
  | { k: "switchover"; to: string }
  | { k: "mode"; masterSlave: boolean; maxLag: number }
  | { k: "tick"; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant("health" as const), id: fc.constantFrom(...IDS), health: fc.constantFrom<Health>("passing", "warning", "critical") }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant("pos" as const), id: fc.constantFrom(...IDS), position: fc.integer({ min: 0, max: 200 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("register" as const), id: fc.constantFrom(...IDS), priority: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("deregister" as const), id: fc.constantFrom(...IDS) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("switchover" as const), to: fc.constantFrom("", ...IDS) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("mode" as const), masterSlave: fc.boolean(), maxLag: fc.constantFrom(0, 20) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 20_000 }) }) },
);

function command(op: Op, config: ServiceConfig): RegistryCommand {
  switch (op.k) {
    case "health":
      return set(op.id, op.health);
    case "pos":
      return { op: "health.set", changes: [], positions: pos({ [op.id]: op.position }) };
    case "register":
      return { op: "instance.register", instance: spec(op.id, { service: "db", priority: op.priority }) };
    case "deregister":
      return { op: "instance.deregister", service: "db", id: op.id };
    case "switchover":
      return { op: "failover", service: "db", to: op.to, reason: "switchover" };
    case "mode":
      return { op: "service.put", name: "db", config: { ...config, mode: op.masterSlave ? "master-slave" : "active-active", maxLagOnFailover: op.maxLag } };
    case "tick":
      return { op: "kv.put", key: "t", value: "" };
  }
}

/** referenceBest is a plain restatement of the promotion order: eligible = passing and within the lag of the best known position. */
function referenceBest(sm: RegistryStateMachine, maxLag: number, exclude: string): string {
  const all = sm.instances("db");
  const best = Math.max(0, ...all.map((i) => i.replicationPosition));
  const eligible = all.filter((i) => i.id !== exclude && i.health === "passing" && (maxLag === 0 || best - i.replicationPosition <= maxLag));
  eligible.sort((x, y) => y.replicationPosition - x.replicationPosition || x.priority - y.priority || (x.id < y.id ? -1 : 1));
  return eligible[0]?.id ?? "";
}

describe("failover rules: property", () => {
  it("failover: over random health changes, positions, registrations, switchovers and mode changes — one master at most, never critical, epochs grow, each promotion picks the eligible most up-to-date standby, and a restored copy agrees", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), fc.integer({ min: 0, max: 59 }), (ops, snapAt) => {
        const h = new Harness();
        h.ok({ op: "service.put", name: "db", config: MS });
        let copy: Harness | undefined;
        let lastEpoch = 0;
        for (const [n, op] of ops.entries()) {
          if (op.k === "tick") h.at += op.ms;
          const config = h.sm.getService("db")?.service.config ?? MS;
          const before = h.sm.masterOf("db");
          const beforeBest = referenceBest(h.sm, config.maxLagOnFailover, before.master);
          const cmd = command(op, config);
          const r = h.run(cmd);
          if (copy) {
            copy.at = h.at;
            copy.run(cmd);
          }
          const after = h.sm.masterOf("db");
          const view = h.sm.getService("db");
          const mode = view?.service.config.mode;
          // At most one master, and it is a registered instance that is not critical.
          const masters = (view?.instances ?? []).filter((i) => h.sm.roleOf("db", i.id) === "master");
          expect(masters.length).toBeLessThanOrEqual(1);
          if (after.master !== "") {
            expect(mode).toBe("master-slave");
            expect(masters.map((i) => i.id)).toEqual([after.master]);
            expect(masters[0]?.health).not.toBe("critical");
          }
          // Epochs only grow, and an epoch is the index of the entry that changed the master.
          const events = r.ok ? h.events.at(-1) ?? [] : [];
          const changes = events.filter((e) => e.kind === "master" && e.index === r.index);
          if (after.epoch !== before.epoch || after.master !== before.master) {
            expect(after.epoch).toBe(r.index);
            expect(after.epoch).toBeGreaterThan(lastEpoch);
            expect(changes).toHaveLength(1);
            lastEpoch = after.epoch;
            const reason = (changes[0] as Extract<RegistryEvent, { kind: "master" }>).reason;
            // A promotion or switchover picks an eligible instance; a promotion the best one (the reference, after the entry's changes).
            if (reason === "promoted") expect(after.master).toBe(referenceBest(h.sm, view!.service.config.maxLagOnFailover, before.master));
            if (reason === "switchover" && op.k === "switchover" && op.to === "") expect(after.master).toBe(beforeBest);
          } else {
            expect(changes).toHaveLength(0);
          }
          // No master although one is eligible only where nothing touched the service (a plain KV tick).
          if (mode === "master-slave" && after.master === "" && op.k !== "tick" && r.ok) expect(referenceBest(h.sm, view!.service.config.maxLagOnFailover, "")).toBe("");
          if (n === snapAt) {
            copy = new Harness();
            copy.sm.restore(h.sm.snapshot());
            copy.index = h.index;
            copy.at = h.at;
          }
          if (copy) expect(copy.sm.masterOf("db")).toEqual(h.sm.masterOf("db"));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("failover: a switchover sent again with its seq answers the first result, though the leader attached other positions", () => {
    // The leader attaches the positions it heard that differ from the recorded ones; the first
    // send records them, so a re-send (the client's retry after an unknown outcome) carries none.
    const h = db(["m", "s1", "s2"]);
    const session = { client: "c1", seq: 7 };
    const first = h.ok({ op: "failover", service: "db", to: "s1", reason: "switchover", positions: pos({ s1: 100, s2: 90 }) }, session);
    expect(h.sm.masterOf("db")).toMatchObject({ master: "s1", epoch: first.index });
    const again = h.ok({ op: "failover", service: "db", to: "s1", reason: "switchover" }, session);
    expect(again).toMatchObject({ duplicate: true, master: "s1", epoch: first.index });
    expect(h.sm.masterOf("db")).toMatchObject({ master: "s1", epoch: first.index });
    // Another request under the same seq is still refused as reused.
    const other = h.run({ op: "failover", service: "db", to: "s2", reason: "switchover" }, session);
    expect(other).toMatchObject({ ok: false, code: "failed-precondition" });
  });
});
