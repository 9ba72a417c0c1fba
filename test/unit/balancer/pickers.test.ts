/**
 * Distribution of round-robin, random, least-connections and p2c, with a seeded random source.
 * Tolerances are absolute differences of shares; each is many standard deviations wide at the
 * sample sizes used (so a pass is not luck) yet far below the differences the tests look for.
 */
import { describe, expect, it } from "vitest";
import type { ServiceBalancer } from "../../../src/balancer/types.js";
import { balancer, countPicks, eps, share, table } from "./harness.js";

/** PICKS: 60,000 draws; the standard deviation of a share p is sqrt(p(1-p)/60000) ≤ 0.0021. */
const PICKS = 60_000;
/** SHARE_TOLERANCE: 0.01 is about 5 standard deviations at PICKS. */
const SHARE_TOLERANCE = 0.01;

/**
 * closedLoop runs `concurrency` clients for `rounds` ticks: each tick, every finished client picks
 * an endpoint and holds it for that endpoint's service time in ticks. Returns picks per endpoint.
 */
function closedLoop(b: ServiceBalancer, serviceTicks: Record<string, number>, concurrency: number, rounds: number): Map<string, number> {
  const busyUntil: { id: string; until: number }[] = [];
  const counts = new Map<string, number>();
  for (let tick = 0; tick < rounds; tick++) {
    for (let i = busyUntil.length - 1; i >= 0; i--) {
      const r = busyUntil[i] as { id: string; until: number };
      if (r.until <= tick) {
        b.onEnd(r.id, "success", tick);
        busyUntil.splice(i, 1);
      }
    }
    while (busyUntil.length < concurrency) {
      const e = b.pick({}, tick);
      if (e === undefined) throw new Error("no endpoint");
      b.onStart(e.id);
      counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
      busyUntil.push({ id: e.id, until: tick + (serviceTicks[e.id] as number) });
    }
  }
  return counts;
}

describe("balancer: round-robin", () => {
  it("round-robin: each endpoint in turn, weights ignored", () => {
    const b = balancer(table(eps(3, (i) => ({ weight: i + 1 }))));
    expect(Array.from({ length: 7 }, () => b.pick({}, 0)?.id)).toEqual(["e0", "e1", "e2", "e0", "e1", "e2", "e0"]);
  });

  it("round-robin: a retry skips excluded endpoints and fails only when all are excluded", () => {
    const b = balancer(table(eps(3)));
    expect(b.pick({ exclude: new Set(["e0", "e1"]) }, 0)?.id).toBe("e2");
    expect(b.pick({ exclude: new Set(["e0", "e1", "e2"]) }, 0)).toBeUndefined();
  });

  it("round-robin: the position survives a rebuild, so the first endpoint is not favoured after changes", () => {
    const t = table(eps(3));
    const b = balancer(t);
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      b.update(t); // each update rebuilds the pickers
      seen.push(b.pick({}, 0)?.id as string);
    }
    expect(seen).toEqual(["e0", "e1", "e2", "e0", "e1", "e2"]);
  });
});

describe("balancer: random", () => {
  it("random: shares follow the weights within the tolerance", () => {
    const b = balancer(table(eps(3, (i) => ({ weight: [1, 2, 3][i] as number })), { policy: "random" }), 7);
    const counts = countPicks(b, PICKS);
    expect(Math.abs(share(counts, "e0") - 1 / 6)).toBeLessThan(SHARE_TOLERANCE);
    expect(Math.abs(share(counts, "e1") - 2 / 6)).toBeLessThan(SHARE_TOLERANCE);
    expect(Math.abs(share(counts, "e2") - 3 / 6)).toBeLessThan(SHARE_TOLERANCE);
  });

  it("random: equal weights give a uniform share, and a retry never returns an excluded endpoint", () => {
    const b = balancer(table(eps(4), { policy: "random" }), 8);
    const counts = countPicks(b, PICKS);
    for (let i = 0; i < 4; i++) expect(Math.abs(share(counts, `e${i}`) - 0.25)).toBeLessThan(SHARE_TOLERANCE);
    const retried = countPicks(b, 1000, 0, () => ({ exclude: new Set(["e1", "e3"]) }));
    expect([...retried.keys()].sort()).toEqual(["e0", "e2"]);
  });
});

