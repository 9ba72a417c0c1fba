/**
 * Test harness of the balancing endpoint: real node:http backends on loopback, a real worker pool
 * (worker threads) fed table messages directly, and a small HTTP client.
 */
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import pino from "pino";
import type { ToWorker, WireTable, WorkerSignal } from "../../../src/balancer/messages.js";
import { balancerConfig } from "../../../src/balancer/policy/index.js";
import type { WorkerTls } from "../../../src/balancer/tls.js";
import type { BalancerConfig, Endpoint } from "../../../src/balancer/types.js";
import { WorkerPool } from "../../../src/balancer/workers.js";
import type { ServiceMode } from "../../../src/registry/types.js";

/** Backend is one loopback HTTP server answering with its id. */
export interface Backend {
  readonly id: string;
  readonly port: number;
  readonly server: Server;
  /** hits counts the requests it received. */
  hits: number;
  /** last is the last request's headers and url. */
  last: { url: string; headers: IncomingMessage["headers"] } | undefined;
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, b: Backend) => void;

const hello: Handler = (req, res, b) => {
  req.resume();
  req.once("end", () => res.end(b.id));
};

/** startBackend starts one backend (default handler: answer the id). */
export async function startBackend(id: string, handler: Handler = hello): Promise<Backend> {
  const b: Backend = {
    id,
    port: 0,
    server: createServer(),
    hits: 0,
    last: undefined,
    close: () =>
      new Promise<void>((r) => {
        b.server.close(() => r());
        b.server.closeAllConnections();
      }),
  };
  b.server.on("request", (req, res) => {
    b.hits++;
    b.last = { url: req.url ?? "", headers: req.headers };
    handler(req, res, b);
  });
  await new Promise<void>((r) => b.server.listen(0, "127.0.0.1", () => r()));
  (b as { port: number }).port = (b.server.address() as AddressInfo).port;
  return b;
}

/** endpointOf makes a passing endpoint of a backend. */
export function endpointOf(b: Pick<Backend, "id" | "port">, over: Partial<Endpoint> = {}): Endpoint {
  return { id: b.id, address: "127.0.0.1", port: b.port, weight: 1, priority: 0, zone: "", health: "passing", ...over };
}

/** table makes a service table. */
export function table(name: string, endpoints: Endpoint[], config: Partial<BalancerConfig> & { mode?: ServiceMode } = {}, master?: WireTable["master"]): WireTable {
  const { mode = "active-active", ...rest } = config;
  return { name, mode, config: balancerConfig(rest), endpoints, master };
}

/** Endpoint under test: a worker pool with one HTTP listener (and TCP ones). */
export interface TestEndpoint {
  readonly port: number;
  /** plainPort: the plaintext listener beside an HTTPS one (startEndpoint with https). */
  readonly plainPort: number;
  tcpPort(service: string): number;
  readonly pool: WorkerPool;
  /** set replaces every table and waits for the worker to have it. */
  set(tables: WireTable[]): Promise<void>;
  stop(): Promise<void>;
}

/** startEndpoint starts a worker pool on loopback ports. */
export async function startEndpoint(
  tables: WireTable[],
  tcp: { service: string }[] = [],
  opts: { workers?: number; headersTimeoutMs?: number; localZone?: string; onSignal?: (s: WorkerSignal) => void; tls?: WorkerTls; https?: boolean } = {},
): Promise<TestEndpoint> {
  let current: Extract<ToWorker, { t: "tables" }> = { t: "tables", full: true, tables, removed: [] };
  const pool = await WorkerPool.start({
    workers: opts.workers ?? 1,
    headersTimeoutMs: opts.headersTimeoutMs,
    listeners: [
      { kind: "http", name: "http", host: "127.0.0.1", port: 0, tls: opts.https },
      // With https, a plaintext listener beside it (the same worker and tables).
      ...(opts.https ? [{ kind: "http" as const, name: "http-plain", host: "127.0.0.1", port: 0 }] : []),
      ...tcp.map((u) => ({ kind: "tcp" as const, name: `tcp:${u.service}`, host: "127.0.0.1", port: 0, service: u.service })),
    ],
    localZone: opts.localZone ?? "",
    nodeId: "t1",
    logger: pino({ level: "silent" }),
    current: () => current,
    onSignal: opts.onSignal,
    tls: opts.tls,
  });
  return {
    port: pool.ports.get("http")!,
    plainPort: pool.ports.get("http-plain") ?? 0,
    tcpPort: (service: string) => pool.ports.get(`tcp:${service}`)!,
    pool,
    async set(t) {
      current = { t: "tables", full: true, tables: t, removed: [] };
      pool.post(current);
      // Messages are applied in order: the next request after a short pause sees the table.
      await new Promise((r) => setTimeout(r, 20));
    },
    stop: () => pool.stop(),
  };
}

/** Reply is a whole response. */
export interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers: IncomingMessage["headers"];
}

/** call sends one request and reads the whole response. */
export function call(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string; agent?: import("node:http").Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: opts.method ?? "GET", headers: opts.headers, agent: opts.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.once("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      res.once("error", reject);
    });
    req.once("error", reject);
    req.end(opts.body);
  });
}

/** count tallies values. */
export function count(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

/** noise is n bytes of a seeded generator: a body whose every byte matters (a constant fill would hide bytes overwritten by another read). */
export function noise(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
