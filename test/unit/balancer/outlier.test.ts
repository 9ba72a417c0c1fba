/**
 * Passive outlier detection through the balancer: ejection after consecutive failures, growing
 * ejection times, the share limit, never the last endpoint, and return after the time.
 */
import { describe, expect, it } from "vitest";
import { OUTLIER_DECAY_MS, OUTLIER_MAX_EJECTION_MS } from "../../../src/balancer/policy/defaults.js";
import type { ServiceBalancer } from "../../../src/balancer/types.js";
import { balancer, countPicks, eps, table } from "./harness.js";

const BASE_MS = 1_000;

/** fail ends `n` requests to `id` as failures at `nowMs`. */
function fail(b: ServiceBalancer, id: string, n: number, nowMs: number): void {
  for (let i = 0; i < n; i++) {
    b.onStart(id);
    b.onEnd(id, "failure", nowMs);
  }
}

function ids(b: ServiceBalancer, nowMs: number, picks = 100): string[] {
  return [...countPicks(b, picks, nowMs).keys()].sort();
}

describe("balancer: outlier detection", () => {
  it("outlier: five failures in a row eject an endpoint; it returns after the base time", () => {
    const b = balancer(table(eps(10), { outlierMaxEjectionPercent: 10, outlierBaseEjectionMs: BASE_MS }));
    fail(b, "e3", 4, 0);
    expect(ids(b, 0)).toContain("e3");
    fail(b, "e3", 1, 0);
    expect(ids(b, 0)).not.toContain("e3");
    expect(ids(b, BASE_MS - 1)).not.toContain("e3");
    expect(ids(b, BASE_MS)).toContain("e3");
  });

  it("outlier: a success resets the count", () => {
    const b = balancer(table(eps(10), { outlierBaseEjectionMs: BASE_MS }));
    fail(b, "e1", 4, 0);
    b.onStart("e1");
    b.onEnd("e1", "success", 0);
    fail(b, "e1", 4, 0);
    expect(ids(b, 0)).toContain("e1");
  });

  it("outlier: each ejection lasts base × its number, capped", () => {
    const b = balancer(table(eps(10), { outlierBaseEjectionMs: BASE_MS }));
    fail(b, "e0", 5, 0); // 1st: until 1000
    expect(ids(b, 999)).not.toContain("e0");
    fail(b, "e0", 5, 1_000); // back at 1000, ejected again at once: 2nd, until 3000
    expect(ids(b, 2_999)).not.toContain("e0");
    expect(ids(b, 3_000)).toContain("e0");
    fail(b, "e0", 5, 3_000); // 3rd: until 6000
    expect(ids(b, 5_999)).not.toContain("e0");
    expect(ids(b, 6_000)).toContain("e0");
    // The cap: a base of 100 s at its 4th ejection would be 400 s; it is OUTLIER_MAX_EJECTION_MS.
    const c = balancer(table(eps(10), { outlierBaseEjectionMs: 100_000 }));
    let t = 0;
    for (let n = 1; n <= 4; n++) {
      fail(c, "e0", 5, t);
      t += Math.min(OUTLIER_MAX_EJECTION_MS, 100_000 * n);
      expect(ids(c, t - 1)).not.toContain("e0");
      expect(ids(c, t)).toContain("e0");
    }
  });

  it("outlier: time back in service decays the count, one per OUTLIER_DECAY_MS", () => {
    const b = balancer(table(eps(10), { outlierBaseEjectionMs: BASE_MS }));
    fail(b, "e0", 5, 0); // 1st, back at 1000
    const later = 1_000 + OUTLIER_DECAY_MS; // one decay: count 0, so this is a 1st again
    fail(b, "e0", 5, later);
    expect(ids(b, later + BASE_MS - 1)).not.toContain("e0");
    expect(ids(b, later + BASE_MS)).toContain("e0");
  });

  it("outlier: never more than the max ejection share, but at least one", () => {
    const b = balancer(table(eps(20), { outlierMaxEjectionPercent: 10, outlierBaseEjectionMs: BASE_MS }));
    for (let i = 0; i < 5; i++) fail(b, `e${i}`, 5, 0);
    const left = ids(b, 0, 200);
    expect(20 - left.length).toBe(2); // 10 % of 20
    const small = balancer(table(eps(3), { outlierMaxEjectionPercent: 10, outlierBaseEjectionMs: BASE_MS }));
    fail(small, "e0", 5, 0);
    fail(small, "e1", 5, 0);
    expect(ids(small, 0)).toEqual(["e1", "e2"]); // 10 % of 3 rounds to 0: one ejection still allowed
  });

  it("outlier: never the last endpoint in service", () => {
    const b = balancer(table(eps(2), { outlierMaxEjectionPercent: 100, outlierBaseEjectionMs: BASE_MS }));
    fail(b, "e0", 5, 0);
    fail(b, "e1", 5, 0);
    expect(ids(b, 0)).toEqual(["e1"]);
    const one = balancer(table(eps(1), { outlierMaxEjectionPercent: 100, outlierBaseEjectionMs: BASE_MS }));
    fail(one, "e0", 50, 0);
    expect(ids(one, 0)).toEqual(["e0"]);
  });

  it("outlier: consecutive failures 0 turns detection off", () => {
    const b = balancer(table(eps(3), { outlierConsecutiveFailures: 0 }));
    fail(b, "e0", 100, 0);
    expect(ids(b, 0)).toContain("e0");
  });

  it("outlier: an ejection survives a table update, and so do requests in flight", () => {
    const t = table(eps(10), { outlierBaseEjectionMs: BASE_MS, policy: "least-connections" });
    const b = balancer(t);
    fail(b, "e0", 5, 0);
    b.onStart("e1");
    b.update(table([...t.endpoints.slice(0, 9).map((e) => ({ ...e, weight: 2 }))], { outlierBaseEjectionMs: BASE_MS, policy: "least-connections" }));
    const seen = ids(b, 10, 16);
    expect(seen).not.toContain("e0"); // still ejected
    expect(seen).not.toContain("e1"); // one request in flight; the seven idle ones come first
  });
});
