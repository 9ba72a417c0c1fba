/**
 * What the node's main thread and the balancer workers say to each other over their MessagePort.
 * Tables are plain data (structured clone); a worker applies each message whole, in order.
 */
import type { ServiceMode } from "../registry/types.js";
import type { ServiceTable } from "./types.js";

/** WireTable is a service's table as the feed sends it: the balancer's table and the service's mode. */
export type WireTable = ServiceTable & {
  readonly mode: ServiceMode;
  /** slot is the service's stats slot (stats.ts; absent: metrics off). */
  readonly slot?: number;
  /** instanceSlots are [endpoint id, stats slot] pairs the worker has not been sent before (all of them in a full message). */
  readonly instanceSlots?: readonly (readonly [string, number])[];
};

/** ListenerSpec is one listener a worker opens. */
export type ListenerSpec =
  | { readonly kind: "http"; readonly name: string; readonly host: string; readonly port: number }
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
}

/** ToWorker: full replaces every table; otherwise tables are put and removed are deleted. */
export type ToWorker =
  | { readonly t: "tables"; readonly full: boolean; readonly tables: readonly WireTable[]; readonly removed: readonly string[] }
  | { readonly t: "stop" };

/** FromWorker: a listener's bound port, a listen failure, or the end of a stop. */
export type FromWorker =
  | { readonly t: "listening"; readonly name: string; readonly port: number }
  | { readonly t: "listen-failed"; readonly name: string; readonly message: string }
  | { readonly t: "stopped" };
