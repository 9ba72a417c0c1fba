/**
 * Invariants of pick() over random tables, every policy: never a non-master, never an excluded
 * endpoint, never a drained one, never an unhealthy one outside panic, and something whenever a
 * healthy endpoint exists.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BALANCE_POLICIES } from "../../../src/balancer/policy/index.js";
import type { Endpoint, Health } from "../../../src/balancer/types.js";
import { balancer, table } from "./harness.js";

const endpointArb = fc.record({
  weight: fc.integer({ min: 0, max: 5 }),
  priority: fc.integer({ min: 0, max: 2 }),
  zone: fc.constantFrom("z1", "z2"),
  health: fc.constantFrom<Health>("passing", "warning", "critical"),
});

describe("balancer: pick invariants", () => {
  it("invariants: every pick respects master, exclusion, drain and health (panic aside)", () => {
    fc.assert(
      fc.property(
        fc.array(endpointArb, { minLength: 0, maxLength: 12 }),
        fc.constantFrom(...BALANCE_POLICIES),
        fc.constantFrom<"ring" | "maglev">("ring", "maglev"),
        fc.option(fc.integer({ min: 0, max: 11 }), { nil: undefined }),
        fc.integer({ min: 0, max: 100 }),
        fc.array(fc.integer({ min: 0, max: 11 }), { maxLength: 3 }),
        fc.integer(),
        (specs, policy, hashMethod, masterIndex, panicThresholdPercent, excluded, seed) => {
          const endpoints: Endpoint[] = specs.map((s, i) => ({ id: `e${i}`, address: "127.0.0.1", port: 9000 + i, ...s }));
          const master = masterIndex === undefined ? undefined : { id: `e${masterIndex}`, epoch: 1 };
          const b = balancer(table(endpoints, { policy, hashMethod, panicThresholdPercent }, master), seed);
          const exclude = new Set(excluded.map((i) => `e${i}`));
          const usable = endpoints.filter((e) => e.weight > 0);
          const cls: Health = usable.some((e) => e.health === "passing") ? "passing" : "warning";
          const healthy = usable.filter((e) => e.health === cls);
          const panic = panicThresholdPercent > 0 && healthy.length * 100 < panicThresholdPercent * usable.length;
          for (let k = 0; k < 20; k++) {
            const plain = b.pick({ hashKey: `k${k}` }, 0);
            const retry = b.pick({ hashKey: `k${k}`, exclude }, 0);
            if (retry !== undefined) expect(exclude.has(retry.id)).toBe(false);
            for (const got of [plain, retry]) {
              if (master !== undefined) {
                if (got !== undefined) expect(got.id).toBe(master.id);
                continue;
              }
              if (got === undefined) continue;
              expect(got.weight).toBeGreaterThan(0);
              if (!panic) expect(got.health).toBe(cls);
            }
            if (master === undefined && healthy.length > 0) expect(plain).toBeDefined();
            const m = endpoints.find((e) => e.id === master?.id);
            if (m !== undefined && m.health !== "critical") expect(plain?.id).toBe(m.id);
          }
        },
      ),
      { seed: 99, numRuns: 400 },
    );
  });
});
