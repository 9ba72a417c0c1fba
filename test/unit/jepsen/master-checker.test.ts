import { describe, expect, it } from "vitest";
import { checkMaster, type MasterCheckInput } from "../../jepsen/workloads/master-checker.js";
import { parseBackendLog } from "../../jepsen/workloads/master.js";

/** clean: a failover from a (epoch 10) to b (epoch 40) with a gap, seen alike by everyone. */
function clean(): MasterCheckInput {
  return {
    intervals: [
      { id: "a", epoch: 10, from: 100, to: 5_000 },
      { id: "b", epoch: 40, from: 6_200, to: Number.POSITIVE_INFINITY },
    ],
    events: [
      { observer: "n1", time: 90, epoch: 10, master: "a" },
      { observer: "n1", time: 6_100, epoch: 40, master: "b" },
      { observer: "n2", time: 95, epoch: 10, master: "a" },
      { observer: "n2", time: 6_150, epoch: 40, master: "b" },
    ],
    answers: [
      { id: "a", sentAt: 50, time: 100, role: "master", epoch: 10 },
      { id: "b", sentAt: 50, time: 100, role: "standby", epoch: 10 },
      { id: "b", sentAt: 6_150, time: 6_200, role: "master", epoch: 40 },
      { id: "a", sentAt: 7_000, time: 7_050, role: "standby", epoch: 40 },
    ],
    writes: [
      { id: "a", epoch: 10, headerEpoch: 10, time: 4_000 },
      { id: "b", epoch: 40, headerEpoch: 40, time: 7_000 },
    ],
  };
}

const kinds = (input: MasterCheckInput) => checkMaster(input).anomalies.map((a) => a.kind);

