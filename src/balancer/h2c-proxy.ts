/**
 * h2c (HTTP/2 over cleartext, prior knowledge) on the HTTP listener's port: gRPC clients are
 * balanced per request (each stream picks an instance), not per connection as an L4 balancer
 * would. A stream routes by `:authority` (or the `/svc/<service>/` path prefix) and goes to the
 * instance over one shared h2c session per instance; response headers, data and trailers
 * (grpc-status) pass through.
 *
 * Retries follow the HTTP/1.1 proxy's rules: a connect failure or a refused stream (RST_STREAM
 * REFUSED_STREAM, or a stream past a GOAWAY: the instance processed nothing, RFC 9113 §8.7) is
 * always retried; a reset before response headers, a per-try timeout or a 5xx only for idempotent
 * methods (a 5xx also when the service sets retryOn5xx); never once response headers went to the
 * client. Request bodies are forwarded as they come and kept up to RETRY_BODY_BYTES_MAX for a
 * retry; past that a try that failed is not retried. Retries other than connect failures and
 * refused streams are charged to the service's retry budget; each goes to another instance.
 *
 * Circuit breaking: opening an upstream session counts against the service's maxConnections
 * (released when the session closes); a try waiting for its session to be ready counts against
 * maxPendingRequests; past either, 503 circuit-open naming the limit, as the HTTP/1.1 proxy does.
 */
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  constants,
  createServer,
  type Http2Server,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import { performance } from "node:perf_hooks";
import type { SecureContext, TLSSocket } from "node:tls";
import { releaseOnClose } from "../common/stream-release.js";
import { AnswerCut } from "./errors.js";
import type { ProxyContext } from "./http-proxy.js";
import { RETRIES_MAX, RETRY_BACKOFF_BASE_MS, RETRY_BACKOFF_MAX_MS, RETRY_BODY_BYTES_MAX, UPSTREAM_RESPONSE_TIMEOUT_MS } from "./limits.js";
import { type ErrorKind, errorBody } from "./responses.js";
import { dialTls, tlsFailure, tlsPoolKey, type UpstreamTls, upstreamTlsOf } from "./tls.js";
import { endpointKey, type Route } from "./route-table.js";
import { routeOf } from "./routing.js";
import type { BreakerLimit, CircuitBreaker, Endpoint } from "./types.js";

/** H2_SESSIONS_MAX bounds the upstream h2c sessions of a worker (one per instance; each multiplexes streams). */
const H2_SESSIONS_MAX = 4_096;

/** IDEMPOTENT methods may be retried after the request reached an instance (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

/**
 * UpSession is one upstream h2c session: connected turns true when its socket connects (before
 * that, no byte of a stream can have reached the instance), ready when the instance's SETTINGS
 * arrived (its half of the connection preface: the session is usable).
 */
interface UpSession {
  readonly session: ClientHttp2Session;
  connected: boolean;
  ready: boolean;
  /** tlsFailure: why the TLS handshake failed (a service with upstreamTls), undefined otherwise. */
  tlsFailure?: string;
  /** waiting: the pending tries to call once the session is ready or closed (a set, not listeners: up to maxPendingRequests of them). */
  readonly waiting: Set<() => void>;
}

/** wakeAll calls and forgets every waiting try of a session. */
function wakeAll(u: UpSession): void {
  for (const w of u.waiting) w();
  u.waiting.clear();
}

/** Sessions holds a worker's upstream sessions by address:port. */
class Sessions {
  private readonly map = new Map<string, UpSession>();

  /** live returns the session to key that can take new streams, if any. */
  live(key: string): UpSession | undefined {
    const u = this.map.get(key);
    if (!u) return undefined;
    if (u.session.closed || u.session.destroyed) {
      this.map.delete(key);
      return undefined;
    }
    return u;
  }

  /** open starts a session to key (over TLS with ALPN h2 when tls is given); its opening was charged to breaker, released when it closes. */
  open(key: string, address: string, port: number, breaker: CircuitBreaker, tls?: { readonly t: UpstreamTls; readonly context: () => SecureContext }): UpSession {
    if (this.map.size >= H2_SESSIONS_MAX) for (const [k, old] of this.map) if (old.session.closed || old.session.destroyed) this.map.delete(k);
    const host = address.includes(":") ? `[${address}]` : address;
    let socket: TLSSocket | undefined;
    const session = tls
      ? connect(`https://${host}:${port}`, { createConnection: () => (socket = dialTls(address, port, tls.context(), tls.t, ["h2"])) })
      : connect(`http://${host}:${port}`);
    const u: UpSession = { session, connected: false, ready: false, waiting: new Set() };
    if (socket) {
      const s = socket;
      let tcpUp = false;
      s.once("connect", () => (tcpUp = true));
      s.on("error", (err) => (u.tlsFailure ??= tlsFailure(err, tcpUp && !u.connected)));
    }
    const drop = () => {
      if (this.map.get(key) === u) this.map.delete(key);
    };
    session.once("connect", () => (u.connected = true));
    session.once("remoteSettings", () => {
      u.ready = true;
      wakeAll(u);
    });
    session.on("error", drop);
    // After a GOAWAY the session takes no new streams: the next request opens another.
    session.once("goaway", drop);
    session.once("close", () => {
      drop();
      wakeAll(u);
      breaker.onConnectionClosed();
    });
    session.unref();
    this.map.set(key, u);
    return u;
  }

