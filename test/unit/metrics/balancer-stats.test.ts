/**
 * The balancing endpoint's counters: a meter writes plain numbers into a worker's shared buffer;
 * the route's budget, breaker and balancer (the real policy objects, wrapped) count their own
 * decisions; the main thread's slot directory stops giving slots at its named limits; and the
 * collector sums every worker's buffer into one Prometheus series per service.
 */
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createCircuitBreaker, createRetryBudget, createServiceBalancer, DEFAULT_BALANCER_CONFIG } from "../../../src/balancer/policy/index.js";
import {
  clearGauges,
  reportHeap,
  meteredBalancer,
  meteredBreaker,
  meteredBudget,
  newStatsBuffer,
  OTHER,
  RouteMeter,
  STATS_INSTANCES_MAX,
  STATS_SERVICES_MAX,
  StatsSlots,
  SvcField,
  serviceField,
} from "../../../src/balancer/stats.js";
import type { ToWorker } from "../../../src/balancer/messages.js";
import type { ServiceTable } from "../../../src/balancer/types.js";
import { balancerCollector } from "../../../src/metrics/balancer.js";

/** sample reads one sample's value from a registry's text (undefined: no such line). */
async function sample(reg: Registry, line: string): Promise<number | undefined> {
  const text = await reg.metrics();
  const hit = text.split("\n").find((l) => l.startsWith(`${line} `));
  return hit === undefined ? undefined : Number(hit.slice(line.length + 1));
}

function table(name: string, ids: string[], over: Partial<ServiceTable["config"]> = {}): ServiceTable {
  return {
    name,
    config: { ...DEFAULT_BALANCER_CONFIG, ...over },
    endpoints: ids.map((id, i) => ({ id, address: "127.0.0.1", port: 9000 + i, weight: 1, priority: 0, zone: "", health: "passing" as const })),
  };
}

