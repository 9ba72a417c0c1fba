import { describe, expect, it } from "vitest";
import { checkLease, criticalMarks, type LeaseCheckInput, livenessDeadline } from "../../jepsen/workloads/lease-checker.js";

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
});
