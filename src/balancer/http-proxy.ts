/**
 * The HTTP/1.1 proxy of one listener: keep-alive on both sides (upstream-pool.ts), bodies streamed,
 * hop-by-hop headers removed, retries only where safe and within the service's retry budget, the
 * next try on another instance. Upgrades (WebSocket) are tunnelled by upgrade.ts.
 */
import { type IncomingMessage, request as httpRequest, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { TryTimeout } from "./errors.js";
import { RETRIES_MAX, RETRY_BACKOFF_BASE_MS, RETRY_BACKOFF_MAX_MS, RETRY_BODY_BYTES_MAX, UPSTREAM_RESPONSE_TIMEOUT_MS } from "./limits.js";
import { type ErrorKind, sendError, sendStatic } from "./responses.js";
import { endpointKey, type Route, type RouteTable } from "./route-table.js";
import { routeOf, SVC_PREFIX } from "./routing.js";
import type { CircuitBreaker, Endpoint, PickRequest } from "./types.js";
import type { WorkerSignal } from "./messages.js";
import { type Pool, type UpstreamPools, wake } from "./upstream-pool.js";

/** HOP_BY_HOP are the headers that describe one connection, never forwarded (RFC 9110 §7.6.1); Expect is answered here. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect"]);

/** IDEMPOTENT methods may be retried after the request reached an instance (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

/** ProxyContext is what a listener's requests share. */
export interface ProxyContext {
  readonly routes: RouteTable;
  readonly pools: UpstreamPools;
  /** requestIdPrefix makes generated x-request-id values unique across workers and restarts. */
  readonly requestIdPrefix: string;
  readonly random: () => number;
  /** signal, when given, hears outlier ejections, open circuits and refused retries (the worker throttles and posts them). */
  readonly signal?: (s: WorkerSignal) => void;
}

let requestCounter = 0;

/** OWNER marks an upstream socket with the circuit breaker its opening was charged to (maxConnections). */
const OWNER = Symbol("raftmesh.breaker");
type OwnedSocket = Socket & { [OWNER]?: CircuitBreaker };

/** Gate is how a try gets its connection: a free one, a new one within maxConnections, or none. */
type Gate = "free" | "opened" | "refused";

/**
 * gate decides whether a try to pool may go now. A free keep-alive socket of the endpoint costs
 * nothing; a new connection is charged to the service's breaker (maxConnections, counted across
 * workers and endpoints) and released when the socket closes.
 */
function gate(pool: Pool, name: string, breaker: CircuitBreaker): Gate {
  if ((pool.agent.freeSockets[name]?.length ?? 0) > 0) return "free";
  return breaker.tryOpenConnection() ? "opened" : "refused";
}

/** FailureKind: connect (no byte reached the instance), reset (the connection broke after), timeout, or a 5xx answer. */
type FailureKind = "connect" | "reset" | "timeout" | "5xx";

/** handleRequest routes and proxies one request. */
export function handleRequest(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? "/";
  // The Host header is read from the raw list: building req.headers costs an object per request.
  const target = routeOf(url, url.startsWith(SVC_PREFIX) ? undefined : hostOf(req.rawHeaders));
  if (!target) {
    sendError(res, "bad-request", undefined);
    return;
  }
  let route = ctx.routes.get(target.service);
  if (!route) {
    sendError(res, "unknown-service", target.service);
    return;
  }
  const now = performance.now();
  let pr = pickRequest(route, req, undefined);
  let first = pickFor(route, pr, now);
  if (!first) {
    // Fallback: a service with no healthy instance sends its requests to the configured service,
    // or answers with its static response.
    const c = route.table.config;
    const fb = c.fallback !== "" ? ctx.routes.get(c.fallback) : undefined;
    if (fb) {
      pr = pickRequest(fb, req, undefined);
      first = pickFor(fb, pr, now);
    }
    if (!fb || !first) {
      if (c.fallbackStatus !== 0) {
        sendStatic(res, c.fallbackStatus, c.fallbackBody, target.service);
        return;
      }
      sendError(res, route.mode === "master-slave" ? "no-master" : "no-healthy-instance", target.service);
      return;
    }
    route = fb;
  }
  if (!route.breaker.tryStartRequest()) {
    sendError(res, "circuit-open", route.table.name, "requests");
    ctx.signal?.({ kind: "circuit-open", service: route.table.name, limit: "requests" });
    return;
  }
  route.budget.onRequestStart();
  new ProxyRequest(ctx, route, req, res, target.path, first, pr.hashKey).start();
}

/** pickRequest is the PickRequest of a try: the hash key only for policy "hash", read from what hashOn names. */
function pickRequest(route: Route, req: IncomingMessage, exclude: ReadonlySet<string> | undefined): PickRequest {
  const c = route.table.config;
  if (c.policy !== "hash") return exclude ? { exclude } : NO_PICK;
  return { hashKey: hashKeyOf(c.hashOn, req), exclude };
}

const NO_PICK: PickRequest = {};

/** hashKeyOf reads the value policy "hash" hashes: a header, a cookie, or the client's address. */
export function hashKeyOf(hashOn: string, req: IncomingMessage): string | undefined {
  if (hashOn === "source" || hashOn === "") return req.socket.remoteAddress;
  if (hashOn.startsWith("header:")) {
    const v = req.headers[hashOn.slice(7).toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  }
  if (hashOn.startsWith("cookie:")) {
    const name = hashOn.slice(7);
    const cookie = req.headers.cookie;
    if (!cookie) return undefined;
    for (const part of cookie.split(";")) {
      const eq = part.indexOf("=");
      if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
  }
  return undefined;
}

/**
 * pickFor takes an instance for a try. Master-slave services route only to the master of the
 * newest epoch (none known: no instance); the policy's eligibility applies the same rule.
 */
function pickFor(r: Route, pr: PickRequest, now: number): Endpoint | undefined {
  if (r.mode === "master-slave") return r.master;
  return r.balancer.pick(pr, now);
}

/** hostOf is the first Host header of a raw header list. */
function hostOf(raw: readonly string[]): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === "host") return raw[i + 1];
  }
  return undefined;
}

