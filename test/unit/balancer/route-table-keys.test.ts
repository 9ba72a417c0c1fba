import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { WireTable } from "../../../src/balancer/messages.js";
import { DEFAULT_BALANCER_CONFIG } from "../../../src/balancer/policy/config.js";
import { endpointKey, RouteTable } from "../../../src/balancer/route-table.js";
import { tlsPoolKey, upstreamTlsOf } from "../../../src/balancer/tls.js";

/**
 * RouteTable keeps its live pool keys by counting as tables change; these tests hold it to the
 * plain rule it replaced (every endpoint key of every route, worked out afresh), across full
 * re-lists, removals, updates that move endpoints, and repeated addresses.
 */
const SERVICES = ["a", "b", "c"];
const ADDRESSES = ["10.0.0.1", "10.0.0.2"];
const PORTS = [80, 81];

function table(name: string, endpoints: readonly { id: string; address: string; port: number }[]): WireTable {
  return {
    name,
    mode: "active-active",
    config: DEFAULT_BALANCER_CONFIG,
    endpoints: endpoints.map((e) => ({ ...e, weight: 1, priority: 0, zone: "", health: "passing" as const })),
    master: undefined,
  };
}

/** plainLiveKeys is the old rule: the key of every endpoint of every route the table holds. */
function plainLiveKeys(routes: RouteTable): Set<string> {
  const out = new Set<string>();
  for (const name of SERVICES) {
    const r = routes.get(name);
    if (!r) continue;
    const tls = tlsPoolKey(upstreamTlsOf(r.table.config));
    for (const e of r.table.endpoints) out.add(endpointKey(e) + tls);
  }
  return out;
}

const endpoint = fc.record({ id: fc.constantFrom("i1", "i2", "i3"), address: fc.constantFrom(...ADDRESSES), port: fc.constantFrom(...PORTS) });
const wireTable = fc.record({ name: fc.constantFrom(...SERVICES), endpoints: fc.array(endpoint, { maxLength: 4 }) }).map((t) => table(t.name, t.endpoints));
const message = fc.record({
  full: fc.boolean(),
  tables: fc.uniqueArray(wireTable, { selector: (t) => t.name, maxLength: 3 }),
  removed: fc.subarray(SERVICES),
});

describe("route table live keys", () => {
  it("after any sequence of updates, a key is live exactly when some route's endpoint has it", () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 30 }), (msgs) => {
        const routes = new RouteTable("");
        for (const m of msgs) {
          routes.apply(m);
          const want = plainLiveKeys(routes);
          expect(routes.liveKeyCount).toBe(want.size);
          for (const a of ADDRESSES) for (const p of PORTS) expect(routes.isLive(`${a}:${p}`)).toBe(want.has(`${a}:${p}`));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("an address two services share stays live until the last of them drops it", () => {
    const routes = new RouteTable("");
    routes.apply({ full: true, tables: [table("a", [{ id: "i1", address: "10.0.0.1", port: 80 }]), table("b", [{ id: "j1", address: "10.0.0.1", port: 80 }])], removed: [] });
    expect(routes.isLive("10.0.0.1:80")).toBe(true);
    routes.apply({ full: false, tables: [table("a", [])], removed: [] });
    expect(routes.isLive("10.0.0.1:80")).toBe(true);
    routes.apply({ full: false, tables: [], removed: ["b"] });
    expect(routes.isLive("10.0.0.1:80")).toBe(false);
    expect(routes.liveKeyCount).toBe(0);
  });
});
