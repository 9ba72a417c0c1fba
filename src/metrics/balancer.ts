/**
 * Balancing endpoint metrics, merged from every worker thread at scrape time: each worker counts
 * into its own shared buffer (src/balancer/stats.ts explains why shared memory); this collector
 * sums the buffers slot by slot and names the slots with the main thread's directory. Nothing is
 * asked of the workers, so a scrape never waits for a busy one.
 */
import type { Metric, MetricType, Registry } from "prom-client";
import { LATENCY_BUCKETS_SECONDS, InstField, instanceField, serviceField, type StatsSlots, SvcField, WorkerField, workerField } from "../balancer/stats.js";

/** BalancerStatsSource is what a running balancer exposes when metrics are on (Balancer.stats). */
export interface BalancerStatsSource {
  readonly slots: StatsSlots;
  buffers(): SharedArrayBuffer[];
}

type Value = { labels: Record<string, string | number>; value: number; metricName?: string };

/** COUNTERS are the per-service fields exported as counters (name, help, field). */
const COUNTERS: readonly [string, string, number][] = [
  ["raftmesh_balancer_requests_total", "Requests proxied by the balancing endpoint, by service.", SvcField.requests],
  ["raftmesh_balancer_request_errors_total", "Proxied requests answered with a 5xx (the instance's or the endpoint's own), by service.", SvcField.errors],
  ["raftmesh_balancer_retries_total", "Retries of proxied requests, by service.", SvcField.retries],
  ["raftmesh_balancer_retry_budget_exhausted_total", "Retries refused because the service's retry budget was spent.", SvcField.budgetExhausted],
  ["raftmesh_balancer_ejections_total", "Instances ejected by outlier detection, by service.", SvcField.ejections],
  ["raftmesh_balancer_circuit_open_total", "Requests refused by the service's circuit breaker (maxRequests).", SvcField.circuitOpen],
];

/** balancerCollector registers the merged balancer series in reg. */
export function balancerCollector(reg: Registry, src: BalancerStatsSource): void {
  const views = () => src.buffers().map((b) => new Float64Array(b));
  const sumService = (fs: Float64Array[], slot: number, field: number) => {
    let v = 0;
    for (const f of fs) v += f[serviceField(slot, field)] ?? 0;
    return v;
  };
  for (const [name, help, field] of COUNTERS) {
    register(reg, name, help, "counter", () => {
      const fs = views();
      return src.slots.serviceNames().map(([slot, service]) => ({ labels: { service }, value: sumService(fs, slot, field) }));
    });
  }
  register(reg, "raftmesh_balancer_worker_heap_bytes", "V8 heap of each balancing worker thread (kind used or total; the process's nodejs_heap_* series count the main thread only), as the worker last wrote it (every second).", "gauge", () =>
    views().flatMap((f, worker) => [
      { labels: { worker, kind: "used" }, value: f[workerField(WorkerField.heapUsedBytes)] ?? 0 },
      { labels: { worker, kind: "total" }, value: f[workerField(WorkerField.heapTotalBytes)] ?? 0 },
    ]),
  );
  register(reg, "raftmesh_balancer_upstream_connections", "Open connections from the balancing endpoint to a service's instances.", "gauge", () => {
    const fs = views();
    return src.slots.serviceNames().map(([slot, service]) => ({ labels: { service }, value: sumService(fs, slot, SvcField.connections) }));
  });
  register(reg, "raftmesh_balancer_request_duration_seconds", "Time of a proxied request, from its head to its end, by service.", "histogram", () => {
    const fs = views();
    const out: Value[] = [];
    for (const [slot, service] of src.slots.serviceNames()) {
      let cumulative = 0;
      LATENCY_BUCKETS_SECONDS.forEach((le, b) => {
        cumulative += sumService(fs, slot, SvcField.buckets + b);
        out.push({ metricName: "raftmesh_balancer_request_duration_seconds_bucket", labels: { service, le }, value: cumulative });
      });
      const count = cumulative + sumService(fs, slot, SvcField.buckets + LATENCY_BUCKETS_SECONDS.length);
      out.push({ metricName: "raftmesh_balancer_request_duration_seconds_bucket", labels: { service, le: "+Inf" }, value: count });
      out.push({ metricName: "raftmesh_balancer_request_duration_seconds_sum", labels: { service }, value: sumService(fs, slot, SvcField.latencySumSeconds) });
      out.push({ metricName: "raftmesh_balancer_request_duration_seconds_count", labels: { service }, value: count });
    }
    return out;
  });
  const perInstance = (field: number) => () => {
    const fs = views();
    return src.slots.instanceNames().map(([slot, service, instance]) => {
      let v = 0;
      for (const f of fs) v += f[instanceField(slot, field)] ?? 0;
      return { labels: { service, instance }, value: v };
    });
  };
  register(reg, "raftmesh_balancer_instance_tries_total", "Tries sent to each instance (instances past STATS_INSTANCES_MAX are summed in instance=\"_other\").", "counter", perInstance(InstField.tries));
  register(reg, "raftmesh_balancer_instance_failures_total", "Failed tries of each instance (connect error, reset, timeout or 5xx).", "counter", perInstance(InstField.failures));
  register(reg, "raftmesh_balancer_workers", "Worker threads of the balancing endpoint whose counters are merged here.", "gauge", () => [{ labels: {}, value: src.buffers().length }]);
}

/** register adds a metric whose values are computed at scrape time (prom-client formats anything with get()). */
function register(reg: Registry, name: string, help: string, type: `${MetricType}`, values: () => Value[]): void {
  const metric = { name, help, type, aggregator: "sum", get: async () => ({ name, help, type, aggregator: "sum", values: values() }) };
  reg.registerMetric(metric as unknown as Metric);
}