  close(): void {
    for (const u of this.map.values()) u.session.destroy();
    this.map.clear();
  }
}

/** createH2cServer makes the h2c server; connections are handed to it by the listener's sniffing. */
export function createH2cServer(ctx: ProxyContext): Http2Server {
  const sessions = new Sessions();
  const server = createServer();
  server.on("stream", (stream, headers) => handleStream(ctx, sessions, stream, headers));
  server.on("close", () => sessions.close());
  return server;
}

/**
 * cut resets a client stream whose answer started (RST_STREAM INTERNAL_ERROR). Node's close()
 * would end the stream's data first, and the client would see a clean end.
 */
function cut(stream: ServerHttp2Stream): void {
  if (!stream.destroyed) stream.destroy(new AnswerCut());
}

function fail(stream: ServerHttp2Stream, kind: ErrorKind, service: string | undefined, limit?: BreakerLimit, reason?: string): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) return void cut(stream);
  const { status, body } = errorBody(kind, service, limit, reason);
  stream.respond({ ":status": status, "content-type": "application/json", "x-raftmesh-error": kind });
  stream.end(body);
}

function handleStream(ctx: ProxyContext, sessions: Sessions, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  // Closed, a request's streams drop their listeners (and what those reach) at once: stream-release.ts.
  releaseOnClose(stream);
  const path = String(headers[":path"] ?? "/");
  const authority = headers[":authority"] ?? headers.host;
  const target = routeOf(path, typeof authority === "string" ? authority : undefined);
  if (!target) return void fail(stream, "bad-request", undefined);
  const route = ctx.routes.get(target.service);
  if (!route) return void fail(stream, "unknown-service", target.service);
  const first = pickFor(route, undefined, performance.now());
  if (!first) return void fail(stream, route.mode === "master-slave" ? "no-master" : "no-healthy-instance", target.service);
  if (!route.breaker.tryStartRequest()) {
    ctx.signal?.({ kind: "circuit-open", service: route.table.name, limit: "requests" });
    return void fail(stream, "circuit-open", target.service, "requests");
  }
  route.budget.onRequestStart();
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || k === ":path" || k === "connection") continue;
    out[k] = v;
  }
  out[":path"] = target.path;
  out["x-forwarded-for"] = stream.session?.socket?.remoteAddress ?? "";
  new H2Request(ctx, sessions, route, stream, out, IDEMPOTENT.has(String(headers[":method"] ?? "GET")), first).start();
}

/** pickFor takes an instance for a try: the master in master-slave mode, else the policy's pick (not one in exclude). */
function pickFor(route: Route, exclude: ReadonlySet<string> | undefined, now: number): Endpoint | undefined {
  if (route.mode === "master-slave") return route.master;
  return route.balancer.pick(exclude ? { exclude } : {}, now);
}

/** FailureKind: connect (the session never connected), refused (the instance refused the stream), reset, timeout, or a 5xx answer. */
type FailureKind = "connect" | "refused" | "reset" | "timeout" | "5xx";

/** H2Request carries one client stream through its tries. */
class H2Request {
  private tries = 0;
  private readonly tried = new Set<string>();
  /** kept: the request body so far, for a retry; undefined once it passed RETRY_BODY_BYTES_MAX. */
  private kept: Buffer[] | undefined = [];
  private keptBytes = 0;
  private bodyEnded = false;
  /** current is the upstream stream of the try in flight (undefined between tries). */
  private current: ClientHttp2Stream | undefined;
  private retryHeld = false;
  private responded = false;
  private finished = false;
  /** started: when the request began, for the duration histogram (stats.ts). */
  private readonly started = performance.now();

  constructor(
    private readonly ctx: ProxyContext,
    private readonly sessions: Sessions,
    private readonly route: Route,
    private readonly stream: ServerHttp2Stream,
    private readonly headers: OutgoingHttpHeaders,
    private readonly idempotent: boolean,
    private next: Endpoint | undefined,
  ) {}

