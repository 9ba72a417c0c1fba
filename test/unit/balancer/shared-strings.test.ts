import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SharedStrings, ZONES_SHARED_MAX } from "../../../src/balancer/shared-strings.js";
import type { Endpoint } from "../../../src/balancer/types.js";

const endpoint = (id: string, zone: string, health: Endpoint["health"]): Endpoint => ({ id, address: "10.0.0.1", port: 80, weight: 1, priority: 0, zone, health });

describe("SharedStrings", () => {
  it("property: sharing changes no value of any endpoint", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ id: fc.string(), zone: fc.string({ maxLength: 6 }), health: fc.constantFrom("passing", "warning", "critical") as fc.Arbitrary<Endpoint["health"]> }), { maxLength: 50 }), (rows) => {
        const eps = rows.map((r) => endpoint(r.id, r.zone, r.health));
        const before = JSON.stringify(eps);
        new SharedStrings().share(eps);
        expect(JSON.stringify(eps)).toBe(before);
      }),
    );
  });

  it("keeps at most ZONES_SHARED_MAX zones; past it a zone is left as it came", () => {
    const s = new SharedStrings();
    const eps = Array.from({ length: ZONES_SHARED_MAX + 10 }, (_, i) => endpoint(`i${i}`, `zone-${i}`, "passing"));
    s.share(eps);
    expect(s.zoneCount).toBe(ZONES_SHARED_MAX);
    expect(eps.at(-1)?.zone).toBe(`zone-${ZONES_SHARED_MAX + 9}`);
  });
});