describe("balancer: least-connections", () => {
  it("least-connections: picks the endpoint with the fewest requests in flight", () => {
    const b = balancer(table(eps(3), { policy: "least-connections" }));
    for (const [id, n] of [["e0", 3], ["e1", 1], ["e2", 2]] as const) for (let i = 0; i < n; i++) b.onStart(id);
    expect(b.pick({}, 0)?.id).toBe("e1");
    b.onStart("e1");
    b.onStart("e1"); // e1: 3, e2: 2
    expect(b.pick({}, 0)?.id).toBe("e2");
  });

  it("least-connections: compares active/weight, and idle ties share by weight", () => {
    const b = balancer(table(eps(2, (i) => ({ weight: [3, 1][i] as number })), { policy: "least-connections" }));
    b.onStart("e0");
    b.onStart("e0"); // 2/3 < 1/1
    b.onStart("e1");
    expect(b.pick({}, 0)?.id).toBe("e0");
    b.onEnd("e0", "success", 0);
    b.onEnd("e0", "success", 0);
    b.onEnd("e1", "success", 0);
    expect(countPicks(b, 400)).toEqual(new Map([["e0", 300], ["e1", 100]]));
  });

  it("least-connections: a slow endpoint gets far fewer requests than round-robin would give it", () => {
    const b = balancer(table(eps(3), { policy: "least-connections" }), 3);
    const counts = closedLoop(b, { e0: 1, e1: 1, e2: 10 }, 12, 2_000);
    // Round-robin would give e2 a third; with e2 ten times slower, least-connections gives it under a tenth.
    expect(share(counts, "e2")).toBeLessThan(0.1);
    expect(Math.abs(share(counts, "e0") - share(counts, "e1"))).toBeLessThan(0.02);
  });
});

describe("balancer: p2c", () => {
  it("p2c: equal load and weights give a uniform share within the tolerance", () => {
    const b = balancer(table(eps(5), { policy: "p2c" }), 11);
    const counts = countPicks(b, PICKS);
    for (let i = 0; i < 5; i++) expect(Math.abs(share(counts, `e${i}`) - 0.2)).toBeLessThan(SHARE_TOLERANCE);
  });

  it("p2c: the busiest endpoint is never picked while others are idle (one of two draws beats it)", () => {
    const b = balancer(table(eps(2), { policy: "p2c" }), 12);
    for (let i = 0; i < 5; i++) b.onStart("e0");
    const counts = countPicks(b, 10_000);
    // e0 wins only when both draws are e0 (probability 1/4).
    expect(Math.abs(share(counts, "e0") - 0.25)).toBeLessThan(SHARE_TOLERANCE * 2);
  });

  it("p2c: idle endpoints share by weight; loaded ones are compared on active/weight", () => {
    const b = balancer(table(eps(2, (i) => ({ weight: [3, 1][i] as number })), { policy: "p2c" }), 13);
    const counts = countPicks(b, PICKS);
    expect(Math.abs(share(counts, "e0") - 0.75)).toBeLessThan(SHARE_TOLERANCE);
    for (let i = 0; i < 3; i++) b.onStart("e0"); // 3/3 = 1
    b.onStart("e1"); // 1/1 = 1: a tie keeps the first draw, so shares stay by weight
    expect(Math.abs(share(countPicks(b, PICKS), "e0") - 0.75)).toBeLessThan(SHARE_TOLERANCE);
    b.onStart("e0"); // 4/3 > 1: e0 wins only if both draws are e0 (0.75² ≈ 0.56)
    expect(Math.abs(share(countPicks(b, PICKS), "e0") - 0.5625)).toBeLessThan(SHARE_TOLERANCE);
  });

  it("p2c: a slow endpoint gets far fewer requests than its third", () => {
    const b = balancer(table(eps(3), { policy: "p2c" }), 14);
    const counts = closedLoop(b, { e0: 1, e1: 1, e2: 10 }, 12, 2_000);
    expect(share(counts, "e2")).toBeLessThan(0.15);
  });

  it("p2c: a retry never returns an excluded endpoint", () => {
    const b = balancer(table(eps(3), { policy: "p2c" }), 15);
    const counts = countPicks(b, 1000, 0, () => ({ exclude: new Set(["e0"]) }));
    expect([...counts.keys()].sort()).toEqual(["e1", "e2"]);
  });
});