/** ProxyRequest carries one client request through its tries. */
class ProxyRequest {
  /**
   * headers: the forwarded head as a raw [name, value, ...] list, built once from req.rawHeaders.
   * Node writes such a list as it is, where an object costs a setHeader (and a copy) per header.
   */
  private readonly headers: string[];
  /** hasHost: the client sent a Host header (an HTTP/1.0 client may not; the instance's address is sent then). */
  private hasHost = false;
  /** epochAt: index in headers of a client-sent x-raftmesh-epoch value, replaced for masters (-1: none). */
  private epochAt = -1;
  private readonly idempotent: boolean;
  /** body: kept whole for retries (undefined: no body, or streamed). */
  private body: Buffer[] | undefined;
  private readonly streamed: boolean;
  /** bodyStarted: some of a streamed body was read into an upstream request; no more tries. */
  private bodyStarted = false;
  private readonly tried = new Set<string>();
  private tries = 0;
  /** retryHeld: a retry reserved from the budget is in flight (released when it ends). */
  private retryHeld = false;
  private finished = false;
  /** started: when the request began, for the duration histogram (stats.ts). */
  private readonly started = performance.now();

  constructor(
    private readonly ctx: ProxyContext,
    private readonly route: Route,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly path: string,
    private next: Endpoint | undefined,
    private readonly hashKey: string | undefined,
  ) {
    this.idempotent = IDEMPOTENT.has(req.method ?? "GET");
    // One pass over the raw head: hop-by-hop headers (and those Connection names) dropped,
    // x-forwarded-for extended, x-request-id added when absent.
    const raw = req.rawHeaders;
    const named = connectionNamed(raw);
    const out: string[] = [];
    let xff: string | undefined;
    let hasId = false;
    let chunked = false;
    let length = 0;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const value = raw[i + 1]!;
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower)) {
        if (lower === "transfer-encoding") chunked = true;
        continue;
      }
      if (named?.has(lower)) continue;
      if (lower === "x-forwarded-for") {
        xff = xff === undefined ? value : `${xff}, ${value}`;
        continue;
      }
      if (lower === "host") this.hasHost = true;
      else if (lower === "content-length") length = Number(value);
      else if (lower === "x-request-id") hasId = true;
      else if (lower === "x-raftmesh-epoch") this.epochAt = out.length + 1;
      out.push(name, value);
    }
    const remote = req.socket.remoteAddress ?? "";
    out.push("x-forwarded-for", xff !== undefined ? `${xff}, ${remote}` : remote);
    if (!hasId) out.push("x-request-id", `${ctx.requestIdPrefix}${(++requestCounter).toString(36)}`);
    this.headers = out;
    this.streamed = chunked || length > RETRY_BODY_BYTES_MAX;
    if (!this.streamed && length > 0) this.body = [];
    res.once("close", () => this.finish());
  }

  start(): void {
    if (this.body) {
      const chunks = this.body;
      this.req.on("data", (c: Buffer) => chunks.push(c));
      this.req.once("end", () => this.attempt());
      return;
    }
    this.attempt();
  }

  private attempt(): void {
    if (this.finished) return;
    const route = this.route;
    const now = performance.now();
    // A retry goes to an instance not tried yet; when every one was tried, to any.
    const ep = this.next ?? pickFor(route, { hashKey: this.hashKey, exclude: this.tried }, now) ?? pickFor(route, { hashKey: this.hashKey }, now);
    this.next = undefined;
    if (!ep) {
      this.fail("upstream-failed");
      return;
    }
    const pool = this.ctx.pools.acquire(endpointKey(ep));
    const name = pool.agent.getName({ host: ep.address, port: ep.port });
    const g = gate(pool, name, route.breaker);
    if (g !== "refused") {
      this.send(ep, pool, g === "opened");
      return;
    }
    // At maxConnections. With no connection of this endpoint in use, none will be freed for the
    // request: refuse at once. Otherwise wait for one (maxPendingRequests bounds the waiters).
    if ((pool.agent.sockets[name]?.length ?? 0) === 0) {
      this.ctx.pools.release(pool);
      this.ctx.signal?.({ kind: "circuit-open", service: route.table.name, limit: "connections" });
      return void sendError(this.res, "circuit-open", route.table.name, "connections");
    }
    if (!route.breaker.tryEnqueuePending()) {
      this.ctx.pools.release(pool);
      this.ctx.signal?.({ kind: "circuit-open", service: route.table.name, limit: "pending" });
      return void sendError(this.res, "circuit-open", route.table.name, "pending");
    }
    this.waitForConnection(ep, pool, name);
  }

  /** waitForConnection parks the try until a socket of pool frees or closes, the client leaves, or the try times out. */
  private waitForConnection(ep: Endpoint, pool: Pool, name: string): void {
    const route = this.route;
    const c = route.table.config;
    let waiting = true;
    const leave = () => {
      waiting = false;
      clearTimeout(timer);
      this.res.off("close", onClose);
      route.breaker.onPendingDequeued();
      const i = pool.waiters.indexOf(waiter);
      if (i !== -1) pool.waiters.splice(i, 1);
    };
    const waiter = (): boolean => {
      if (!waiting) return true;
      const g = gate(pool, name, route.breaker);
      if (g === "refused") return false;
      leave();
      this.send(ep, pool, g === "opened");
      return true;
    };
    const onClose = () => {
      if (!waiting) return;
      leave();
      this.ctx.pools.release(pool);
    };
    const timer = setTimeout(() => {
      if (!waiting) return;
      leave();
      this.ctx.pools.release(pool);
      this.fail("upstream-timeout");
    }, c.perTryTimeoutMs > 0 ? c.perTryTimeoutMs : UPSTREAM_RESPONSE_TIMEOUT_MS);
    this.res.once("close", onClose);
    pool.waiters.push(waiter);
  }

  /** send makes one try to ep on pool; opened: a new connection was charged to the breaker for it. */
  private send(ep: Endpoint, pool: Pool, opened: boolean): void {
    if (this.finished) {
      if (opened) this.route.breaker.onConnectionClosed();
      this.ctx.pools.release(pool);
      return;
    }
    const route = this.route;
    let charge = opened;
    this.tries++;
    this.tried.add(ep.id);
    let headers = this.headers;
    if (route.master || !this.hasHost) {
      headers = headers.slice();
      if (!this.hasHost) headers.push("host", ep.address.includes(":") ? `[${ep.address}]:${ep.port}` : `${ep.address}:${ep.port}`);
      if (route.master) {
        if (this.epochAt !== -1) headers[this.epochAt] = route.epochHeader;
        else headers.push("x-raftmesh-epoch", route.epochHeader);
      }
    }
    route.balancer.onStart(ep.id);
    let settled = false;
    let connected = false;
    const retrying = this.retryHeld;
    const c = route.table.config;
    const timeoutMs = c.perTryTimeoutMs > 0 ? c.perTryTimeoutMs : UPSTREAM_RESPONSE_TIMEOUT_MS;
    const up = httpRequest({ host: ep.address, port: ep.port, method: this.req.method, path: this.path, headers, agent: pool.agent });
    const timer = setTimeout(() => up.destroy(new TryTimeout()), timeoutMs);
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (route.balancer.onEnd(ep.id, ok ? "success" : "failure", performance.now())) this.ctx.signal?.({ kind: "outlier-ejected", service: route.table.name, instance: ep.id });
      if (charge) {
        // The request ended without taking a new socket: the reserved connection is not used.
        charge = false;
        route.breaker.onConnectionClosed();
      }
      this.ctx.pools.release(pool);
      if (retrying && this.retryHeld) {
        this.retryHeld = false;
        route.budget.onRetryEnd();
      }
    };
    up.once("socket", (s: OwnedSocket) => {
      if (charge) {
        charge = false;
        if (s[OWNER] === undefined) {
          const breaker = route.breaker;
          s[OWNER] = breaker;
          s.once("close", () => {
            breaker.onConnectionClosed();
            wake(pool);
          });
        } else route.breaker.onConnectionClosed(); // the agent reused a socket after all
      }
      if (!s.connecting) connected = true;
      else s.once("connect", () => (connected = true));
      if (this.streamed) this.pipeBody(up, s.connecting ? s : undefined);
    });
    up.once("response", (upRes) => {
      clearTimeout(timer);
      const status = upRes.statusCode ?? 502;
      if (status >= 500 && this.mayRetry("5xx")) {
        upRes.resume();
        done(false);
        return this.retry();
      }
      this.respond(upRes, status, () => done(status < 500));
    });
    up.once("error", (err) => {
      const kind: FailureKind = err instanceof TryTimeout ? "timeout" : connected ? "reset" : "connect";
      const wasSettled = settled;
      done(false);
      if (wasSettled || this.res.headersSent) return void this.res.destroy();
      if (this.mayRetry(kind)) return this.retry();
      this.fail(kind === "timeout" ? "upstream-timeout" : "upstream-failed");
    });
    if (this.body) {
      for (const chunk of this.body) up.write(chunk);
      up.end();
    } else if (!this.streamed) up.end();
  }

  /** pipeBody streams the client's body once the connection is up, so a refused connect has read none of it. */
  private pipeBody(up: ReturnType<typeof httpRequest>, connecting: Socket | undefined): void {
    const go = () => {
      this.bodyStarted = true;
      this.req.pipe(up);
    };
    if (connecting) connecting.once("connect", go);
    else go();
  }

  private respond(upRes: IncomingMessage, status: number, done: () => void): void {
    const res = this.res;
    const raw = upRes.rawHeaders;
    const named = connectionNamed(raw);
    const h: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const lower = raw[i]!.toLowerCase();
      if (HOP_BY_HOP.has(lower) || named?.has(lower)) continue;
      h.push(raw[i]!, raw[i + 1]!);
    }
    res.writeHead(status, h);
    upRes.pipe(res);
    upRes.once("end", done);
    upRes.once("error", () => {
      done();
      res.destroy();
    });
  }

  /**
   * mayRetry says whether a failed try may be tried again: never once the client got response
   * bytes or a streamed body was read; after a connect failure always; after a reset, timeout or
   * 5xx only for idempotent methods (or 5xx with retryOn5xx); within retries, and but for connect
   * failures within the retry budget.
   */
  private mayRetry(kind: FailureKind): boolean {
    if (this.finished || this.res.headersSent) return false;
    const c = this.route.table.config;
    if (this.tries > Math.min(c.retries, RETRIES_MAX)) return false;
    if (this.streamed && this.bodyStarted) return false;
    if (kind !== "connect" && !this.idempotent && !(kind === "5xx" && c.retryOn5xx)) return false;
    // A connect failure put no load on any instance (nothing reached it): its retry is not charged
    // to the budget, which exists so that retries cannot multiply the load on a failing service.
    if (kind === "connect") return true;
    if (!this.route.budget.tryStartRetry()) {
      this.ctx.signal?.({ kind: "retry-budget-exhausted", service: this.route.table.name });
      return false;
    }
    this.retryHeld = true;
    return true;
  }

  /** retry waits a full-jitter backoff (random in [0, min(max, base × 2^n))) and tries again elsewhere. */
  private retry(): void {
    this.route.meter.retried();
    const cap = Math.min(RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_BASE_MS * 2 ** (this.tries - 1));
    setTimeout(() => this.attempt(), Math.floor(this.ctx.random() * cap));
  }

  private fail(kind: ErrorKind): void {
    sendError(this.res, kind, this.route.table.name);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.route.meter.finished((performance.now() - this.started) / 1000, this.res.statusCode);
    this.route.breaker.onRequestEnd();
    this.route.budget.onRequestEnd();
    if (this.retryHeld) {
      this.retryHeld = false;
      this.route.budget.onRetryEnd();
    }
  }
}

/**
 * connectionNamed is the set of header names a Connection header lists (RFC 9110 §7.6.1), which
 * are hop-by-hop as well; undefined when there are none (the common case: keep-alive or close).
 */
function connectionNamed(raw: readonly string[]): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 10 || name.toLowerCase() !== "connection") continue;
    const value = raw[i + 1]!;
    if (value === "keep-alive" || value === "close") continue;
    for (const t of value.split(",")) {
      const k = t.trim().toLowerCase();
      if (k !== "") (named ??= new Set()).add(k);
    }
  }
  return named;
}
