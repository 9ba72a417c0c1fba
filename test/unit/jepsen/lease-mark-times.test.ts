import { describe, expect, it } from "vitest";
import { markTimes } from "../../jepsen/workloads/lease-checker.js";
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
});
