/**
 * npx tsx test/bench/balancer/patch-bench.ts: what one registration's patch costs a balancing
 * worker's RouteTable, by the size of the service it lands in. Each round applies a one-endpoint
 * patch (a new instance, then its health flipped, then its removal: what a registration, a check
 * and a deregistration send) to a service of N endpoints, followed by a pick (the replan a patch
 * causes is paid at the next pick; a node with no traffic through its endpoint never pays it).
 * Reports µs per change for the patch alone and with its pick, medians of --repeats runs, and the
 * same change sent as a whole table of the service with its pick (what the feed sent per change
 * before patches, and what a patch cost the worker until it was applied by search), as the
 * side-by-side baseline.
 *
 *   npx tsx test/bench/balancer/patch-bench.ts [--sizes 10,100,1000,10000] [--rounds 2000] [--repeats 5] [--json out.json]
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import type { WireTable } from "../../../src/balancer/messages.js";
import { DEFAULT_BALANCER_CONFIG } from "../../../src/balancer/policy/config.js";
import { RouteTable } from "../../../src/balancer/route-table.js";
import type { Endpoint } from "../../../src/balancer/types.js";

/** ROUNDS_MAX bounds --rounds: each round is three patches and three picks. */
const ROUNDS_MAX = 1_000_000;
/** SIZE_MAX is the registry's limit of instances per service. */
const SIZE_MAX = 10_000;

const { values } = parseArgs({
  options: { sizes: { type: "string", default: "10,100,1000,10000" }, rounds: { type: "string", default: "2000" }, repeats: { type: "string", default: "5" }, json: { type: "string" } },
  strict: true,
});
const sizes = values.sizes.split(",").map(Number);
const rounds = Number(values.rounds);
const repeats = Number(values.repeats);
if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > SIZE_MAX)) throw new RangeError(`--sizes: integers in [1, ${SIZE_MAX}], got "${values.sizes}"`);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > ROUNDS_MAX) throw new RangeError(`--rounds: an integer in [1, ${ROUNDS_MAX}], got "${values.rounds}"`);
if (!Number.isInteger(repeats) || repeats < 1 || repeats > 100) throw new RangeError(`--repeats: an integer in [1, 100], got "${values.repeats}"`);

const endpoint = (i: number, health: Endpoint["health"] = "passing"): Endpoint => ({
  id: `i-${String(i).padStart(6, "0")}`,
  address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
  port: 8080,
  weight: 1,
  priority: 0,
  zone: "z1",
  health,
});
const tableOfSize = (n: number): WireTable => ({ name: "svc", mode: "active-active", config: DEFAULT_BALANCER_CONFIG, endpoints: Array.from({ length: n }, (_, i) => endpoint(i * 2)), master: undefined });

/** run is µs per change over `rounds` rounds of three changes (and a pick after each unless !picks). */
function run(n: number, whole: boolean, picks = true): number {
  const routes = new RouteTable("z1");
  const base = tableOfSize(n);
  routes.apply({ full: true, tables: [base], removed: [] });
  const pick = picks ? () => routes.get("svc")?.balancer.pick({}, 0) : () => undefined;
  // The new instance's id falls in the middle of the sorted table (odd numbers are free).
  const fresh = n + 1;
  const withFresh = (health: Endpoint["health"]): Endpoint[] => [...base.endpoints, endpoint(fresh, health)].sort((a, b) => (a.id < b.id ? -1 : 1));
  const wholeUp = { ...base, endpoints: withFresh("passing") };
  const wholeDown = { ...base, endpoints: withFresh("critical") };
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) {
    if (whole) {
      routes.apply({ full: false, tables: [{ ...wholeUp, endpoints: [...wholeUp.endpoints] }], removed: [] });
      pick();
      routes.apply({ full: false, tables: [{ ...wholeDown, endpoints: [...wholeDown.endpoints] }], removed: [] });
      pick();
      routes.apply({ full: false, tables: [{ ...base, endpoints: [...base.endpoints] }], removed: [] });
      pick();
    } else {
      routes.apply({ full: false, tables: [], removed: [], patches: [{ name: "svc", put: [endpoint(fresh)], removed: [] }] });
      pick();
      routes.apply({ full: false, tables: [], removed: [], patches: [{ name: "svc", put: [endpoint(fresh, "critical")], removed: [] }] });
      pick();
      routes.apply({ full: false, tables: [], removed: [], patches: [{ name: "svc", put: [], removed: [endpoint(fresh).id] }] });
      pick();
    }
  }
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / (rounds * 3);
  if (routes.get("svc")?.table.endpoints.length !== n) throw new Error("the table did not come back to its size: the bench measured something else");
  return us;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};
console.log(`${cpus().length} × ${cpus()[0]?.model ?? "?"}, node ${process.version}; ${rounds} rounds × 3 changes, median of ${repeats}`);
// A discarded pass gets the JIT past its cold start, which the first size would otherwise pay.
run(Math.min(...sizes), false);
run(Math.min(...sizes), true);
const results: { size: number; patchUs: number; patchPickUs: number; wholePickUs: number; ratio: number }[] = [];
for (const n of sizes) {
  const p: number[] = [];
  const pp: number[] = [];
  const w: number[] = [];
  for (let i = 0; i < repeats; i++) {
    p.push(run(n, false, false));
    pp.push(run(n, false));
    w.push(run(n, true));
  }
  const row = { size: n, patchUs: median(p), patchPickUs: median(pp), wholePickUs: median(w), ratio: median(pp) / median(w) };
  results.push(row);
  console.log(`service of ${n}: patch ${row.patchUs.toFixed(2)} µs, patch+pick ${row.patchPickUs.toFixed(2)} µs, whole table+pick ${row.wholePickUs.toFixed(2)} µs (patch+pick/whole+pick ${row.ratio.toFixed(3)})`);
}
if (values.json) writeFileSync(values.json, JSON.stringify({ machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, rounds, repeats, results }, null, 2));