describe("master checker", () => {
  it("master: a clean failover is valid", () => {
    const r = checkMaster(clean());
    expect(r.valid).toBe(true);
    expect(r.stats).toMatchObject({ intervals: 2, epochs: 2, writes: 2 });
  });

  it("master: overlapping intervals of two instances are two masters", () => {
    const c = clean();
    const r = checkMaster({ ...c, intervals: [{ id: "a", epoch: 10, from: 100, to: 6_300 }, c.intervals[1] as never] });
    expect(r.valid).toBe(false);
    expect(r.anomalies[0]).toMatchObject({ kind: "two-masters", example: [{ overlapMs: 100 }] });
  });

  it("master: an interval still open (never demoted) overlaps every later master", () => {
    const c = clean();
    expect(kinds({ ...c, intervals: [{ id: "a", epoch: 10, from: 100, to: Number.POSITIVE_INFINITY }, c.intervals[1] as never] })).toContain("two-masters");
  });

  it("master: touching intervals (one ends as the next begins) do not overlap", () => {
    const c = clean();
    expect(checkMaster({ ...c, intervals: [{ id: "a", epoch: 10, from: 100, to: 6_200 }, c.intervals[1] as never] }).valid).toBe(true);
  });

  it("master: a master that lost its lease, told standby at its own epoch by the handover fence before it is told master again, does not disagree", () => {
    const c = clean();
    // b acts as master of 40, loses its lease at 8,000 (a partition), is fenced by a new leader
    // (standby at 40 for a heartbeat sent at 8,100) and is told master of 40 again at 9,000.
    const fenced: MasterCheckInput = {
      ...c,
      intervals: [c.intervals[0]!, { id: "b", epoch: 40, from: 6_200, to: 8_000 }, { id: "b", epoch: 40, from: 9_000, to: Number.POSITIVE_INFINITY }],
      answers: [...c.answers, { id: "b", sentAt: 8_100, time: 8_200, role: "standby", epoch: 40 }, { id: "b", sentAt: 8_900, time: 9_000, role: "master", epoch: 40 }],
    };
    expect(checkMaster(fenced).valid).toBe(true);
    // The same answer to a heartbeat sent while b was still acting as master of 40 disagrees.
    const contradicted: MasterCheckInput = { ...fenced, answers: [...fenced.answers, { id: "b", sentAt: 7_900, time: 8_300, role: "standby", epoch: 40 }] };
    expect(kinds(contradicted)).toEqual(["masters-disagree"]);
  });

  it("master: two masters named for one epoch, or a master told standby at its own epoch, disagree", () => {
    const c = clean();
    expect(kinds({ ...c, events: [...c.events, { observer: "n3", time: 6_300, epoch: 40, master: "c" }] })).toContain("masters-disagree");
    expect(kinds({ ...c, answers: [...c.answers, { id: "b", sentAt: 7_000, time: 7_010, role: "standby", epoch: 40 }] })).toEqual(["masters-disagree"]);
  });

  it("master: an observer seeing an older epoch after a newer one is an epoch going back", () => {
    const c = clean();
    expect(kinds({ ...c, events: [...c.events, { observer: "n1", time: 6_500, epoch: 10, master: "a" }] })).toEqual(["epoch-went-back"]);
    // An answer sent after a newer one was received, naming an older epoch.
    expect(kinds({ ...c, answers: [...c.answers, { id: "a", sentAt: 7_100, time: 7_150, role: "master", epoch: 10 }] })).toEqual(["epoch-went-back"]);
    // Answers in flight together may come back in either order.
    expect(kinds({ ...c, answers: [...c.answers, { id: "a", sentAt: 6_990, time: 7_200, role: "master", epoch: 10 }] })).toEqual([]);
  });

  it("master: writes accepted by a non-master, outside mastery, or after a newer master began are stale", () => {
    const c = clean();
    expect(kinds({ ...c, writes: [{ id: "b", epoch: 10, headerEpoch: 10, time: 4_000 }] })).toEqual(["stale-write"]);
    expect(kinds({ ...c, writes: [{ id: "a", epoch: 10, headerEpoch: 10, time: 5_500 }] })).toEqual(["stale-write"]);
    const long = { ...c, intervals: [{ id: "a", epoch: 10, from: 100, to: 6_300 }, c.intervals[1] as never], writes: [{ id: "a", epoch: 10, headerEpoch: 10, time: 6_250 }] };
    expect(checkMaster(long).anomalies.find((a) => a.kind === "stale-write")?.example).toMatchObject([{ why: "a newer epoch's master was already acting" }]);
  });

  it("master: the stale-write rule judges the epoch the endpoint sent, not the one the backend claims", () => {
    const c = clean();
    const why = (w: { id: string; epoch: number; headerEpoch: number | null; time: number }) => checkMaster({ ...c, writes: [w] }).anomalies.find((a) => a.kind === "stale-write")?.example;
    // No x-raftmesh-epoch: the write did not come through the endpoint's fencing.
    expect(why({ id: "a", epoch: 10, headerEpoch: null, time: 4_000 })).toMatchObject([{ why: "accepted without the endpoint's epoch" }]);
    // The endpoint sent an older epoch than the one the backend accepted it as.
    expect(why({ id: "b", epoch: 40, headerEpoch: 10, time: 7_000 })).toMatchObject([{ why: "accepted for another epoch than the endpoint sent" }]);
    expect(why({ id: "b", epoch: 40, headerEpoch: 40, time: 7_000 })).toBeUndefined();
  });

  it("master: a run with no master at all is unknown, not valid", () => {
    expect(checkMaster({ intervals: [], events: [], answers: [], writes: [] }).valid).toBe("unknown");
  });

  it("master: a backend log gives intervals cut at the lease deadline, open ones to +inf", () => {
    const lines = [
      { type: "answer", t: 1_010, sentAt: 1_000, role: "master", epoch: 5 },
      { type: "promoted", t: 1_010, epoch: 5 },
      { type: "write", t: 1_500, epoch: 5, seq: 1, headerEpoch: 5 },
      // The demotion timer ran 700 ms late (a pause): the interval ends at the deadline.
      { type: "demoted", t: 2_600, epoch: 5, reason: "lease-lost", deadline: 1_900 },
      { type: "promoted", t: 9_000, epoch: 30 },
      { type: "demoted", t: 9_500, epoch: 30, reason: "standby", deadline: null },
      { type: "promoted", t: 12_000, epoch: 44 },
    ].map((l) => JSON.stringify(l));
    const got = parseBackendLog("a", lines, (t) => t - 1_000);
    expect(got.intervals).toEqual([
      { id: "a", epoch: 5, from: 10, to: 900 },
      { id: "a", epoch: 30, from: 8_000, to: 8_500 },
      { id: "a", epoch: 44, from: 11_000, to: Number.POSITIVE_INFINITY },
    ]);
    expect(got.writes).toEqual([{ id: "a", epoch: 5, headerEpoch: 5, time: 500 }]);
    expect(got.answers).toEqual([{ id: "a", sentAt: 0, time: 10, role: "master", epoch: 5 }]);
  });
});
