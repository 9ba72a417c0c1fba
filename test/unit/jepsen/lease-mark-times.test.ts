import { describe, expect, it } from "vitest";
import { checkLease, markLowerBounds, markTimes } from "../../jepsen/workloads/lease-checker.js";
import { Rng } from "../../sim/rng.js";

describe("lease mark times", () => {
  it("lease checker: markTimes puts each change at or after its real time and at or before its receipt, tight to the next fresh stamp", () => {
    // Term 1: cluster time = run time − 1,000; a leader change pauses it 2,500 ms: run time − 3,500.
    const seen = [
      { real: 1_500, time: 1_600, clusterMs: 500 },
      { real: 1_800, time: 1_810, clusterMs: 800 },
      { real: 6_000, time: 6_030, clusterMs: 2_500 },
      { real: 6_100, time: 6_110, clusterMs: 2_600 },
    ];
    expect(markTimes(seen)).toEqual([1_510, 1_810, 6_010, 6_110]);
  });

  it("lease checker: property — under random pauses and delivery delays markTimes is never before the change nor after its receipt", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rng = new Rng(seed);
      let real = 0;
      let offset = rng.nextInt(10_000);
      const seen: { real: number; time: number; clusterMs: number }[] = [];
      let lastReceipt = 0;
      for (let i = 0; i < 50; i++) {
        real += 1 + rng.nextInt(500);
        if (rng.chance(0.1)) offset += rng.nextInt(5_000);
        // Events arrive in order; a stale healthSince (no health change) is older than its entry.
        const clusterMs = real - offset - (rng.chance(0.2) ? rng.nextInt(1_000) : 0);
        lastReceipt = Math.max(lastReceipt, real + rng.nextInt(300));
        seen.push({ real: clusterMs + offset, time: lastReceipt, clusterMs });
      }
      const at = markTimes(seen);
      seen.forEach((s, i) => {
        if ((at[i] as number) < s.real || (at[i] as number) > s.time) throw new Error(`seed ${seed} event ${i}: ${at[i]} not in [${s.real}, ${s.time}]`);
      });
    }
  });

  it("lease checker: markLowerBounds is never after the change, and tightens with each change a heartbeat caused", () => {
    // Offset (run − cluster) 1,000, then a leader change pauses cluster time by 2,500.
    const seen = [
      { index: 3, clusterMs: 500, fresh: true }, // real 1,500, caused by a heartbeat called at 1,400
      { index: 5, clusterMs: 800, fresh: true }, // real 1,800: a mark
      { index: 9, clusterMs: 2_500, fresh: true }, // real 6,000 (after the pause): a mark
      { index: 11, clusterMs: 2_600, fresh: true }, // real 6,100, caused by a heartbeat called at 6,050
      { index: 12, clusterMs: 2_700, fresh: true }, // real 6,200
    ];
    const bounds = markLowerBounds(seen, new Map([[3, 1_400], [11, 6_050]]));
    expect(bounds).toEqual([1_400, 1_700, 3_400, 6_050, 6_150]);
    expect(markLowerBounds(seen, new Map())).toEqual(seen.map(() => Number.NEGATIVE_INFINITY));
    // A change that kept the health (stale healthSince) teaches nothing.
    expect(markLowerBounds([{ index: 3, clusterMs: 100, fresh: false }], new Map([[3, 1_400]]))).toEqual([Number.NEGATIVE_INFINITY]);
  });

  it("lease checker: property — markLowerBounds is never after the change under random pauses", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rng = new Rng(seed);
      let real = 0;
      let offset = rng.nextInt(10_000);
      const seen: { index: number; clusterMs: number; fresh: boolean; real: number }[] = [];
      const causes = new Map<number, number>();
      for (let i = 1; i <= 50; i++) {
        real += 1 + rng.nextInt(500);
        if (rng.chance(0.1)) offset += rng.nextInt(5_000);
        seen.push({ index: i, clusterMs: real - offset, fresh: true, real });
        if (rng.chance(0.3)) causes.set(i, real - rng.nextInt(200)); // the heartbeat was called before the stamp
      }
      markLowerBounds(seen, causes).forEach((b, i) => {
        if (b > (seen[i]?.real as number)) throw new Error(`seed ${seed} change ${i}: bound ${b} after ${seen[i]?.real}`);
      });
    }
  });

  it("lease checker: a heartbeat acknowledged after the real mark but before its late estimate is not taken for one the mark ignored", () => {
    const base = { ttlMs: 3_000, boundMs: 2_000, slackMs: 50, stopped: [], faults: [], endAt: 20_000 };
    const heartbeats = [{ id: "a", status: "ok" as const, call: 5_000, return: 5_020 }];
    // The mark was made at 4,000 (cut off since 1,000), but delivery after a pause estimates it at 5,100.
    const late = { id: "a", index: 9, health: "critical", at: 5_100 };
    expect(checkLease({ ...base, heartbeats, transitions: [{ ...late, notBefore: 3_900 }] }).valid).toBe(true);
    // Without a lower bound the old reading flags it (the false alarm this guards against).
    expect(checkLease({ ...base, heartbeats, transitions: [late] }).valid).toBe(false);
    // A mark certainly after the acknowledgement and inside its TTL is still flagged.
    expect(checkLease({ ...base, heartbeats, transitions: [{ ...late, notBefore: 5_080 }] }).valid).toBe(false);
  });
});
