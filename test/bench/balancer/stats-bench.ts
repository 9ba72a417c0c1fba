/**
 * The balancing endpoint's counting cost per request, in isolation: one request's worth of what
 * the metered route does (meter.finished, a try's onStart/onEnd through the wrapped balancer, a
 * breaker start/end) against the same calls on the unwrapped policy objects. Run with
 * `npx tsx test/bench/balancer/stats-bench.ts [iterations]`.
 */
import { performance } from "node:perf_hooks";
import { createCircuitBreaker, createServiceBalancer, DEFAULT_BALANCER_CONFIG } from "../../../src/balancer/policy/index.js";
import type { ToWorker } from "../../../src/balancer/messages.js";
import { meteredBalancer, meteredBreaker, newStatsBuffer, RouteMeter, StatsSlots } from "../../../src/balancer/stats.js";
import type { ServiceTable } from "../../../src/balancer/types.js";

const N = Number(process.argv[2] ?? 2_000_000);
const t: ServiceTable = {
  name: "hello",
  config: DEFAULT_BALANCER_CONFIG,
  endpoints: ["b0", "b1", "b2"].map((id, i) => ({ id, address: "127.0.0.1", port: 9000 + i, weight: 1, priority: 0, zone: "", health: "passing" as const })),
};
const slots = new StatsSlots();
const message: ToWorker = { t: "tables", full: true, tables: [{ ...t, mode: "active-active" }], removed: [] };
const stamped = slots.stamp(message);
const wire = stamped.t === "tables" ? stamped.tables[0]! : t;
const meter = new RouteMeter(new Float64Array(newStatsBuffer()), slots.service("hello"));
const ids = new Map(stamped.t === "tables" ? stamped.tables[0]?.instanceSlots : []);

function run(metered: boolean): number {
  const inner = createServiceBalancer(wire, { random: Math.random, localZone: "" });
  const innerBreaker = createCircuitBreaker(wire.config);
  const balancer = metered ? meteredBalancer(inner, () => meter, () => ids) : inner;
  const breaker = metered ? meteredBreaker(innerBreaker, () => meter) : innerBreaker;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const started = metered ? performance.now() : 0;
    breaker.tryStartRequest();
    const ep = balancer.pick({}, i)!;
    balancer.onStart(ep.id);
    balancer.onEnd(ep.id, "success", i);
    breaker.onRequestEnd();
    if (metered) meter.finished((performance.now() - started) / 1000, 200);
  }
  return ((performance.now() - t0) * 1e6) / N;
}

for (let round = 0; round < 3; round++) {
  const off = run(false);
  const on = run(true);
  process.stdout.write(`round ${round}: per request ${off.toFixed(0)} ns unmetered, ${on.toFixed(0)} ns metered: counting costs ${(on - off).toFixed(0)} ns\n`);
}
