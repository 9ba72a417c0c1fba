/**
 * The balancing endpoint's counters, kept where the requests run: each worker thread writes into
 * its own SharedArrayBuffer (one writer per buffer, so plain writes suffice), and the node's main
 * thread reads every worker's buffer when Prometheus scrapes (src/metrics/balancer.ts sums them).
 *
 * Why shared memory rather than asking the workers over their port on each scrape (prom-client's
 * AggregatorRegistry does that for cluster workers): a request costs one store into a typed array
 * (no label lookup, no allocation, no message), a scrape needs no answer from a busy worker, and a
 * worker that dies and is started again keeps its buffer, so its counters are merged, not lost.
 *
 * Slots: the main thread gives each service (and each instance, up to a limit) a slot number when
 * the feed first sends its table (StatsSlots.stamp); the worker's route carries its slot.
 */
import type { ToWorker, WireTable } from "./messages.js";
import type { CircuitBreaker, RetryBudget, ServiceBalancer } from "./types.js";

/**
 * STATS_SERVICES_MAX is how many services get their own series (slot 0 is "_other", the services
 * past the limit). The registry holds a few hundred services at most in practice, and every
 * service costs about 25 series per metric family; 256 keeps a scrape under ~100 kB.
 */
export const STATS_SERVICES_MAX = 256;

/**
 * STATS_INSTANCES_MAX is the cardinality limit of the per-instance series (tries and failures by
 * service and instance): past it, instances share the "_other" series (slot 0). Per-instance
 * series grow with every instance ever seen since the node started; 1024 bounds that at 2048
 * series, the size Prometheus' own guidance calls a "large" single metric.
 */
export const STATS_INSTANCES_MAX = 1024;

/** OTHER is the label value of slot 0: the services or instances past the limit. */
export const OTHER = "_other";

/** LATENCY_BUCKETS_SECONDS are the request duration histogram's upper bounds (1 ms to 10 s, Prometheus' spacing). */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** SvcField names the fields of a service's slot. */
export const SvcField = {
  requests: 0,
  errors: 1,
  retries: 2,
  budgetExhausted: 3,
  ejections: 4,
  connections: 5,
  circuitOpen: 6,
  latencySumSeconds: 7,
  /** buckets: LATENCY_BUCKETS_SECONDS.length + 1 counts (the last is +Inf), not cumulative. */
  buckets: 8,
} as const;

/** SVC_STRIDE is the length of one service's slot. */
export const SVC_STRIDE = SvcField.buckets + LATENCY_BUCKETS_SECONDS.length + 1;

/** InstField names the fields of an instance's slot. */
export const InstField = { tries: 0, failures: 1 } as const;

/** INST_STRIDE is the length of one instance's slot. */
export const INST_STRIDE = 2;

const INSTANCES_AT = STATS_SERVICES_MAX * SVC_STRIDE;

/**
 * WorkerField names the fields of the worker's own slot: its V8 heap, which no main-thread figure
 * counts (a worker is an isolate of its own, and with a large registry its route tables are a
 * share of the node's memory worth seeing).
 */
export const WorkerField = { heapUsedBytes: 0, heapTotalBytes: 1 } as const;

/** WORKER_HEAP_REPORT_MS is how often a worker writes its heap figures (a scrape reads the last). */
export const WORKER_HEAP_REPORT_MS = 1_000;

const WORKER_AT = INSTANCES_AT + STATS_INSTANCES_MAX * INST_STRIDE;

/** STATS_BYTES is the size of one worker's buffer. */
export const STATS_BYTES = (WORKER_AT + Object.keys(WorkerField).length) * Float64Array.BYTES_PER_ELEMENT;

/** newStatsBuffer is a zeroed buffer for one worker. */
export function newStatsBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(STATS_BYTES);
}

/** serviceField is where a service slot's field lives in a buffer's Float64Array. */
export function serviceField(slot: number, field: number): number {
  return slot * SVC_STRIDE + field;
}

/** instanceField is where an instance slot's field lives in a buffer's Float64Array. */
export function instanceField(slot: number, field: number): number {
  return INSTANCES_AT + slot * INST_STRIDE + field;
}

/** workerField is where a field of the worker's own slot lives in a buffer's Float64Array. */
export function workerField(field: number): number {
  return WORKER_AT + field;
}

