import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { balancer, countPicks, eps, table } from "./harness.js";

/** referenceSwrr is nginx's smooth weighted round-robin written out plainly over plain numbers. */
function referenceSwrr(weights: readonly number[], picks: number): number[] {
  const current = weights.map(() => 0);
  const total = weights.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  for (let p = 0; p < picks; p++) {
    let best = -1;
    for (let i = 0; i < weights.length; i++) {
      current[i] = (current[i] as number) + (weights[i] as number);
      if (best === -1 || (current[i] as number) > (current[best] as number)) best = i;
    }
    current[best] = (current[best] as number) - total;
    out.push(best);
  }
  return out;
}

describe("balancer: smooth weighted round-robin", () => {
  it("weighted: 5,1,1 gives nginx's sequence a a b a c a a", () => {
    const b = balancer(table(eps(3, (i) => ({ weight: [5, 1, 1][i] as number })), { policy: "weighted" }));
    const seq = Array.from({ length: 14 }, () => b.pick({}, 0)?.id);
    expect(seq).toEqual(["e0", "e0", "e1", "e0", "e2", "e0", "e0", "e0", "e0", "e1", "e0", "e2", "e0", "e0"]);
  });

  it("weighted: the sequence equals the reference, and each cycle gives every endpoint exactly its weight", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 3 }), (weights, cycles) => {
        const b = balancer(table(eps(weights.length, (i) => ({ weight: weights[i] as number })), { policy: "weighted" }));
        const total = weights.reduce((a, c) => a + c, 0);
        const got = Array.from({ length: total * cycles }, () => Number(b.pick({}, 0)?.id.slice(1)));
        expect(got).toEqual(referenceSwrr(weights, total * cycles));
        for (let c = 0; c < cycles; c++) {
          const cycle = got.slice(c * total, (c + 1) * total);
          weights.forEach((w, i) => {
            expect(cycle.filter((x) => x === i).length).toBe(w);
          });
        }
      }),
      { seed: 12, numRuns: 200 },
    );
  });

  it("weighted: a retry skips the excluded endpoint and the shares of the rest stay by weight", () => {
    const b = balancer(table(eps(3, (i) => ({ weight: [3, 2, 1][i] as number })), { policy: "weighted" }));
    const counts = countPicks(b, 300, 0, () => ({ exclude: new Set(["e0"]) }));
    expect(counts.get("e0")).toBeUndefined();
    expect(counts.get("e1")).toBe(200);
    expect(counts.get("e2")).toBe(100);
  });

  it("weighted: current weights survive an update that changes another endpoint", () => {
    const t = table(eps(2, (i) => ({ weight: [2, 1][i] as number })), { policy: "weighted" });
    const b = balancer(t);
    expect(b.pick({}, 0)?.id).toBe("e0");
    b.update(t); // same table: state kept, so the sequence goes on rather than restarting
    expect(b.pick({}, 0)?.id).toBe("e1");
    expect(b.pick({}, 0)?.id).toBe("e0");
  });
});