  start(): void {
    const stream = this.stream;
    stream.on("data", (c: Buffer) => {
      if (this.kept) {
        this.keptBytes += c.length;
        if (this.keptBytes <= RETRY_BODY_BYTES_MAX) this.kept.push(c);
        else this.kept = undefined;
      }
      const up = this.current;
      if (up && !up.destroyed && !up.write(c)) {
        stream.pause();
        up.once("drain", () => stream.resume());
      }
    });
    stream.once("end", () => {
      this.bodyEnded = true;
      const up = this.current;
      if (up && !up.destroyed) up.end();
    });
    stream.once("close", () => {
      const up = this.current;
      if (up && !up.closed) up.close(constants.NGHTTP2_CANCEL);
      this.finish();
    });
    stream.on("error", () => {});
    if (this.route.master) this.headers["x-raftmesh-epoch"] = this.route.epochHeader;
    this.attempt();
  }

  private attempt(): void {
    if (this.finished) return;
    const route = this.route;
    const now = performance.now();
    // A retry goes to an instance not tried yet; when every one was tried, to any.
    const ep = this.next ?? pickFor(route, this.tried, now) ?? pickFor(route, undefined, now);
    this.next = undefined;
    if (!ep) return void this.fail("upstream-failed");
    const tls = upstreamTlsOf(route.table.config);
    const key = endpointKey(ep) + tlsPoolKey(tls);
    let up = this.sessions.live(key);
    if (!up) {
      if (!route.breaker.tryOpenConnection()) {
        this.ctx.signal?.({ kind: "circuit-open", service: route.table.name, limit: "connections" });
        return void this.fail("circuit-open", "connections");
      }
      up = this.sessions.open(key, ep.address, ep.port, route.breaker, tls && { t: tls, context: () => this.ctx.pools.tlsContext() });
    }
    // A try on a session not ready yet waits for it: it is pending (maxPendingRequests).
    let pending = false;
    if (!up.ready) {
      if (!route.breaker.tryEnqueuePending()) {
        this.ctx.signal?.({ kind: "circuit-open", service: route.table.name, limit: "pending" });
        return void this.fail("circuit-open", "pending");
      }
      pending = true;
    }
    this.send(ep, up, pending);
  }