/** clearGauges zeroes the gauges of a buffer whose worker died (its connections and its heap died with it). */
export function clearGauges(buffer: SharedArrayBuffer): void {
  const f = new Float64Array(buffer);
  for (let s = 0; s < STATS_SERVICES_MAX; s++) f[serviceField(s, SvcField.connections)] = 0;
  f[workerField(WorkerField.heapUsedBytes)] = 0;
  f[workerField(WorkerField.heapTotalBytes)] = 0;
}

/** reportHeap writes this thread's V8 heap figures into its buffer (called in the worker). */
export function reportHeap(f: Float64Array, heap: { readonly used_heap_size: number; readonly total_heap_size: number }): void {
  f[workerField(WorkerField.heapUsedBytes)] = heap.used_heap_size;
  f[workerField(WorkerField.heapTotalBytes)] = heap.total_heap_size;
}

/**
 * RouteMeter counts one service's requests in a worker: the proxies call it with plain numbers;
 * the route's budget, breaker and balancer are wrapped (metered()) so their decisions count
 * themselves. A meter without a buffer (metrics off) counts nothing.
 */
export class RouteMeter {
  private readonly at: number;

  constructor(
    private readonly f: Float64Array | undefined,
    readonly slot: number,
  ) {
    this.at = slot * SVC_STRIDE;
  }

  /** finished counts a request that ended after seconds, answered with status (5xx counts as an error). */
  finished(seconds: number, status: number): void {
    const f = this.f;
    if (f === undefined) return;
    const at = this.at;
    f[at + SvcField.requests]! += 1;
    if (status >= 500) f[at + SvcField.errors]! += 1;
    f[at + SvcField.latencySumSeconds]! += seconds;
    let b = 0;
    while (b < LATENCY_BUCKETS_SECONDS.length && seconds > LATENCY_BUCKETS_SECONDS[b]!) b++;
    f[at + SvcField.buckets + b]! += 1;
  }

  /** retried counts one retry of a request. */
  retried(): void {
    if (this.f) this.f[this.at + SvcField.retries]! += 1;
  }

  /** add adds n to one of the service's fields. */
  add(field: number, n: number): void {
    if (this.f) this.f[this.at + field]! += n;
  }

  /** instance counts a try of an instance by its slot (stamped by StatsSlots; 0 past the limit). */
  instance(slot: number, failed: boolean): void {
    const f = this.f;
    if (f === undefined) return;
    const at = instanceField(slot, 0);
    f[at + InstField.tries]! += 1;
    if (failed) f[at + InstField.failures]! += 1;
  }
}

/** NO_METER counts nothing (metrics off, or a route built without stats). */
export const NO_METER = new RouteMeter(undefined, 0);

/** meteredBudget counts retries refused by the budget. */
export function meteredBudget(inner: RetryBudget, meter: () => RouteMeter): RetryBudget {
  return {
    onRequestStart: () => inner.onRequestStart(),
    onRequestEnd: () => inner.onRequestEnd(),
    tryStartRetry: () => {
      const ok = inner.tryStartRetry();
      if (!ok) meter().add(SvcField.budgetExhausted, 1);
      return ok;
    },
    onRetryEnd: () => inner.onRetryEnd(),
    setPercent: (p) => inner.setPercent(p),
  };
}

/** meteredBreaker counts open upstream connections and requests refused by the breaker. */
export function meteredBreaker(inner: CircuitBreaker, meter: () => RouteMeter): CircuitBreaker {
  return {
    tryOpenConnection: () => {
      const ok = inner.tryOpenConnection();
      if (ok) meter().add(SvcField.connections, 1);
      return ok;
    },
    onConnectionClosed: () => {
      meter().add(SvcField.connections, -1);
      inner.onConnectionClosed();
    },
    tryEnqueuePending: () => inner.tryEnqueuePending(),
    onPendingDequeued: () => inner.onPendingDequeued(),
    tryStartRequest: () => {
      const ok = inner.tryStartRequest();
      if (!ok) meter().add(SvcField.circuitOpen, 1);
      return ok;
    },
    onRequestEnd: () => inner.onRequestEnd(),
    setLimits: (l) => inner.setLimits(l),
    counts: () => inner.counts(),
  };
}

/**
 * meteredBalancer counts each try's outcome per instance, and the ejections outlier detection
 * made. instanceSlots maps an endpoint id to its slot (the route adds the slots each table
 * message brings), so a try costs one map lookup.
 */
