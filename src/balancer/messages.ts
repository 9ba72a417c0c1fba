/**
 * What the node's main thread and the balancer workers say to each other over their MessagePort.
 * Tables are plain data (structured clone); a worker applies each message whole, in order.
 */
import type { ServiceMode } from "../registry/types.js";
import type { WorkerTls } from "./tls.js";
import type { Endpoint, ServiceTable } from "./types.js";

/** WireTable is a service's table as the feed sends it: the balancer's table and the service's mode. */
export type WireTable = ServiceTable & {
  readonly mode: ServiceMode;
  /** slot is the service's stats slot (stats.ts; absent: metrics off). */
  readonly slot?: number;
  /** instanceSlots are [endpoint id, stats slot] pairs the worker has not been sent before (all of them in a full message). */
  readonly instanceSlots?: readonly (readonly [string, number])[];
  /** counterSlot is the service's slot in the pool's shared circuit-breaker counters (absent: counts kept per worker). */
  readonly counterSlot?: number;
};

/** BreakerCountersInit is the pool's shared circuit-breaker counters, as a worker receives them. */
export interface BreakerCountersInit {
  readonly buffer: SharedArrayBuffer;
  readonly serviceSlots: number;
  readonly workers: number;
}

/** ListenerSpec is one listener a worker opens. */
export type ListenerSpec =
  | { readonly kind: "http"; readonly name: string; readonly host: string; readonly port: number; /** tls: serve HTTPS with WorkerInit.tls.listener. */ readonly tls?: boolean }
  | { readonly kind: "tcp"; readonly name: string; readonly host: string; readonly port: number; readonly service: string };

/** WorkerInit is a worker's workerData. */
export interface WorkerInit {
  readonly index: number;
  readonly listeners: readonly ListenerSpec[];
  readonly localZone: string;
  readonly logLevel: string;
  readonly nodeId: string;
  /** headersTimeoutMs overrides HEADERS_TIMEOUT_MS (tests shrink it). */
  readonly headersTimeoutMs?: number;
  /** stats is this worker's counters buffer (stats.ts); absent when metrics are off. */
  readonly stats?: SharedArrayBuffer;
  /** breakerCounters makes each service's circuit-breaker limits hold across the pool's workers. */
  readonly breakerCounters?: BreakerCountersInit;
  /** tls is the listener's certificate and the upstream CA and client certificate (absent: no TLS material). */
  readonly tls?: WorkerTls;
}

/**
 * WirePatch changes some endpoints of a service whose whole table the worker already has (the feed
 * sends one only for a service it sent a table of since its last full message): `put` adds or
 * replaces endpoints by id, `removed` drops ids. Config and master changes always come as whole
 * tables. A patch costs its own endpoints, where a whole table cost the service's every instance
 * per change: with services of hundreds of instances that was most of a registration's cost.
 */
export interface WirePatch {
  readonly name: string;
  readonly put: readonly Endpoint[];
  readonly removed: readonly string[];
  /** instanceSlots are [endpoint id, stats slot] pairs of put endpoints the worker has not been sent before. */
  readonly instanceSlots?: readonly (readonly [string, number])[];
}

/** ToWorker: full replaces every table; otherwise tables are put, removed are deleted and patches change endpoints of known tables. */
export type ToWorker =
  | { readonly t: "tables"; readonly full: boolean; readonly tables: readonly WireTable[]; readonly removed: readonly string[]; readonly patches?: readonly WirePatch[] }
  | { readonly t: "tls"; readonly tls: WorkerTls }
  | { readonly t: "stop" };

/**
 * WorkerSignal is something an operator should hear of (the node's event stream): an outlier
 * ejected, a circuit that refused a request (limit: connections, pending or requests), a retry
 * the budget refused, a TLS instance whose handshake failed. A worker sends each subject at most
 * once per SIGNAL_MIN_GAP_MS.
 */
export interface WorkerSignal {
  readonly kind: "outlier-ejected" | "circuit-open" | "retry-budget-exhausted" | "upstream-tls-failed";
  readonly service: string;
  readonly instance?: string;
  readonly limit?: string;
}

/** SIGNAL_MIN_GAP_MS: an overload refuses thousands of requests a second; one message a second per subject tells the node all it reports. */
export const SIGNAL_MIN_GAP_MS = 1_000;

/** FromWorker: a listener's bound port, a listen failure, the end of a stop, or a signal. */
export type FromWorker =
  | ({ readonly t: "signal" } & WorkerSignal)
  | { readonly t: "listening"; readonly name: string; readonly port: number }
  | { readonly t: "listen-failed"; readonly name: string; readonly message: string }
  | { readonly t: "stopped" };