  /** send makes one try to ep on session u; pending: the try was counted as waiting for the session to be ready. */
  private send(ep: Endpoint, u: UpSession, pending: boolean): void {
    const route = this.route;
    const c = route.table.config;
    this.tries++;
    this.tried.add(ep.id);
    route.balancer.onStart(ep.id);
    const retrying = this.retryHeld;
    let settled = false;
    let timedOut = false;
    let gotResponse = false;
    const unpend = () => {
      if (!pending) return;
      pending = false;
      route.breaker.onPendingDequeued();
    };
    if (pending) u.waiting.add(unpend);
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unpend();
      u.waiting.delete(unpend);
      this.ended(ep, ok);
      if (retrying && this.retryHeld) {
        this.retryHeld = false;
        route.budget.onRetryEnd();
      }
    };
    const failed = (kind: FailureKind) => {
      if (settled) return;
      done(false);
      if (this.current === up) this.current = undefined;
      if (this.responded || this.stream.headersSent) return void cut(this.stream);
      // A certificate that does not verify fails the same way on every try: answered at once, never retried.
      if (u.tlsFailure !== undefined && kind !== "timeout") {
        this.ctx.signal?.({ kind: "upstream-tls-failed", service: route.table.name, instance: ep.id });
        return void this.fail("upstream-tls-failed", undefined, u.tlsFailure);
      }
      if (this.mayRetry(kind)) return void this.retry();
      this.fail(kind === "timeout" ? "upstream-timeout" : "upstream-failed");
    };
    let timer: NodeJS.Timeout | undefined;
    let up: ClientHttp2Stream;
    try {
      up = u.session.request(this.headers, { endStream: false });
      releaseOnClose(up);
    } catch {
      done(false);
      if (this.mayRetry(u.connected ? "reset" : "connect")) return void this.retry();
      return void this.fail("upstream-failed");
    }
    timer = setTimeout(
      () => {
        timedOut = true;
        up.close(constants.NGHTTP2_CANCEL);
      },
      c.perTryTimeoutMs > 0 ? c.perTryTimeoutMs : UPSTREAM_RESPONSE_TIMEOUT_MS,
    );
    this.current = up;
    if (this.kept) for (const chunk of this.kept) up.write(chunk);
    if (this.bodyEnded) up.end();
    this.stream.resume();
    up.on("error", () => {});
    up.once("response", (h) => {
      clearTimeout(timer);
      gotResponse = true;
      const status = Number(h[":status"] ?? 502);
      if (status >= 500) {
        // The try ends here (releasing a retry it held) before mayRetry may reserve the next one.
        done(false);
        if (this.mayRetry("5xx")) {
          this.current = undefined;
          up.close(constants.NGHTTP2_CANCEL);
          return void this.retry();
        }
      }
      this.respond(up, h, status, (ok) => done(ok && status < 500));
    });
    up.once("close", () => {
      if (settled) return;
      if (gotResponse) {
        // The answer started and the upstream stream closed without ending it cleanly.
        done(false);
        cut(this.stream);
        return;
      }
      const kind: FailureKind = timedOut ? "timeout" : !u.connected ? "connect" : up.rstCode === constants.NGHTTP2_REFUSED_STREAM ? "refused" : "reset";
      failed(kind);
    });
  }

  /** respond passes the instance's answer to the client: headers, data with backpressure, trailers. */
  private respond(up: ClientHttp2Stream, h: IncomingHttpHeaders, status: number, done: (ok: boolean) => void): void {
    const stream = this.stream;
    this.responded = true;
    const resp: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(h)) if (v !== undefined && !(k.startsWith(":") && k !== ":status")) resp[k] = v;
    resp[":status"] = status;
    // A gRPC "trailers-only" answer (an error before any message) carries grpc-status in its one
    // HEADERS frame, which also ends the stream: it goes on the same way.
    const trailersOnly = h["grpc-status"] !== undefined;
    let trailers: IncomingHttpHeaders | undefined;
    up.once("trailers", (t) => (trailers = t));
    stream.once("wantTrailers", () => {
      const t: OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(trailers ?? {})) if (v !== undefined && !k.startsWith(":")) t[k] = v;
      stream.sendTrailers(t);
    });
    if (!stream.destroyed && !stream.closed) stream.respond(resp, trailersOnly ? { endStream: true } : { waitForTrailers: true });
    up.on("data", (c: Buffer) => {
      if (!stream.writableEnded && !stream.destroyed && !stream.write(c)) {
        up.pause();
        stream.once("drain", () => up.resume());
      }
    });
    up.once("end", () => {
      // Node ends an upstream stream's data on RST_STREAM too: a reset answer must reach the
      // client as a reset, not as a complete (truncated) answer.
      const code = up.rstCode;
      if (code !== undefined && code !== constants.NGHTTP2_NO_ERROR) {
        done(false);
        cut(stream);
        return;
      }
      done(true);
      if (!stream.writableEnded && !stream.destroyed) stream.end();
    });
  }

  /**
   * mayRetry says whether a failed try may be tried again: never once the client got response
   * headers or once more body was forwarded than is kept; after a connect failure or a refused
   * stream always; after a reset or timeout only for idempotent methods, after a 5xx also with
   * retryOn5xx; within retries, and but for connect failures and refused streams within the
   * retry budget.
   */
  private mayRetry(kind: FailureKind): boolean {
    if (this.finished || this.responded || this.stream.headersSent) return false;
    const c = this.route.table.config;
    if (this.tries > Math.min(c.retries, RETRIES_MAX)) return false;
    if (this.kept === undefined) return false;
    if ((kind === "reset" || kind === "timeout") && !this.idempotent) return false;
    if (kind === "5xx" && !this.idempotent && !c.retryOn5xx) return false;
    // Neither put load on an instance: not charged to the budget, which exists so that retries
    // cannot multiply the load on a failing service.
    if (kind === "connect" || kind === "refused") return true;
    if (!this.route.budget.tryStartRetry()) {
      this.ctx.signal?.({ kind: "retry-budget-exhausted", service: this.route.table.name });
      return false;
    }
    this.retryHeld = true;
    return true;
  }

  /** retry waits a full-jitter backoff and tries again elsewhere; the client's body waits meanwhile. */
  private retry(): void {
    this.route.meter.retried();
    this.stream.pause();
    const cap = Math.min(RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_BASE_MS * 2 ** (this.tries - 1));
    setTimeout(() => this.attempt(), Math.floor(this.ctx.random() * cap));
  }

  /** ended tells the balancer a try to ep ended; an ejection it causes is signalled. */
  private ended(ep: Endpoint, ok: boolean): void {
    if (this.route.balancer.onEnd(ep.id, ok ? "success" : "failure", performance.now())) this.ctx.signal?.({ kind: "outlier-ejected", service: this.route.table.name, instance: ep.id });
  }

  private fail(kind: ErrorKind, limit?: BreakerLimit, reason?: string): void {
    fail(this.stream, kind, this.route.table.name, limit, reason);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.route.meter.finished((performance.now() - this.started) / 1000, Number(this.stream.sentHeaders?.[":status"] ?? 502));
    this.route.breaker.onRequestEnd();
    this.route.budget.onRequestEnd();
    if (this.retryHeld) {
      this.retryHeld = false;
      this.route.budget.onRetryEnd();
    }
  }
}