export function meteredBalancer(inner: ServiceBalancer, meter: () => RouteMeter, instanceSlots: () => ReadonlyMap<string, number>): ServiceBalancer {
  return {
    update: (t) => inner.update(t),
    patch: (endpoints, change) => inner.patch(endpoints, change),
    pick: (req, now) => inner.pick(req, now),
    onStart: (id) => inner.onStart(id),
    onEnd: (id, outcome, now) => {
      const ejected = inner.onEnd(id, outcome, now);
      const m = meter();
      m.instance(instanceSlots().get(id) ?? 0, outcome === "failure");
      if (ejected) m.add(SvcField.ejections, 1);
      return ejected;
    },
  };
}

/**
 * StatsSlots is the main thread's directory of slots: a service or instance gets the next free
 * slot the first time its table is sent, and keeps it while the node runs (counters only grow, so
 * a slot is never given to another name); past the limits, slot 0 ("_other"). A table message
 * carries only the instance slots the worker has not been sent yet (all of them in a full
 * message, which a restarted worker starts from), so a change to a large service costs a map
 * lookup per instance, no copy.
 */
export class StatsSlots {
  private readonly services = new Map<string, number>([[OTHER, 0]]);
  private readonly instances = new Map<string, Map<string, number>>([[OTHER, new Map([[OTHER, 0]])]]);
  private instanceCount = 1;

  /** service is the slot of a service, given now if it has none. */
  service(name: string): number {
    const have = this.services.get(name);
    if (have !== undefined) return have;
    if (this.services.size >= STATS_SERVICES_MAX) return 0;
    this.services.set(name, this.services.size);
    return this.services.size - 1;
  }

  /** instance is the slot of an instance of a service, given now if it has none. */
  instance(service: string, id: string): number {
    return this.instanceSlot(service, id) ?? 0;
  }

  /** serviceNames lists [slot, service] for every slot given. */
  serviceNames(): [number, string][] {
    return [...this.services].map(([name, slot]) => [slot, name]);
  }

  /** instanceNames lists [slot, service, instance] for every slot given. */
  instanceNames(): [number, string, string][] {
    const out: [number, string, string][] = [];
    for (const [service, ids] of this.instances) for (const [id, slot] of ids) out.push([slot, service, id]);
    return out;
  }

  /** stamp gives a table message's services their slots, with the instance slots the workers lack. */
  stamp<M extends ToWorker>(m: M): M {
    if (m.t !== "tables") return m;
    const tables: WireTable[] = m.tables.map((t) => ({ ...t, slot: this.service(t.name), instanceSlots: this.slotsOf(t.name, t.endpoints, m.full) }));
    if (m.patches === undefined) return { ...m, tables };
    // A patch's service has its slot already (its whole table came first); new instances get theirs.
    const patches = m.patches.map((p) => {
      const instanceSlots = this.slotsOf(p.name, p.put, false);
      return instanceSlots.length > 0 ? { ...p, instanceSlots } : p;
    });
    return { ...m, tables, patches };
  }

  /**
   * slotsOf is the [id, slot] pairs to send with a service's endpoints: slots given now, and with
   * `resend` the ones given before too (a full message: a restarted worker starts without them).
   */
  private slotsOf(service: string, endpoints: readonly { readonly id: string }[], resend: boolean): [string, number][] {
    const known = this.instances.get(service);
    const out: [string, number][] = [];
    for (const e of endpoints) {
      const had = known?.get(e.id);
      if (had !== undefined) {
        if (resend) out.push([e.id, had]);
        continue;
      }
      const slot = this.instanceSlot(service, e.id);
      if (slot !== undefined) out.push([e.id, slot]);
    }
    return out;
  }

  /** instanceSlot is an instance's slot, given now if it has none and the limit allows (undefined: past it). */
  private instanceSlot(service: string, id: string): number | undefined {
    let ids = this.instances.get(service);
    const have = ids?.get(id);
    if (have !== undefined) return have;
    if (this.instanceCount >= STATS_INSTANCES_MAX) return undefined;
    if (ids === undefined) {
      ids = new Map();
      this.instances.set(service, ids);
    }
    ids.set(id, this.instanceCount);
    return this.instanceCount++;
  }
}
