/**
 * The HTTP/1.1 proxy of one listener: keep-alive on both sides (upstream-pool.ts), bodies streamed,
 * hop-by-hop headers removed, retries only where safe and within the service's retry budget, the
 * next try on another instance. Upgrades (WebSocket) are tunnelled by upgrade.ts.
 */
import { type IncomingHttpHeaders, type IncomingMessage, request as httpRequest, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import type { Endpoint } from "./interim-policy.js";
import { RETRIES_MAX, RETRY_BACKOFF_BASE_MS, RETRY_BACKOFF_MAX_MS, RETRY_BODY_BYTES_MAX, UPSTREAM_RESPONSE_TIMEOUT_MS } from "./limits.js";
import { type ErrorKind, sendError } from "./responses.js";
import { endpointKey, type Route, type RouteTable } from "./route-table.js";
import { routeOf } from "./routing.js";
import type { Pool, UpstreamPools } from "./upstream-pool.js";

/** HOP_BY_HOP are the headers that describe one connection, never forwarded (RFC 9110 §7.6.1). */
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
}

let requestCounter = 0;

/** FailureKind: connect (no byte reached the instance), reset (the connection broke after), timeout, or a 5xx answer. */
type FailureKind = "connect" | "reset" | "timeout" | "5xx";

/** handleRequest routes and proxies one request. */
export function handleRequest(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): void {
  const target = routeOf(req.url ?? "/", req.headers.host);
  if (!target) return sendError(res, "bad-request", undefined);
  let route = ctx.routes.get(target.service);
  if (!route) return sendError(res, "unknown-service", target.service);
  let first = pickFor(route, undefined);
  if (!first) {
    // Fallback: a service with no healthy instance sends its requests to the configured one.
    const name = route.table.config.fallback;
    const fb = name !== "" ? ctx.routes.get(name) : undefined;
    first = fb ? pickFor(fb, undefined) : undefined;
    if (!fb || !first) return sendError(res, route.table.config.mode === "master-slave" ? "no-master" : "no-healthy-instance", target.service);
    route = fb;
  }
  if (!route.breaker.tryEnter()) return sendError(res, "circuit-open", route.table.name);
  new ProxyRequest(ctx, route, req, res, target.path, first).start();
}

/**
 * pickFor takes an instance for a try: master-slave services only ever the master of the newest
 * epoch; others an instance not tried yet, or any when every one was tried.
 */
function pickFor(r: Route, tried: ReadonlySet<string> | undefined): Endpoint | undefined {
  if (r.table.config.mode === "master-slave") return r.master;
  if (!tried) return r.balancer.pick();
  return r.balancer.pick(tried) ?? r.balancer.pick();
}

