import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { WirePatch, WireTable } from "../../../src/balancer/messages.js";
import { BalancerConfigError, BALANCE_POLICIES, ENDPOINTS_MAX, WEIGHT_MAX } from "../../../src/balancer/policy/index.js";
import { patched, RouteTable } from "../../../src/balancer/route-table.js";
import type { Endpoint } from "../../../src/balancer/types.js";
import { balancer, ep, eps, table } from "./harness.js";

/**
 * A patch changes a balancer and a worker's route table by searching for the endpoints it names
 * (O(the patch)), where update and a whole table walk every endpoint. These tests hold the patch
 * to what update does with the same resulting table: the same picks from the same random draws
 * (so the same states in the same order), outlier ejections and connection counts kept by id, and
 * refusals that change nothing.
 */
const IDS = ["a", "b", "c", "d", "e", "f"];
const endpointArb = fc.record({
  id: fc.constantFrom(...IDS),
  weight: fc.integer({ min: 0, max: 3 }),
  priority: fc.constantFrom(0, 1),
  zone: fc.constantFrom("z1", "z2"),
  health: fc.constantFrom("passing" as const, "warning" as const, "critical" as const),
  port: fc.constantFrom(9000, 9001),
});
const toEndpoint = (e: { id: string; weight: number; priority: number; zone: string; health: Endpoint["health"]; port: number }): Endpoint => ep(e.id, e);
const sortedUnique = (es: Endpoint[]): Endpoint[] => [...new Map(es.map((e) => [e.id, e])).values()].sort((a, b) => (a.id < b.id ? -1 : 1));
const patchArb = fc.record({
  put: fc.uniqueArray(endpointArb, { selector: (e) => e.id, maxLength: 3 }).map((es) => es.map(toEndpoint)),
  removed: fc.subarray(IDS, { maxLength: 3 }),
});
/** A step is a patch, or requests: some picks, each ended as a success or failure (failures eject outliers). */
const stepArb = fc.oneof(
  patchArb.map((p) => ({ kind: "patch" as const, p })),
  fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }).map((outcomes) => ({ kind: "requests" as const, outcomes })),
);

describe("balancer: patches", () => {
  it("a balancer patched holds what one updated with the same table holds: the same picks, outliers and loads", () => {
    // The schedules must reach ejections and picks after patches, or the property says little.
    let ejections = 0;
    let picksAfterPatch = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...BALANCE_POLICIES),
        fc.array(endpointArb, { maxLength: 6 }).map((es) => sortedUnique(es.map(toEndpoint))),
        fc.array(stepArb, { maxLength: 12 }),
        fc.integer({ min: 1, max: 1_000 }),
        (policy, start, steps, seed) => {
          // Two failures in a row eject: the requests steps reach ejections (counted below).
          const config = { policy, outlierConsecutiveFailures: 2 };
          const byPatch = balancer(table(start, config), seed);
          const byUpdate = balancer(table(start, config), seed);
          let endpoints = start;
          let now = 0;
          let patchedYet = false;
          for (const step of steps) {
            now += 1_000;
            if (step.kind === "patch") {
              endpoints = patched(endpoints, step.p);
              byPatch.patch(endpoints, step.p);
              byUpdate.update(table(endpoints, config));
              patchedYet = true;
              continue;
            }
            // Requests overlap (all start, then all end) so least-connections and p2c see loads.
            const picked = step.outcomes.map((_, i) => {
              const a = byPatch.pick({ hashKey: `k${i}` }, now);
              const b = byUpdate.pick({ hashKey: `k${i}` }, now);
              expect(a?.id).toBe(b?.id);
              if (patchedYet && a) picksAfterPatch++;
              if (a) byPatch.onStart(a.id);
              if (b) byUpdate.onStart(b.id);
              return a?.id;
            });
            step.outcomes.forEach((failed, i) => {
              const id = picked[i];
              if (id === undefined) return;
              const ejected = byPatch.onEnd(id, failed ? "failure" : "success", now);
              expect(ejected).toBe(byUpdate.onEnd(id, failed ? "failure" : "success", now));
              if (ejected) ejections++;
            });
          }
          for (let i = 0; i < 10; i++) expect(byPatch.pick({ hashKey: `end${i}` }, now)?.id).toBe(byUpdate.pick({ hashKey: `end${i}` }, now)?.id);
        },
      ),
      { numRuns: 400 },
    );
    expect(ejections).toBeGreaterThan(20);
    expect(picksAfterPatch).toBeGreaterThan(200);
  });

  it("a bad patch is refused with the field named, and the balancer keeps its endpoints", () => {
    const b = balancer(table(eps(3)));
    const bad = (endpoints: Endpoint[], put: Endpoint[], field: string) => {
      try {
        b.patch(endpoints, { put, removed: [] });
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(BalancerConfigError);
        expect((e as BalancerConfigError).field).toBe(field);
      }
    };
    const heavy = ep("e9", { weight: WEIGHT_MAX + 1 });
    bad(patched(eps(3), { put: [heavy], removed: [] }), [heavy], "put[0].weight");
    const fractional = ep("e1", { weight: 0.5 });
    bad(patched(eps(3), { put: [ep("e0"), fractional], removed: [] }), [ep("e0"), fractional], "put[1].weight");
    const nowhere = ep("e8", { priority: Number.NaN });
    bad(patched(eps(3), { put: [nowhere], removed: [] }), [nowhere], "put[0].priority");
    bad(eps(ENDPOINTS_MAX + 1), [ep("x")], "endpoints");
    const seen = new Set<string | undefined>();
    for (let i = 0; i < 30; i++) seen.add(b.pick({}, 0)?.id);
    expect([...seen].sort()).toEqual(["e0", "e1", "e2"]);
  });

  it("a balancer whose table was not in id order takes a patch as a whole update", () => {
    const unordered = [ep("c"), ep("a"), ep("b")];
    const b = balancer(table(unordered));
    // The table's new endpoints, as a caller that keeps this order would give them.
    b.patch([ep("c"), ep("a")], { put: [], removed: ["b"] });
    const seen = new Set<string | undefined>();
    for (let i = 0; i < 20; i++) seen.add(b.pick({}, 0)?.id);
    expect([...seen].sort()).toEqual(["a", "c"]);
  });
});

