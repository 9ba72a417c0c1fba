/**
 * Helpers shared by the balancer's unit tests: a seeded random source, endpoint and table
 * builders, and a pick counter. Pure: the tests replay exactly from their seeds.
 */
import { balancerConfig, createServiceBalancer } from "../../../src/balancer/policy/index.js";
import type { BalancerConfig, Endpoint, PickRequest, ServiceBalancer, ServiceTable } from "../../../src/balancer/types.js";

/** mulberry32 is a small seeded PRNG in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** ep builds an endpoint with defaults: weight 1, priority 0, zone "z1", passing. */
export function ep(id: string, over: Partial<Endpoint> = {}): Endpoint {
  return { id, address: "127.0.0.1", port: 9000, weight: 1, priority: 0, zone: "z1", health: "passing", ...over };
}

/** eps builds n endpoints e0..e(n-1). */
export function eps(n: number, over: (i: number) => Partial<Endpoint> = () => ({})): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ep(`e${i}`, over(i)));
}

/** table builds a service table with `config` over the defaults. */
export function table(endpoints: readonly Endpoint[], config: Partial<BalancerConfig> = {}, master?: ServiceTable["master"]): ServiceTable {
  return master === undefined ? { name: "svc", config: balancerConfig(config), endpoints } : { name: "svc", config: balancerConfig(config), endpoints, master };
}

/** balancer builds a ServiceBalancer with a seeded random source. */
export function balancer(t: ServiceTable, seed = 1, localZone = "z1"): ServiceBalancer {
  return createServiceBalancer(t, { random: mulberry32(seed), localZone });
}

/** countPicks picks `n` times (ending each request at once) and counts picks per endpoint id; "none" counts undefined. */
export function countPicks(b: ServiceBalancer, n: number, nowMs = 0, req: (i: number) => PickRequest = () => ({})): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = b.pick(req(i), nowMs)?.id ?? "none";
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** share returns counts[id] / total. */
export function share(counts: ReadonlyMap<string, number>, id: string): number {
  let total = 0;
  for (const v of counts.values()) total += v;
  return (counts.get(id) ?? 0) / total;
}