/** ProxyRequest carries one client request through its tries. */
class ProxyRequest {
  private readonly headers: OutgoingHttpHeaders;
  private readonly idempotent: boolean;
  /** body: kept whole for retries (undefined: no body, or streamed). */
  private body: Buffer[] | undefined;
  private readonly streamed: boolean;
  /** bodyStarted: some of a streamed body was read into an upstream request; no more tries. */
  private bodyStarted = false;
  private readonly tried = new Set<string>();
  private tries = 0;
  private retryHeld = false;
  private finished = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly route: Route,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly path: string,
    private next: Endpoint | undefined,
  ) {
    this.idempotent = IDEMPOTENT.has(req.method ?? "GET");
    this.headers = forwardHeaders(req.headers, req.socket.remoteAddress, ctx.requestIdPrefix);
    const te = req.headers["transfer-encoding"];
    const length = Number(req.headers["content-length"] ?? 0);
    this.streamed = te !== undefined || length > RETRY_BODY_BYTES_MAX;
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
    const ep = this.next ?? pickFor(this.route, this.tried);
    this.next = undefined;
    if (!ep) return this.fail("upstream-failed");
    this.tries++;
    this.tried.add(ep.id);
    const route = this.route;
    if (route.master) this.headers["x-raftmesh-epoch"] = String(route.table.master?.epoch ?? 0);
    const pool = this.ctx.pools.acquire(endpointKey(ep));
    route.balancer.onStart(ep);
    let settled = false;
    let connected = false;
    const timeoutMs = route.table.config.perTryTimeoutMs > 0 ? route.table.config.perTryTimeoutMs : UPSTREAM_RESPONSE_TIMEOUT_MS;
    const up = httpRequest({ host: ep.address, port: ep.port, method: this.req.method, path: this.path, headers: this.headers, agent: pool.agent });
    const timer = setTimeout(() => up.destroy(new TryTimeout()), timeoutMs);
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      route.balancer.onEnd(ep, ok);
      this.ctx.pools.release(pool);
    };
    up.once("socket", (s) => {
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
      if (wasSettled || this.res.headersSent) return this.res.destroy();
      if (this.mayRetry(kind)) return this.retry();
      this.fail(kind === "timeout" ? "upstream-timeout" : "upstream-failed");
    });
    if (this.body) {
      for (const c of this.body) up.write(c);
      up.end();
    } else if (!this.streamed) up.end();
  }

  /** pipeBody streams the client's body once the connection is up, so a refused connect has read none of it. */
  private pipeBody(up: ReturnType<typeof httpRequest>, connecting: import("node:net").Socket | undefined): void {
    const go = () => {
      this.bodyStarted = true;
      this.req.pipe(up);
    };
    if (connecting) connecting.once("connect", go);
    else go();
  }

  private respond(upRes: IncomingMessage, status: number, done: () => void): void {
    const res = this.res;
    const h = upRes.headers;
    stripHopByHop(h);
    res.writeHead(status, h);
    upRes.pipe(res);
    upRes.once("end", done);
    upRes.once("error", () => {
      done();
      res.destroy();
    });
  }

  private mayRetry(kind: FailureKind): boolean {
    if (this.finished || this.res.headersSent) return false;
    const max = Math.min(this.route.table.config.retries, RETRIES_MAX);
    if (this.tries > max) return false;
    if (this.streamed && this.bodyStarted) return false;
    if (kind !== "connect" && !this.idempotent) return false;
    if (!this.retryHeld) {
      if (!this.route.budget.tryAcquire(this.route.breaker.inFlight)) return false;
      this.retryHeld = true;
    }
    return true;
  }

  private retry(): void {
    const cap = Math.min(RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_BASE_MS * 2 ** (this.tries - 1));
    setTimeout(() => this.attempt(), Math.floor(this.ctx.random() * cap));
  }

  private fail(kind: ErrorKind): void {
    sendError(this.res, kind, this.route.table.name);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.route.breaker.leave();
    if (this.retryHeld) this.route.budget.release();
  }
}

/** TryTimeout ends a try that got no response headers within the per-try timeout. */
class TryTimeout extends Error {
  constructor() {
    super("per-try timeout");
    this.name = "TryTimeout";
  }
}

/** forwardHeaders copies the client's headers minus hop-by-hop ones, adding x-forwarded-for and x-request-id. */
function forwardHeaders(h: IncomingHttpHeaders, remote: string | undefined, idPrefix: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ...h };
  stripHopByHop(out);
  const xff = h["x-forwarded-for"];
  out["x-forwarded-for"] = xff ? `${xff}, ${remote ?? ""}` : (remote ?? "");
  if (h["x-request-id"] === undefined) out["x-request-id"] = `${idPrefix}${(++requestCounter).toString(36)}`;
  return out;
}

/** stripHopByHop deletes the hop-by-hop headers, and those the Connection header names. */
function stripHopByHop(h: IncomingHttpHeaders | OutgoingHttpHeaders): void {
  const conn = h.connection;
  if (typeof conn === "string" && conn !== "keep-alive" && conn !== "close") {
    for (const name of conn.split(",")) delete h[name.trim().toLowerCase()];
  }
  for (const name of HOP_BY_HOP) if (h[name] !== undefined) delete h[name];
}