describe("metrics: balancer counters", () => {
  it("metrics: two workers' buffers are summed into one series per service, histogram buckets cumulative", async () => {
    const slots = new StatsSlots();
    const a = newStatsBuffer();
    const b = newStatsBuffer();
    const slot = slots.service("hello");
    const ma = new RouteMeter(new Float64Array(a), slot);
    const mb = new RouteMeter(new Float64Array(b), slot);
    ma.finished(0.002, 200);
    ma.finished(0.3, 503);
    mb.finished(0.002, 200);
    mb.finished(20, 200); // past the last bucket: only +Inf
    mb.retried();
    const reg = new Registry();
    balancerCollector(reg, { slots, buffers: () => [a, b] });
    expect(await sample(reg, 'raftmesh_balancer_requests_total{service="hello"}')).toBe(4);
    expect(await sample(reg, 'raftmesh_balancer_request_errors_total{service="hello"}')).toBe(1);
    expect(await sample(reg, 'raftmesh_balancer_retries_total{service="hello"}')).toBe(1);
    expect(await sample(reg, 'raftmesh_balancer_request_duration_seconds_bucket{service="hello",le="0.001"}')).toBe(0);
    expect(await sample(reg, 'raftmesh_balancer_request_duration_seconds_bucket{service="hello",le="0.0025"}')).toBe(2);
    expect(await sample(reg, 'raftmesh_balancer_request_duration_seconds_bucket{service="hello",le="0.5"}')).toBe(3);
    expect(await sample(reg, 'raftmesh_balancer_request_duration_seconds_bucket{service="hello",le="10"}')).toBe(3);
    expect(await sample(reg, 'raftmesh_balancer_request_duration_seconds_bucket{service="hello",le="+Inf"}')).toBe(4);
    expect(await sample(reg, 'raftmesh_balancer_request_duration_seconds_count{service="hello"}')).toBe(4);
    expect(await sample(reg, 'raftmesh_balancer_request_duration_seconds_sum{service="hello"}')).toBeCloseTo(20.304, 6);
    expect(await sample(reg, "raftmesh_balancer_workers")).toBe(2);
  });

  it("metrics: the wrapped budget, breaker and balancer count exhaustion, open connections, circuit opens, tries and ejections", () => {
    const buf = new Float64Array(newStatsBuffer());
    const slots = new StatsSlots();
    const t = table("svc", ["e1", "e2", "e3"], { outlierConsecutiveFailures: 2, outlierMaxEjectionPercent: 100, maxRequests: 1 });
    const msg: ToWorker = { t: "tables", full: true, tables: [{ ...t, mode: "active-active" }], removed: [] };
    const stamped = slots.stamp(msg);
    if (stamped.t !== "tables") throw new Error("stamp changed the message kind");
    const wire = stamped.tables[0]!;
    const meter = new RouteMeter(buf, wire.slot ?? -1);
    expect(meter.slot).toBe(1);
    const at = (f: number) => buf[serviceField(meter.slot, f)];
    // Budget: 3 retries may be in flight with no requests (RETRY_BUDGET_MIN_CONCURRENCY); the 4th is refused.
    const budget = meteredBudget(createRetryBudget(20), () => meter);
    for (let i = 0; i < 3; i++) expect(budget.tryStartRetry()).toBe(true);
    expect(budget.tryStartRetry()).toBe(false);
    expect(at(SvcField.budgetExhausted)).toBe(1);
    // Breaker: maxRequests 1 refuses the second request in flight; connections are a gauge.
    const breaker = meteredBreaker(createCircuitBreaker(wire.config), () => meter);
    expect(breaker.tryStartRequest()).toBe(true);
    expect(breaker.tryStartRequest()).toBe(false);
    expect(at(SvcField.circuitOpen)).toBe(1);
    breaker.tryOpenConnection();
    breaker.tryOpenConnection();
    breaker.onConnectionClosed();
    expect(at(SvcField.connections)).toBe(1);
    // Balancer: two failures in a row eject e1; each try counts on its instance's slot.
    const slotsOf = new Map(wire.instanceSlots);
    expect([...slotsOf]).toEqual([["e1", 1], ["e2", 2], ["e3", 3]]);
    // A later change sends only the slots the worker lacks; a full message (a restarted worker) sends them all.
    const more: ToWorker = { t: "tables", full: false, tables: [{ ...table("svc", ["e1", "e2", "e3", "e4"]), mode: "active-active" }], removed: [] };
    const again = slots.stamp(more);
    expect(again.t === "tables" && again.tables[0]?.instanceSlots).toEqual([["e4", 4]]);
    const full = slots.stamp({ ...more, full: true });
    expect(full.t === "tables" && full.tables[0]?.instanceSlots?.length).toBe(4);
    const balancer = meteredBalancer(createServiceBalancer(wire, { random: () => 0.5, localZone: "" }), () => meter, () => slotsOf);
    for (let i = 0; i < 2; i++) {
      balancer.onStart("e1");
      balancer.onEnd("e1", "failure", 1_000);
    }
    balancer.onStart("e2");
    balancer.onEnd("e2", "success", 1_000);
    expect(at(SvcField.ejections)).toBe(1);
    const reg = new Registry();
    const buffer = buf.buffer as SharedArrayBuffer;
    balancerCollector(reg, { slots, buffers: () => [buffer] });
    return Promise.all([
      expect(sample(reg, 'raftmesh_balancer_instance_tries_total{service="svc",instance="e1"}')).resolves.toBe(2),
      expect(sample(reg, 'raftmesh_balancer_instance_failures_total{service="svc",instance="e1"}')).resolves.toBe(2),
      expect(sample(reg, 'raftmesh_balancer_instance_failures_total{service="svc",instance="e2"}')).resolves.toBe(0),
      expect(sample(reg, 'raftmesh_balancer_ejections_total{service="svc"}')).resolves.toBe(1),
      expect(sample(reg, 'raftmesh_balancer_upstream_connections{service="svc"}')).resolves.toBe(1),
    ]).then(() => {
      // A dead worker's connections died with it: its gauges are cleared, its counters kept.
      clearGauges(buffer);
      expect(at(SvcField.connections)).toBe(0);
      expect(at(SvcField.circuitOpen)).toBe(1);
    });
  });

  it("metrics: services past STATS_SERVICES_MAX share the _other slot; a slot is never given twice", () => {
    const slots = new StatsSlots();
    const given = new Set<number>();
    // Slot 0 is _other: STATS_SERVICES_MAX - 1 services get their own.
    for (let i = 1; i < STATS_SERVICES_MAX; i++) given.add(slots.service(`s${i}`));
    expect(given.size).toBe(STATS_SERVICES_MAX - 1);
    expect(given.has(0)).toBe(false);
    expect(Math.max(...given)).toBe(STATS_SERVICES_MAX - 1);
    expect(slots.service("one-too-many")).toBe(0);
    expect(slots.service("s1")).toBe(1);
    expect(slots.serviceNames().length).toBe(STATS_SERVICES_MAX);
    expect(slots.serviceNames().find(([s]) => s === 0)?.[1]).toBe(OTHER);
  });

  it("metrics: instances past STATS_INSTANCES_MAX (the per-instance cardinality limit) share the _other series", async () => {
    const slots = new StatsSlots();
    for (let i = 1; i < STATS_INSTANCES_MAX; i++) expect(slots.instance("svc", `i${i}`)).toBe(i);
    expect(slots.instance("svc", "past-the-limit")).toBe(0);
    const buf = newStatsBuffer();
    const meter = new RouteMeter(new Float64Array(buf), slots.service("svc"));
    meter.instance(slots.instance("svc", "past-the-limit"), true);
    meter.instance(slots.instance("svc", `i${STATS_INSTANCES_MAX - 1}`), false);
    const reg = new Registry();
    balancerCollector(reg, { slots, buffers: () => [buf] });
    const text = await reg.metrics();
    const series = text.split("\n").filter((l) => l.startsWith("raftmesh_balancer_instance_tries_total{"));
    expect(series.length).toBe(STATS_INSTANCES_MAX);
    expect(await sample(reg, `raftmesh_balancer_instance_tries_total{service="${OTHER}",instance="${OTHER}"}`)).toBe(1);
    expect(await sample(reg, `raftmesh_balancer_instance_failures_total{service="${OTHER}",instance="${OTHER}"}`)).toBe(1);
    expect(await sample(reg, `raftmesh_balancer_instance_tries_total{service="svc",instance="i${STATS_INSTANCES_MAX - 1}"}`)).toBe(1);
  });

  it("metrics: each worker's heap is its own series, and a dead worker's is zeroed until its successor writes", async () => {
    const slots = new StatsSlots();
    const a = newStatsBuffer();
    const b = newStatsBuffer();
    reportHeap(new Float64Array(a), { used_heap_size: 30e6, total_heap_size: 50e6 });
    reportHeap(new Float64Array(b), { used_heap_size: 10e6, total_heap_size: 12e6 });
    const reg = new Registry();
    balancerCollector(reg, { slots, buffers: () => [a, b] });
    expect(await sample(reg, 'raftmesh_balancer_worker_heap_bytes{worker="0",kind="used"}')).toBe(30e6);
    expect(await sample(reg, 'raftmesh_balancer_worker_heap_bytes{worker="0",kind="total"}')).toBe(50e6);
    expect(await sample(reg, 'raftmesh_balancer_worker_heap_bytes{worker="1",kind="used"}')).toBe(10e6);
    clearGauges(b);
    expect(await sample(reg, 'raftmesh_balancer_worker_heap_bytes{worker="1",kind="total"}')).toBe(0);
    expect(await sample(reg, 'raftmesh_balancer_worker_heap_bytes{worker="0",kind="total"}')).toBe(50e6);
  });
});
