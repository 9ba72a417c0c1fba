/**
 * A circuit breaker of one service (Envoy's thresholds): bounds on upstream connections, requests
 * waiting for a connection, and requests in flight. Past a bound the data plane answers 503 at
 * once instead of queueing without end behind a slow service.
 *
 * The counters live in an Int32Array and change with Atomics, so the data plane may back them with
 * a SharedArrayBuffer and give every worker the same three counters: the limits then hold for the
 * node, not per worker. A plain Int32Array works the same within one thread. `tally`, when given,
 * is this worker's own share of the shared counts (only this worker writes it): when a worker dies
 * with connections counted, its owner subtracts the tally from the shared counts, so a crash
 * cannot leave a service's limit taken for good.
 */
import type { BreakerLimit, CircuitBreaker } from "../types.js";
import { BalancerConfigError } from "./errors.js";

/** CircuitLimits are the three bounds; 0 means unbounded. */
export interface CircuitLimits {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
}

const CONNECTIONS = 0;
const PENDING = 1;
const REQUESTS = 2;
/** COUNTER_SLOTS is the length of the counters array a breaker needs. */
export const COUNTER_SLOTS = 3;

/** AtomicCircuitBreaker is CircuitBreaker over three counters. */
export class AtomicCircuitBreaker implements CircuitBreaker {
  private limits: [number, number, number] = [0, 0, 0];
  /** refused counts refusals per limit, for metrics. */
  readonly refused: Record<BreakerLimit, number> = { connections: 0, pending: 0, requests: 0 };

  constructor(
    limits: CircuitLimits,
    private readonly counters: Int32Array = new Int32Array(COUNTER_SLOTS),
    private readonly tally?: Int32Array,
  ) {
    if (counters.length < COUNTER_SLOTS) throw new BalancerConfigError("counters", `must hold ${COUNTER_SLOTS} slots`);
    if (tally && tally.length < COUNTER_SLOTS) throw new BalancerConfigError("tally", `must hold ${COUNTER_SLOTS} slots`);
    this.setLimits(limits);
  }

  tryOpenConnection(): boolean {
    return this.tryTake(CONNECTIONS, "connections");
  }
  onConnectionClosed(): void {
    this.release(CONNECTIONS);
  }
  tryEnqueuePending(): boolean {
    return this.tryTake(PENDING, "pending");
  }
  onPendingDequeued(): void {
    this.release(PENDING);
  }
  tryStartRequest(): boolean {
    return this.tryTake(REQUESTS, "requests");
  }
  onRequestEnd(): void {
    this.release(REQUESTS);
  }

  setLimits(limits: CircuitLimits): void {
    const fields = ["maxConnections", "maxPendingRequests", "maxRequests"] as const;
    for (const f of fields) {
      const v = limits[f];
      if (!Number.isInteger(v) || v < 0 || v > 0x7fff_ffff) throw new BalancerConfigError(`config.${f}`, "must be an integer in [0, 2147483647]");
    }
    this.limits = [limits.maxConnections, limits.maxPendingRequests, limits.maxRequests];
  }

  counts(): { readonly connections: number; readonly pending: number; readonly requests: number } {
    return { connections: Atomics.load(this.counters, CONNECTIONS), pending: Atomics.load(this.counters, PENDING), requests: Atomics.load(this.counters, REQUESTS) };
  }

  /** tryTake increments slot unless it is at its limit (compare-and-swap, so concurrent workers never overshoot). */
  private tryTake(slot: number, name: BreakerLimit): boolean {
    const limit = this.limits[slot] as number;
    for (;;) {
      const cur = Atomics.load(this.counters, slot);
      if (limit !== 0 && cur >= limit) {
        this.refused[name]++;
        return false;
      }
      if (Atomics.compareExchange(this.counters, slot, cur, cur + 1) === cur) {
        if (this.tally) Atomics.add(this.tally, slot, 1);
        return true;
      }
    }
  }

  private release(slot: number): void {
    if (this.tally) {
      // Only what this worker took is released here (a dead worker's share was subtracted by its owner).
      if (Atomics.load(this.tally, slot) <= 0) return;
      Atomics.sub(this.tally, slot, 1);
    }
    for (;;) {
      const cur = Atomics.load(this.counters, slot);
      if (cur <= 0) return; // an unmatched release is a caller bug; it must not drive the count negative
      if (Atomics.compareExchange(this.counters, slot, cur, cur - 1) === cur) return;
    }
  }
}

/**
 * SharedBreakerCounters lays out the circuit-breaker counters of a worker pool in one
 * SharedArrayBuffer: for each service slot, the node's shared counts (row 0) and each worker's
 * tally (row 1 + worker). The main thread assigns slots by service name; every worker builds its
 * breaker of a service over that slot, so the limits hold for the node.
 */
export class SharedBreakerCounters {
  readonly buffer: SharedArrayBuffer;

  constructor(
    readonly serviceSlots: number,
    readonly workers: number,
    buffer?: SharedArrayBuffer,
  ) {
    const bytes = serviceSlots * (1 + workers) * COUNTER_SLOTS * Int32Array.BYTES_PER_ELEMENT;
    if (buffer && buffer.byteLength < bytes) throw new BalancerConfigError("counters", `must hold ${bytes} bytes`);
    this.buffer = buffer ?? new SharedArrayBuffer(bytes);
  }

  /** shared is the node-wide counts of a service slot. */
  shared(slot: number): Int32Array {
    return this.view(slot, 0);
  }

  /** tally is one worker's share of a service slot's counts. */
  tally(slot: number, worker: number): Int32Array {
    return this.view(slot, 1 + worker);
  }

  /** forgetWorker subtracts a dead worker's tallies from the shared counts and zeroes them (call only when it no longer runs). */
  forgetWorker(worker: number): void {
    for (let s = 0; s < this.serviceSlots; s++) {
      const shared = this.shared(s);
      const own = this.tally(s, worker);
      for (let k = 0; k < COUNTER_SLOTS; k++) {
        const n = Atomics.exchange(own, k, 0);
        if (n > 0) Atomics.sub(shared, k, Math.min(n, Atomics.load(shared, k)));
      }
    }
  }

  private view(slot: number, row: number): Int32Array {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.serviceSlots) throw new BalancerConfigError("counterSlot", `must be an integer in [0, ${this.serviceSlots})`);
    return new Int32Array(this.buffer, (slot * (1 + this.workers) + row) * COUNTER_SLOTS * Int32Array.BYTES_PER_ELEMENT, COUNTER_SLOTS);
  }
}
