import { describe, expect, it } from "vitest";
import { ALERT_DEFAULTS, AlertEngine, type AlertView, fingerprint } from "../../../src/events/alerts.js";
import { EventJournal } from "../../../src/events/journal.js";
import { FIELDS } from "../../../src/config/index.js";

const IDS = { cluster: "c1", node: "n1" };
const calm: AlertView = { leader: "n1", unreachable: new Set(), services: [] };
const names = (xs: { name: string; status: string }[]) => xs.map((a) => `${a.name}:${a.status}`);

describe("alert rules", () => {
  it("NoLeader waits its for-duration, fires once (a node alert, labelled with the node) and resolves when a leader is known", () => {
    const e = new AlertEngine({ ...ALERT_DEFAULTS, noLeaderMs: 1_000 }, IDS);
    const none = { ...calm, leader: "" };
    expect(e.evaluate(none, 0)).toEqual([]);
    expect(e.evaluate(none, 999)).toEqual([]);
    const fired = e.evaluate(none, 1_000);
    expect(names(fired)).toEqual(["NoLeader:firing"]);
    expect(fired[0]).toMatchObject({ scope: "node", startsAt: 1_000, endsAt: 0, labels: { alertname: "NoLeader", node: "n1", cluster: "c1", severity: "critical" } });
    expect(e.evaluate(none, 5_000)).toEqual([]);
    const resolved = e.evaluate(calm, 6_000);
    expect(names(resolved)).toEqual(["NoLeader:resolved"]);
    expect(resolved[0]).toMatchObject({ endsAt: 6_000, fingerprint: fired[0]?.fingerprint });
  });

  it("a condition that clears before its for-duration never fires, and its clock starts again", () => {
    const e = new AlertEngine({ ...ALERT_DEFAULTS, memberUnreachableMs: 1_000 }, IDS);
    const down = { ...calm, unreachable: new Set(["n3"]) };
    e.evaluate(down, 0);
    expect(e.evaluate(calm, 500)).toEqual([]);
    expect(e.evaluate(down, 900)).toEqual([]);
    expect(e.evaluate(down, 1_800)).toEqual([]);
    expect(names(e.evaluate(down, 1_900))).toEqual(["MemberUnreachable:firing"]);
  });

  it("cluster alerts carry no node label: two nodes give the same fingerprint", () => {
    const a = new AlertEngine({ ...ALERT_DEFAULTS, memberUnreachableMs: 0 }, { cluster: "c1", node: "n1" });
    const b = new AlertEngine({ ...ALERT_DEFAULTS, memberUnreachableMs: 0 }, { cluster: "c1", node: "n2" });
    const down = { ...calm, unreachable: new Set(["n3"]) };
    const [fa] = a.evaluate(down, 0);
    const [fb] = b.evaluate(down, 7);
    expect(fa?.scope).toBe("cluster");
    expect(fa?.fingerprint).toBe(fb?.fingerprint);
    expect(fa?.labels.node).toBeUndefined();
    expect(fingerprint({ b: "2", a: "1" })).toBe(fingerprint({ a: "1", b: "2" }));
    expect(fingerprint({ a: "1" })).not.toBe(fingerprint({ a: "2" }));
  });

  it("ServiceWithoutMaster and CriticalInstances (strictly above the share) per service", () => {
    const e = new AlertEngine({ ...ALERT_DEFAULTS, noMasterMs: 0, criticalMs: 0, criticalPercent: 50 }, IDS);
    const half = { ...calm, services: [{ name: "web", mode: "active-active", master: "", instances: 4, critical: 2 }] };
    expect(e.evaluate(half, 0)).toEqual([]); // 50% is not above 50%
    const more = { ...calm, services: [{ name: "web", mode: "active-active", master: "", instances: 4, critical: 3 }, { name: "db", mode: "master-slave", master: "", instances: 2, critical: 0 }] };
    expect(names(e.evaluate(more, 1)).sort()).toEqual(["CriticalInstances:firing", "ServiceWithoutMaster:firing"]);
    const empty = { ...calm, services: [{ name: "db", mode: "master-slave", master: "", instances: 0, critical: 0 }] };
    expect(names(e.evaluate(empty, 2)).sort()).toEqual(["CriticalInstances:resolved", "ServiceWithoutMaster:resolved"]);
  });

  it("FailoverHappened: an unplanned master change fires it until the hold passes; a switchover does not; replayed entries do not count", () => {
    const j = new EventJournal({ node: "n1", nowMs: () => 10_000, seqBase: 0 });
    const e = new AlertEngine({ ...ALERT_DEFAULTS, failoverHoldMs: 5_000 }, IDS, 3);
    j.follow((ev) => e.observe(ev));
    j.record({ kind: "master-promoted", index: 3, service: "old", instance: "b", message: "", details: { reason: "promoted", previous: "a" } });
    j.record({ kind: "master-promoted", index: 4, service: "sw", instance: "b", message: "", details: { reason: "switchover", previous: "a" } });
    j.record({ kind: "master-promoted", index: 5, service: "first", instance: "a", message: "", details: { reason: "promoted", previous: "" } });
    j.record({ kind: "master-promoted", index: 6, service: "db", instance: "b", message: "", details: { reason: "promoted", previous: "a" } });
    const fired = e.evaluate(calm, 10_000);
    expect(fired.map((a) => [a.name, a.labels.service])).toEqual([["FailoverHappened", "db"]]);
    expect(e.evaluate(calm, 14_999)).toEqual([]);
    expect(names(e.evaluate(calm, 15_000))).toEqual(["FailoverHappened:resolved"]);
  });

  it("InstanceCrashLooping fires at crashLoopRestarts restarts within the window (not one fewer) and resolves as they age out", () => {
    let now = 0;
    const j = new EventJournal({ node: "n1", nowMs: () => now, seqBase: 0 });
    const e = new AlertEngine({ ...ALERT_DEFAULTS, crashLoopRestarts: 3, crashLoopWindowMs: 10_000 }, IDS);
    j.follow((ev) => e.observe(ev));
    const restart = (t: number) => {
      now = t;
      j.record({ kind: "instance-restarted", index: t, service: "web", instance: "w1", message: "" });
    };
    restart(1_000);
    restart(2_000);
    expect(e.evaluate(calm, 2_000)).toEqual([]);
    restart(3_000);
    const fired = e.evaluate(calm, 3_000);
    expect(fired.map((a) => [a.name, a.labels.instance])).toEqual([["InstanceCrashLooping", "w1"]]);
    expect(names(e.evaluate(calm, 11_000))).toEqual(["InstanceCrashLooping:resolved"]);
  });

  it("RetryBudgetExhausted is a node alert held after the last refused retry", () => {
    const j = new EventJournal({ node: "n1", nowMs: () => 0, seqBase: 0 });
    const e = new AlertEngine({ ...ALERT_DEFAULTS, retryBudgetHoldMs: 1_000 }, IDS);
    j.follow((ev) => e.observe(ev));
    j.record({ kind: "retry-budget-exhausted", service: "web", message: "" });
    const [a] = e.evaluate(calm, 0);
    expect(a).toMatchObject({ name: "RetryBudgetExhausted", scope: "node", labels: { node: "n1", service: "web" } });
    expect(names(e.evaluate(calm, 1_000))).toEqual(["RetryBudgetExhausted:resolved"]);
  });

  it("the configuration's alert defaults are ALERT_DEFAULTS (config may not import the rules)", () => {
    const fallback = (key: string) => FIELDS.find((f) => f.key === key)?.fallback;
    expect({
      noLeaderMs: fallback("alertNoLeaderMs"),
      memberUnreachableMs: fallback("alertMemberUnreachableMs"),
      noMasterMs: fallback("alertNoMasterMs"),
      criticalPercent: fallback("alertCriticalPercent"),
      criticalMs: fallback("alertCriticalMs"),
      failoverHoldMs: fallback("alertFailoverHoldMs"),
      crashLoopRestarts: fallback("alertCrashLoopRestarts"),
      crashLoopWindowMs: fallback("alertCrashLoopWindowMs"),
      retryBudgetHoldMs: fallback("alertRetryBudgetHoldMs"),
    }).toEqual(ALERT_DEFAULTS);
  });
});
