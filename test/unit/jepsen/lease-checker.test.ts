import { describe, expect, it } from "vitest";
import { checkLease, criticalMarks, cutOffWindows, type LeaseCheckInput, livenessDeadline } from "../../jepsen/workloads/lease-checker.js";

const base: LeaseCheckInput = { ttlMs: 3_000, boundMs: 2_000, slackMs: 50, heartbeats: [], transitions: [], stopped: [], faults: [], endAt: 60_000 };

describe("lease checker", () => {
  it("lease checker: an expiry after the TTL of the last acknowledged heartbeat is valid", () => {
    const r = checkLease({
      ...base,
      heartbeats: [{ id: "a", status: "ok", call: 1_000, return: 1_010 }],
      transitions: [
        { id: "a", index: 5, health: "passing", at: 0 },
        { id: "a", index: 9, health: "critical", at: 4_100 },
      ],
      stopped: [{ id: "a", lastReturn: 1_010 }],
    });
    expect(r.valid).toBe(true);
  });

  it("lease checker: flags a critical mark while an acknowledged heartbeat's TTL runs (planted)", () => {
    const r = checkLease({
      ...base,
      heartbeats: [
        { id: "a", status: "ok", call: 1_000, return: 1_010 },
        { id: "a", status: "ok", call: 2_000, return: 2_020 },
      ],
      transitions: [
        { id: "a", index: 5, health: "passing", at: 0 },
        { id: "a", index: 9, health: "critical", at: 3_500 },
      ],
    });
    expect(r.valid).toBe(false);
    expect(r.anomalies[0]?.kind).toBe("critical-while-renewed");
    expect(r.anomalies[0]?.example[0]).toMatchObject({ id: "a", heartbeat: { call: 2_000 }, earlyByMs: 1_500 });
  });

  it("lease checker: a heartbeat that was not acknowledged does not protect the lease", () => {
    const r = checkLease({
      ...base,
      heartbeats: [{ id: "a", status: "info", call: 2_000, return: 3_000 }],
      transitions: [{ id: "a", index: 9, health: "critical", at: 3_500 }],
    });
    expect(r.valid).toBe(true);
  });

  it("lease checker: flags a stopped instance never marked, and one marked late (planted)", () => {
    const never = checkLease({ ...base, stopped: [{ id: "a", lastReturn: 1_000 }], transitions: [{ id: "a", index: 3, health: "passing", at: 0 }] });
    expect(never.valid).toBe(false);
    expect(never.anomalies[0]?.kind).toBe("never-marked");
    const late = checkLease({ ...base, stopped: [{ id: "a", lastReturn: 1_000 }], transitions: [{ id: "a", index: 3, health: "critical", at: 9_000 }] });
    expect(late.anomalies[0]).toMatchObject({ kind: "marked-late" });
  });

  it("lease checker: an instance marked while its heartbeats failed, and stopped while still critical, was marked in time", () => {
    // Pinned to a node cut off from the leader: acknowledged until 1 s, marked at 4.2 s, its attempts
    // fail until it stops at 9 s. The mark that left it critical came before its last attempt.
    const r = checkLease({
      ...base,
      heartbeats: [
        { id: "a", status: "ok", call: 1_000, return: 1_010 },
        { id: "a", status: "fail", call: 8_000, return: 9_000 },
      ],
      transitions: [
        { id: "a", index: 5, health: "passing", at: 0 },
        { id: "a", index: 9, health: "critical", at: 4_200 },
      ],
      stopped: [{ id: "a", lastReturn: 9_000 }],
    });
    expect(r.valid).toBe(true);
    // Revived and marked again: the later mark is the one judged, and it is late.
    const late = checkLease({
      ...base,
      transitions: [
        { id: "a", index: 9, health: "critical", at: 4_200 },
        { id: "a", index: 12, health: "passing", at: 6_000 },
        { id: "a", index: 20, health: "critical", at: 30_000 },
      ],
      stopped: [{ id: "a", lastReturn: 9_000 }],
    });
    expect(late.anomalies.map((a) => a.kind)).toEqual(["marked-late"]);
  });

  it("lease checker: a run that ends before the liveness deadline is unknown", () => {
    expect(checkLease({ ...base, endAt: 4_000, stopped: [{ id: "a", lastReturn: 1_000 }] }).valid).toBe("unknown");
  });

  it("lease checker: the liveness deadline moves past an overlapping fault", () => {
    expect(livenessDeadline(1_000, 3_000, 2_000, [])).toBe(6_000);
    expect(livenessDeadline(1_000, 3_000, 2_000, [{ from: 2_000, to: 10_000 }])).toBe(15_000);
    expect(livenessDeadline(1_000, 3_000, 2_000, [{ from: 7_000, to: 10_000 }])).toBe(6_000);
  });

  it("lease checker: criticalMarks keeps only changes to critical, in index order", () => {
    const marks = criticalMarks([
      { id: "a", index: 4, health: "critical", at: 10 },
      { id: "a", index: 2, health: "passing", at: 0 },
      { id: "a", index: 6, health: "critical", at: 10 },
      { id: "a", index: 8, health: "passing", at: 20 },
      { id: "a", index: 9, health: "critical", at: 30 },
    ]);
    expect(marks.map((m) => m.index)).toEqual([4, 9]);
  });

  it("lease checker: cutOffWindows — the minority side of a symmetric partition, from the cut for the least hold, and nothing else", () => {
    const nodes = ["n1", "n2", "n3", "n4", "n5"];
    const isolate = { f: "partition:isolate-leader", value: [["n5"], ["n1", "n2", "n3", "n4"]], from: 1_000, to: 6_000 };
    expect(cutOffWindows([isolate], nodes, 2_500)).toEqual([{ node: "n5", from: 1_000, to: 3_500 }]);
    const halves = { f: "partition:random-halves", value: [["n2", "n4", "n5"], ["n1", "n3"]], from: 7_000, to: 12_000 };
    expect(cutOffWindows([halves], nodes, 2_500).map((w) => w.node)).toEqual(["n1", "n3"]);
    // One-way cuts name the target once per link; a bridge node is in no group; neither is judged.
    const deaf = { f: "partition:one-way-deaf", value: nodes.filter((n) => n !== "n5").map((n) => [n, "n5"]), from: 1_000, to: 6_000 };
    const bridge = { f: "partition:bridge", value: [["n1", "n2"], ["n4", "n5"]], from: 1_000, to: 6_000 };
    expect(cutOffWindows([deaf, bridge], nodes, 2_500)).toEqual([]);
    // A fault that ended before the least hold was cut short (its heal may predate its recorded end).
    expect(cutOffWindows([{ ...isolate, to: 3_400 }], nodes, 2_500)).toEqual([]);
    // Kills, pauses and clock jumps are not partitions; a run that changed membership is not judged.
    expect(cutOffWindows([{ f: "kill:one", value: ["n5"], from: 1_000, to: 6_000 }], nodes, 2_500)).toEqual([]);
    expect(cutOffWindows([isolate, { f: "membership:shrink", value: ["n2"], from: 7_000, to: 9_000 }], nodes, 2_500)).toEqual([]);
  });

  it("lease checker: flags a heartbeat acknowledged by a node cut off from a majority (planted), and only inside the window", () => {
    const cutOff = [{ node: "n5", from: 1_000, to: 3_500 }];
    const ack = (node: string, call: number) => ({ id: "a", status: "ok" as const, call, return: call + 5, node });
    // Before the cut, after the window, through another node, or not acknowledged: fine.
    const fine = checkLease({ ...base, cutOff, heartbeats: [ack("n5", 990), ack("n5", 3_600), ack("n1", 1_500), { ...ack("n5", 1_500), status: "fail" }] });
    expect(fine.valid).toBe(true);
    expect(fine.summary).toContain("none of 1 heartbeats sent to a cut-off node acknowledged");
    const r = checkLease({ ...base, cutOff, heartbeats: [ack("n5", 1_200)] });
    expect(r.valid).toBe(false);
    expect(r.anomalies[0]).toMatchObject({ kind: "acknowledged-while-cut-off" });
    expect(r.anomalies[0]?.example[0]).toMatchObject({ id: "a", node: "n5", afterCutMs: 200 });
    // Without windows the rule is not applied (a run with no partitions to judge by).
    expect(checkLease({ ...base, heartbeats: [ack("n5", 1_200)] }).valid).toBe(true);
  });
});