describe("route table: patches", () => {
  const wire = (endpoints: Endpoint[]): WireTable => ({ name: "svc", mode: "active-active", config: table([]).config, endpoints, master: undefined });
  const keysOf = (routes: RouteTable, endpoints: readonly Endpoint[]) => endpoints.every((e) => routes.isLive(`${e.address}:${e.port}`));

  it("after any patches, the route's table is the patched table and a pool key is live exactly when an endpoint has it", () => {
    fc.assert(
      fc.property(fc.array(endpointArb, { maxLength: 6 }).map((es) => sortedUnique(es.map(toEndpoint))), fc.array(patchArb, { maxLength: 15 }), (start, patches) => {
        const routes = new RouteTable("z1");
        routes.apply({ full: true, tables: [wire(start)], removed: [] });
        let want = start;
        for (const p of patches) {
          routes.apply({ full: false, tables: [], removed: [], patches: [{ name: "svc", ...p } satisfies WirePatch] });
          want = patched(want, p);
          expect(routes.get("svc")?.table.endpoints).toEqual(want);
          const ports = new Set(want.map((e) => e.port));
          expect(routes.liveKeyCount).toBe(ports.size);
          expect(keysOf(routes, want)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("a refused patch leaves the route and its live keys as they were", () => {
    const bad: string[] = [];
    const routes = new RouteTable("z1", Math.random, (name) => bad.push(name));
    routes.apply({ full: true, tables: [wire([ep("a", { port: 1 }), ep("b", { port: 2 })])], removed: [] });
    const before = routes.get("svc")?.table;
    routes.apply({ full: false, tables: [], removed: [], patches: [{ name: "svc", put: [ep("c", { port: 3, weight: -1 })], removed: ["a"] }] });
    expect(bad).toEqual(["svc"]);
    expect(routes.get("svc")?.table).toBe(before);
    expect(routes.isLive("127.0.0.1:1")).toBe(true);
    expect(routes.isLive("127.0.0.1:3")).toBe(false);
  });

  it("a table not in id order is put in order by its first patch, which then applies as to an ordered one", () => {
    const routes = new RouteTable("z1");
    routes.apply({ full: true, tables: [wire([ep("c"), ep("a"), ep("b")])], removed: [] });
    routes.apply({ full: false, tables: [], removed: [], patches: [{ name: "svc", put: [ep("d")], removed: ["a"] }] });
    expect(routes.get("svc")?.table.endpoints.map((e) => e.id)).toEqual(["b", "c", "d"]);
    routes.apply({ full: false, tables: [], removed: [], patches: [{ name: "svc", put: [ep("a")], removed: ["c"] }] });
    expect(routes.get("svc")?.table.endpoints.map((e) => e.id)).toEqual(["a", "b", "d"]);
  });
});
