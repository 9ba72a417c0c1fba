/**
 * The HTTP/1.1 proxy of one listener, on plain sockets: heads parsed by h1/head-parser.ts (only what
 * routing and framing need), forwarded heads built by copying the client's header bytes minus the
 * hop-by-hop lines plus the added ones, bodies streamed both ways with back-pressure and framed by
 * counting Content-Length or walking chunk sizes (h1/chunked.ts), so a response's end is known and
 * its upstream connection goes back to the endpoint's pool (upstream-pool.ts). Keep-alive on both
 * sides; pipelined requests are served one after the other. Retries only where safe and within
 * the service's retry budget, the next try on another instance. Upgrades (WebSocket) are tunnelled
 * by upgrade.ts.
 */
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { type ClientReader, isShared } from "./client-read.js";
import { ChunkedReader, chunkPrefix, LAST_CHUNK } from "./h1/chunked.js";
import {
  findHeadEnd,
  type HeadError,
  headerValue,
  isHeadError,
  LineKind,
  parseRequestHead,
  parseResponseHead,
  type RequestHead,
  type ResponseHead,
} from "./h1/head-parser.js";
import {
  CLIENT_IDLE_TIMEOUT_MS,
  HEADER_BYTES_MAX,
  HEADERS_TIMEOUT_MS,
  MASTER_WAIT_MS_MAX,
  RETRIES_MAX,
  RETRY_BACKOFF_BASE_MS,
  RETRY_BACKOFF_MAX_MS,
  RETRY_BODY_BYTES_MAX,
  UPSTREAM_HEAD_BYTES_MAX,
  UPSTREAM_RESPONSE_TIMEOUT_MS,
  UPSTREAM_SOCKETS_MAX,
} from "./limits.js";
import { type ErrorKind, errorBody, errorResponse, rawError, staticResponse } from "./responses.js";
import { endpointKey, type Route, type RouteTable } from "./route-table.js";
import { routeOf, SVC_PREFIX } from "./routing.js";
import type { WorkerSignal } from "./messages.js";
import { upstreamTlsOf } from "./tls.js";
import type { BreakerLimit, Endpoint, PickRequest } from "./types.js";
import { handleUpgrade } from "./upgrade.js";
import type { Pool, UpstreamConn, UpstreamPools, UpstreamUser } from "./upstream-pool.js";

/** IDEMPOTENT methods may be retried after the request reached an instance (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

/** HEAD_SWEEP_MS: client connections are checked this often for a slow head or a long idle, so a slow head is cut within timeout + this. */
const HEAD_SWEEP_MS = 250;

const CONTINUE = Buffer.from("HTTP/1.1 100 Continue\r\n\r\n");
const CRLF = Buffer.from("\r\n");
const HTTP11 = Buffer.from("HTTP/1.1 ");
const CONN_CLOSE = "connection: close\r\n";
const CONN_KEEP = "connection: keep-alive\r\n";

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

/** H1Server holds a listener's HTTP/1.1 client connections and times their heads and idleness. */
export class H1Server {
  private readonly conns = new Set<ClientConn>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    readonly ctx: ProxyContext,
    readonly headersTimeoutMs: number = HEADERS_TIMEOUT_MS,
  ) {
    this.sweeper = setInterval(() => this.sweep(), HEAD_SWEEP_MS);
    this.sweeper.unref();
  }

  /** accept serves a client connection whose first bytes (already read, maybe a view of the shared read buffer) are `first`. */
  accept(socket: Socket, reader: ClientReader, first: Buffer): void {
    const c = new ClientConn(this, socket, reader);
    this.conns.add(c);
    c.receive(first);
  }

  forget(c: ClientConn): void {
    this.conns.delete(c);
  }

  /** close stops the sweeper and closes every client connection. */
  close(): void {
    clearInterval(this.sweeper);
    for (const c of this.conns) c.socket.destroy();
    this.conns.clear();
  }

  private sweep(): void {
    const now = performance.now();
    for (const c of this.conns) c.check(now, this.headersTimeoutMs);
  }
}

/** ClientState: reading a head, reading a request body, waiting for the response to end, tunnelling, closed. */
enum CS {
  Head,
  Body,
  Response,
  Tunnel,
  Closed,
}

/** ClientConn is one client connection: its requests are read and served one after the other. */
class ClientConn {
  state = CS.Head;
  /** pending: bytes read but not yet used (a head in progress, or pipelined requests). */
  private pending: Buffer | undefined;
  /** headStart: when the current head's first byte came (0: no head begun). */
  private headStart: number;
  private idleSince = 0;
  private req: ProxyRequest | undefined;
  private driving = false;
  private paused = false;
  /** ended: the client closed its side; the connection closes after the response in flight. */
  private ended = false;
  readonly remote: string;
  /** xff: the x-forwarded-for line added to this connection's requests that bring none (built once). */
  readonly xff: Buffer;

  constructor(
    private readonly server: H1Server,
    readonly socket: Socket,
    private readonly reader: ClientReader,
  ) {
    this.remote = socket.remoteAddress ?? "";
    this.xff = Buffer.from(`x-forwarded-for: ${this.remote}\r\n`, "latin1");
    this.headStart = performance.now();
    reader.to((c: Buffer) => this.receive(c));
    socket.on("drain", () => this.req?.clientDrain());
    socket.on("end", () => this.onEnd());
    socket.on("error", () => {});
    socket.on("close", () => this.onClose());
  }

  /**
   * receive takes bytes read from the client. chunk may be a view of the thread's shared read
   * buffer (client-read.ts), valid only during the call: it is parsed and forwarded in place, and
   * what is kept past the call (a head in progress, pipelined bytes, a body) is copied.
   */
  receive(chunk: Buffer): void {
    this.take(chunk);
    const p = this.pending;
    if (p !== undefined && isShared(p)) this.pending = Buffer.from(p);
  }

  private take(chunk: Buffer): void {
    switch (this.state) {
      case CS.Head:
        this.pending = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
        this.drive();
        return;
      case CS.Body: {
        const used = this.req!.clientBody(chunk, 0);
        if (used < chunk.length && (this.state as CS) !== CS.Closed) this.stash(chunk.subarray(used));
        return;
      }
      case CS.Response:
        this.stash(chunk);
        return;
      default:
        return;
    }
  }

  /** stash keeps bytes that came after the request being served (pipelining), pausing reads past a head's worth. */
  private stash(b: Buffer): void {
    if (b.length === 0) return;
    this.pending = this.pending ? Buffer.concat([this.pending, b]) : b;
    if (this.pending.length > HEADER_BYTES_MAX && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /** drive serves the requests in pending while a whole head is there and no request is in flight. */
  private drive(): void {
    if (this.driving) return;
    this.driving = true;
    while (this.state === CS.Head && this.pending !== undefined) {
      const buf = this.pending;
      this.pending = undefined;
      const end = findHeadEnd(buf, 0, buf.length, HEADER_BYTES_MAX);
      if (typeof end !== "number") {
        this.refuse(end);
        break;
      }
      if (end === -1) {
        // A head in pieces: timed from its first piece (a whole head needs no clock read).
        if (this.headStart === 0) this.headStart = performance.now();
        this.pending = buf;
        break;
      }
      const head = parseRequestHead(buf, 0, end);
      if (isHeadError(head)) {
        this.refuse(head);
        break;
      }
      this.headStart = 0;
      this.begin(buf, head);
    }
    this.driving = false;
    if (this.paused && this.state === CS.Head) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private refuse(e: HeadError): void {
    const msg = e.status === 431 ? `request head over ${HEADER_BYTES_MAX} bytes` : e.message;
    this.close(rawError(e.status, e.reason, msg));
  }

  /** begin routes one request whose head is buf[0, head.end); the bytes after it are its body and what follows. */
  private begin(buf: Buffer, head: RequestHead): void {
    const ctx = this.server.ctx;
    if (head.upgrade) {
      this.state = CS.Tunnel;
      this.server.forget(this);
      this.reader.release();
      this.socket.removeAllListeners("drain");
      this.socket.removeAllListeners("end");
      this.socket.removeAllListeners("close");
      if (this.paused) this.socket.resume();
      // The tunnel writes the bytes after the head when its connection is up: they are its own copy.
      handleUpgrade(ctx.routes, this.socket, isShared(buf) ? Buffer.from(buf) : buf, head, this.remote, () => ctx.pools.tlsContext());
      return;
    }
    const hasBody = head.chunked || head.contentLength > 0;
    const target = routeOf(head.target, head.target.startsWith(SVC_PREFIX) ? undefined : head.host);
    if (!target) return void this.answer(head, hasBody, errorResponse("bad-request", undefined, undefined, connHeader(head, hasBody)), buf);
    let route = ctx.routes.get(target.service);
    if (!route) return void this.answer(head, hasBody, errorResponse("unknown-service", target.service, undefined, connHeader(head, hasBody)), buf);
    const now = performance.now();
    let pr = pickRequest(route, buf, head, this.remote, undefined);
    let first = pickFor(route, pr, now);
    if (!first) {
      // Fallback: a service with no healthy instance sends its requests to the configured service,
      // or answers with its static response.
      const c = route.table.config;
      const fb = c.fallback !== "" ? ctx.routes.get(c.fallback) : undefined;
      if (fb) {
        pr = pickRequest(fb, buf, head, this.remote, undefined);
        first = pickFor(fb, pr, now);
      }
      if (!fb || !first) {
        if (c.fallbackStatus !== 0) return void this.answer(head, hasBody, staticResponse(c.fallbackStatus, c.fallbackBody, target.service, connHeader(head, hasBody)), buf);
        const kind = route.mode === "master-slave" ? "no-master" : "no-healthy-instance";
        return void this.answer(head, hasBody, errorResponse(kind, target.service, undefined, connHeader(head, hasBody)), buf);
      }
      route = fb;
    }
    if (!route.breaker.tryStartRequest()) {
      ctx.signal?.({ kind: "circuit-open", service: route.table.name, limit: "requests" });
      return void this.answer(head, hasBody, errorResponse("circuit-open", route.table.name, "requests", connHeader(head, hasBody)), buf);
    }
    route.budget.onRequestStart();
    if (head.expectContinue && hasBody) this.socket.write(CONTINUE);
    const req = new ProxyRequest(ctx, this, route, buf, head, target.path, first, pr.hashKey, now);
    this.req = req;
    this.state = hasBody ? CS.Body : CS.Response;
    const used = req.clientBody(buf, head.end);
    if (used < buf.length && (this.state as CS) !== CS.Closed) this.stash(buf.subarray(used));
    req.start();
  }

  /**
   * answer sends the endpoint's own response to a request. A request with a body it did not read
   * ends the connection (its body would be taken for the next request's head).
   */
  private answer(head: RequestHead, hasBody: boolean, response: Buffer, buf: Buffer): void {
    if (hasBody || !head.keepAlive) {
      this.close(response);
      return;
    }
    this.socket.write(response);
    if (buf.length > head.end) this.stash(buf.subarray(head.end));
    this.idle();
  }

  /** bodyDone: the request's body was read whole; bytes after it wait for the response to end. */
  bodyDone(): void {
    if (this.state === CS.Body) this.state = CS.Response;
  }

  /** requestDone: the response was written whole; keepAlive says the connection may carry the next request. */
  requestDone(req: ProxyRequest, keepAlive: boolean): void {
    if (this.req !== req) return;
    this.req = undefined;
    if (!keepAlive || this.ended || this.state !== CS.Response) {
      this.close(undefined);
      return;
    }
    this.idle();
  }

  /** abandon closes the connection at once (a broken exchange: the client must not take a cut response for whole). */
  abandon(): void {
    this.state = CS.Closed;
    this.socket.destroy();
  }

  private idle(): void {
    this.state = CS.Head;
    this.idleSince = performance.now();
    this.drive();
  }

  write(b: Buffer | string): boolean {
    return this.socket.write(b);
  }

  private close(last: Buffer | string | undefined): void {
    if (this.state === CS.Closed) return;
    this.state = CS.Closed;
    this.pending = undefined;
    if (last !== undefined && this.socket.writable) this.socket.end(last);
    else this.socket.end();
    this.socket.destroySoon();
  }

  /** check cuts a head not received within the head timeout (slowloris) and a connection idle too long. */
  check(now: number, headersTimeoutMs: number): void {
    if (this.state !== CS.Head) return;
    if (this.headStart !== 0) {
      if (now - this.headStart >= headersTimeoutMs) this.close(rawError(408, "headers-timeout", `request head not received within ${headersTimeoutMs} ms`));
    } else if (now - this.idleSince >= CLIENT_IDLE_TIMEOUT_MS) this.close(undefined);
  }

  private onEnd(): void {
    this.ended = true;
    if (this.state === CS.Head) this.close(undefined);
    else if (this.state === CS.Body) {
      // The client ended inside its body: the request cannot complete.
      this.req?.clientGone();
      this.abandon();
    }
  }

  private onClose(): void {
    this.state = CS.Closed;
    this.server.forget(this);
    const r = this.req;
    this.req = undefined;
    r?.clientGone();
  }

  pauseReading(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  resumeReading(): void {
    if (this.paused && (this.pending === undefined || this.pending.length <= HEADER_BYTES_MAX)) {
      this.paused = false;
      this.socket.resume();
    }
  }
}

/** connHeader is the Connection line of a response the endpoint writes itself. */
function connHeader(head: RequestHead, closing: boolean): string {
  if (closing || !head.keepAlive) return CONN_CLOSE;
  return head.minor === 0 ? CONN_KEEP : "";
}

/** pickRequest is the PickRequest of a try: the hash key only for policy "hash", read from what hashOn names. */
function pickRequest(route: Route, buf: Buffer, head: RequestHead, remote: string, exclude: ReadonlySet<string> | undefined): PickRequest {
  const c = route.table.config;
  if (c.policy !== "hash") return exclude ? { exclude } : NO_PICK;
  return { hashKey: hashKeyOf(c.hashOn, buf, head, remote), exclude };
}

const NO_PICK: PickRequest = {};

/** hashKeyOf reads the value policy "hash" hashes: a header, a cookie, or the client's address. */
export function hashKeyOf(hashOn: string, buf: Buffer, head: RequestHead, remote: string): string | undefined {
  if (hashOn === "source" || hashOn === "") return remote;
  if (hashOn.startsWith("header:")) return headerValue(buf, head.lines, hashOn.slice(7).toLowerCase());
  if (hashOn.startsWith("cookie:")) {
    const name = hashOn.slice(7);
    const cookie = headerValue(buf, head.lines, "cookie");
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

/** FailureKind: connect (no byte reached the instance), reset (the connection broke after), timeout, or a 5xx answer. */
type FailureKind = "connect" | "reset" | "timeout" | "5xx";

/** Body: how a message's body is framed. */
enum Body {
  None,
  Length,
  Chunked,
  /** Close: the body runs to the connection's close (a response without length). */
  Close,
}

/** copyLines copies the lines of kind k (or, with also, kind also) with their CRLFs to out at at, a run of adjacent lines in one copy; returns the new offset. */
function copyLines(buf: Buffer, lines: readonly number[], out: Buffer, at: number, k: LineKind, also: LineKind | -1): number {
  let runStart = -1;
  let runEnd = -1;
  for (let i = 0; i < lines.length; i += 3) {
    const kind = lines[i + 2]!;
    if (kind !== k && kind !== also) continue;
    const s = lines[i]!;
    if (s !== runEnd) {
      if (runStart !== -1) at = put(out, at, buf, runStart, runEnd);
      runStart = s;
    }
    runEnd = lines[i + 1]! + 2;
  }
  if (runStart !== -1) at = put(out, at, buf, runStart, runEnd);
  return at;
}

/** put copies src[s, e) to out at at and returns the new offset: short runs byte by byte (Buffer.copy makes a view per call). */
function put(out: Buffer, at: number, src: Uint8Array, s: number, e: number): number {
  if (e - s > SHORT_COPY_BYTES) return at + (src as Buffer).copy(out, at, s, e);
  for (let i = s; i < e; i++) out[at++] = src[i]!;
  return at;
}

/** SHORT_COPY_BYTES: runs up to this long are copied by a loop, longer ones by Buffer.copy (its per-call view costs less than the loop past it). */
const SHORT_COPY_BYTES = 48;

const HTTP11_CRLF = Buffer.from(" HTTP/1.1\r\n");
const TE_CHUNKED = Buffer.from("transfer-encoding: chunked\r\n");
const RID_NAME = Buffer.from("x-request-id: ");
/** ridPrefix is the latin1 bytes of requestIdPrefix (the same string in every request of a worker: built once). */
let ridPrefixOf = "";
let ridPrefix = Buffer.alloc(0);

/** base36Length is the number of base-36 digits of n (n >= 1). */
function base36Length(n: number): number {
  let len = 1;
  while (n >= 36) {
    n = Math.floor(n / 36);
    len++;
  }
  return len;
}

/**
 * forwardedHead builds the head sent upstream: the client's header lines minus hop-by-hop ones,
 * plus the added ones, in one buffer sized first and filled by copies (no string built per request
 * but the path). xff is the connection's own x-forwarded-for line (the same for each of its
 * requests that brings none of its own).
 */
function forwardedHead(buf: Buffer, head: RequestHead, path: string, remote: string, xff: Buffer, requestIdPrefix: string, master: boolean): Buffer {
  const lines = head.lines;
  const ownXff = head.forwardedFor !== undefined ? `x-forwarded-for: ${head.forwardedFor}, ${remote}\r\n` : undefined;
  const rid = head.hasRequestId ? 0 : ++requestCounter;
  if (rid !== 0 && requestIdPrefix !== ridPrefixOf) {
    ridPrefixOf = requestIdPrefix;
    ridPrefix = Buffer.concat([RID_NAME, Buffer.from(requestIdPrefix, "latin1")]);
  }
  const ridDigits = rid === 0 ? 0 : base36Length(rid);
  const methodLen = head.method.length;
  // The request line's method is the client's bytes; path and method are latin1.
  let size = methodLen + 1 + path.length + HTTP11_CRLF.length + (ownXff !== undefined ? ownXff.length : xff.length) + 2;
  if (rid !== 0) size += ridPrefix.length + ridDigits + 2;
  if (head.chunked) size += TE_CHUNKED.length;
  for (let i = 0; i < lines.length; i += 3) {
    const k = lines[i + 2]!;
    if (k === LineKind.Forward || (k === LineKind.Epoch && !master)) size += lines[i + 1]! - lines[i]! + 2;
  }
  const out = Buffer.allocUnsafe(size);
  let at = put(out, 0, buf, head.start, head.start + methodLen);
  out[at++] = 32;
  at += path.length === 0 ? 0 : out.write(path, at, "latin1");
  at = put(out, at, HTTP11_CRLF, 0, HTTP11_CRLF.length);
  at = copyLines(buf, lines, out, at, LineKind.Forward, master ? -1 : LineKind.Epoch);
  at = ownXff !== undefined ? at + out.write(ownXff, at, "latin1") : put(out, at, xff, 0, xff.length);
  if (rid !== 0) {
    at = put(out, at, ridPrefix, 0, ridPrefix.length);
    // The counter in base 36, most significant digit first (0-9 then a-z, as Number#toString(36)).
    let n = rid;
    for (let i = at + ridDigits - 1; i >= at; i--) {
      const d = n % 36;
      out[i] = d < 10 ? 48 + d : 87 + d;
      n = Math.floor(n / 36);
    }
    at += ridDigits;
    out[at++] = 13;
    out[at++] = 10;
  }
  if (head.chunked) at = put(out, at, TE_CHUNKED, 0, TE_CHUNKED.length);
  out[at] = 13;
  out[at + 1] = 10;
  return out;
}

/** ProxyRequest carries one client request through its tries; it is the user of the upstream connection of its current try. */
class ProxyRequest implements UpstreamUser {
  private readonly idempotent: boolean;
  private readonly isHead: boolean;
  /** upHead: the head sent upstream (per-try additions, when needed, are made from it). */
  private readonly upHead: Buffer;
  private readonly masterOnly: boolean;
  private readonly hasHost: boolean;
  private readonly clientMinor: number;
  private readonly clientKeepAlive: boolean;
  // Request body.
  private bodyMode: Body;
  private bodyLeft: number;
  private readonly bodyChunks: ChunkedReader | undefined;
  /** body: kept whole for retries (undefined: no body, or streamed). */
  private readonly body: Buffer[] | undefined;
  private bodyComplete: boolean;
  private readonly streamed: boolean;
  /** queued: streamed body bytes read before the upstream connection was up. */
  private queued: Buffer[] | undefined;
  private queuedBytes = 0;
  /** bodyStarted: some of a streamed body was sent upstream; no more tries. */
  private bodyStarted = false;
  /** waitingBody: a body kept for retries is still being read; begun: start() was called. */
  private waitingBody: boolean;
  private begun = false;
  // Tries.
  private tried: Set<string> | undefined;
  private firstTried: string | undefined;
  private tries = 0;
  /** retryHeld: a retry reserved from the budget is in flight (released when it ends). */
  private retryHeld = false;
  /** placeRefused: the budget refused this master-slave request's retry, which waits for the next master (see mayRetry). */
  private placeRefused = false;
  /** holdLeftMs: how much longer, in all, the request may wait for a new master (hold()). */
  private holdLeftMs = MASTER_WAIT_MS_MAX;
  /** sentEpoch: the master's epoch (route.epochHeader) when the current try was sent. */
  private sentEpoch = "";
  private finished = false;
  /** started: response bytes reached the client; no more tries. */
  private started = false;
  private cancelWait: (() => void) | undefined;
  // Current try.
  private conn: UpstreamConn | undefined;
  private ep: Endpoint | undefined;
  private pool: Pool | undefined;
  private timedOut = false;
  private settled = true;
  private retrying = false;
  // Response.
  private respBuf: Buffer | undefined;
  private resp: ResponseHead | undefined;
  private respMode: Body = Body.None;
  private respLeft = 0;
  private respChunks: ChunkedReader | undefined;
  /** frame: chunk-encode a body read to the close (HTTP/1.1 client); decode: strip chunking (HTTP/1.0 client). */
  private frame = false;
  private decode = false;
  private closeClient = false;
  /** startedAt: when the request began, for the duration histogram (stats.ts); status: the status answered (0: none). */
  private readonly startedAt: number;
  private status = 0;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly client: ClientConn,
    private readonly route: Route,
    buf: Buffer,
    head: RequestHead,
    path: string,
    private next: Endpoint | undefined,
    private readonly hashKey: string | undefined,
    /** now: performance.now() when the request was routed (its start; its first try's clock). */
    now: number,
  ) {
    this.startedAt = now;
    this.idempotent = IDEMPOTENT.has(head.method);
    this.isHead = head.method === "HEAD";
    this.masterOnly = route.mode === "master-slave";
    this.hasHost = head.host !== undefined;
    this.clientMinor = head.minor;
    this.clientKeepAlive = head.keepAlive;
    this.upHead = forwardedHead(buf, head, path, client.remote, client.xff, ctx.requestIdPrefix, this.masterOnly);
    if (head.chunked) {
      this.bodyMode = Body.Chunked;
      this.bodyChunks = new ChunkedReader();
    } else this.bodyMode = head.contentLength > 0 ? Body.Length : Body.None;
    this.bodyLeft = head.contentLength;
    this.bodyComplete = this.bodyMode === Body.None;
    this.streamed = head.chunked || head.contentLength > RETRY_BODY_BYTES_MAX;
    this.body = !this.streamed && head.contentLength > 0 ? [] : undefined;
    this.waitingBody = this.body !== undefined;
  }

  start(): void {
    this.begun = true;
    if (!this.waitingBody) this.attempt(this.startedAt);
  }

  /** clientBody takes body bytes from buf[from, ...) and returns where the body ended (buf.length: it needs more). */
  clientBody(buf: Buffer, from: number): number {
    if (this.bodyComplete || this.finished) return from;
    let end: number;
    if (this.bodyMode === Body.Length) {
      const n = Math.min(this.bodyLeft, buf.length - from);
      end = from + n;
      this.bodyLeft -= n;
      if (this.bodyLeft === 0) this.bodyComplete = true;
    } else {
      end = this.bodyChunks!.scan(buf, from, buf.length);
      if (this.bodyChunks!.failed) {
        this.clientGone();
        this.client.abandon();
        return buf.length;
      }
      if (this.bodyChunks!.done) this.bodyComplete = true;
    }
    if (end > from) this.bodyBytes(from === 0 && end === buf.length ? buf : buf.subarray(from, end));
    if (this.bodyComplete) {
      this.client.bodyDone();
      if (this.waitingBody) {
        this.waitingBody = false;
        if (this.begun) this.attempt();
      }
    }
    return end;
  }

  private bodyBytes(view: Buffer): void {
    // Body bytes are kept (for retries, or queued) or written (a write may complete later): a view
    // of the shared read buffer is copied first.
    const b = isShared(view) ? Buffer.from(view) : view;
    if (this.body) {
      this.body.push(b);
      return;
    }
    const c = this.conn;
    if (c?.connected && this.settled === false) {
      this.bodyStarted = true;
      if (!c.socket.write(b)) this.client.pauseReading();
      return;
    }
    (this.queued ??= []).push(b);
    this.queuedBytes += b.length;
    // Bounded: past one retry body's worth the client waits for the upstream connection.
    if (this.queuedBytes > RETRY_BODY_BYTES_MAX) this.client.pauseReading();
  }

  private attempt(now = performance.now()): void {
    if (this.finished) return;
    const route = this.route;
    // A retry goes to an instance not tried yet; when every one was tried, to any.
    if (this.next === undefined && this.tried === undefined && this.firstTried !== undefined) this.tried = new Set([this.firstTried]);
    const ep = this.next ?? pickFor(route, { hashKey: this.hashKey, exclude: this.tried }, now) ?? pickFor(route, { hashKey: this.hashKey }, now);
    this.next = undefined;
    if (!ep) {
      // A master-slave retry finding no master (the one it tried went critical: the table is
      // between masters) waits for the next one as a refused connect does.
      if (this.masterOnly && this.tries > 0 && this.holdLeftMs > 0 && this.hold(true)) return;
      this.fail("upstream-failed");
      return;
    }
    if (this.placeRefused) {
      // A retry the budget refused goes only to another master, uncharged; to the same one (the
      // wait ended with no failover) it stays refused.
      this.placeRefused = false;
      if (!this.otherMaster()) return void this.budgetExhausted();
      this.route.meter.retried();
    }
    const pools = this.ctx.pools;
    const pool = pools.acquireFor(ep, upstreamTlsOf(route.table.config));
    const free = pools.take(pool);
    if (free) return void this.send(ep, pool, free, false, now);
    if (pool.total < UPSTREAM_SOCKETS_MAX && route.breaker.tryOpenConnection()) return void this.send(ep, pool, undefined, true, now);
    // At maxConnections. With no connection of this endpoint in use, none will be freed for the
    // request: refuse at once. Otherwise wait for one (maxPendingRequests bounds the waiters).
    if (pool.total === 0) {
      pools.release(pool);
      return void this.refuse("connections");
    }
    if (!route.breaker.tryEnqueuePending()) {
      pools.release(pool);
      return void this.refuse("pending");
    }
    this.waitForConnection(ep, pool);
  }

  private refuse(limit: BreakerLimit): void {
    this.ctx.signal?.({ kind: "circuit-open", service: this.route.table.name, limit });
    this.status = 503;
    this.respondSelf(errorResponse("circuit-open", this.route.table.name, limit, this.selfConn()));
  }

  /** waitForConnection parks the try until a connection of pool frees or closes, the client leaves, or the try times out. */
  private waitForConnection(ep: Endpoint, pool: Pool): void {
    const route = this.route;
    const pools = this.ctx.pools;
    const c = route.table.config;
    let waiting = true;
    const leave = () => {
      waiting = false;
      this.cancelWait = undefined;
      clearTimeout(timer);
      route.breaker.onPendingDequeued();
      const i = pool.waiters.indexOf(waiter);
      if (i !== -1) pool.waiters.splice(i, 1);
    };
    const waiter = (): boolean => {
      if (!waiting) return true;
      const free = pools.take(pool);
      if (free) {
        leave();
        this.send(ep, pool, free, false);
        return true;
      }
      if (pool.total < UPSTREAM_SOCKETS_MAX && route.breaker.tryOpenConnection()) {
        leave();
        this.send(ep, pool, undefined, true);
        return true;
      }
      return false;
    };
    this.cancelWait = () => {
      if (!waiting) return;
      leave();
      pools.release(pool);
    };
    const timer = setTimeout(
      () => {
        if (!waiting) return;
        leave();
        pools.release(pool);
        this.fail("upstream-timeout");
      },
      c.perTryTimeoutMs > 0 ? c.perTryTimeoutMs : UPSTREAM_RESPONSE_TIMEOUT_MS,
    );
    pool.waiters.push(waiter);
  }

  /** send makes one try to ep on pool, over conn (an idle one) or a new connection (opened: charged to the breaker). */
  private send(ep: Endpoint, pool: Pool, idle: UpstreamConn | undefined, opened: boolean, now = performance.now()): void {
    const pools = this.ctx.pools;
    if (this.finished) {
      if (idle) pools.put(idle);
      else if (opened) this.route.breaker.onConnectionClosed();
      pools.release(pool);
      return;
    }
    const route = this.route;
    this.tries++;
    // The set of instances tried is made on the first retry: most requests take one try.
    if (this.tries === 1) this.firstTried = ep.id;
    else (this.tried ??= new Set([this.firstTried!])).add(ep.id);
    let conn: UpstreamConn;
    if (idle) {
      conn = idle;
      conn.user = this;
    } else conn = pools.open(pool, this, opened ? route.breaker : undefined);
    this.conn = conn;
    this.ep = ep;
    this.pool = pool;
    this.sentEpoch = route.epochHeader;
    this.settled = false;
    this.timedOut = false;
    this.retrying = this.retryHeld;
    this.respBuf = undefined;
    this.resp = undefined;
    route.balancer.onStart(ep.id);
    const c = route.table.config;
    conn.arm(c.perTryTimeoutMs > 0 ? c.perTryTimeoutMs : UPSTREAM_RESPONSE_TIMEOUT_MS, now);
    let head = this.upHead;
    if (this.masterOnly || !this.hasHost) {
      let extra = "";
      if (!this.hasHost) extra += `host: ${ep.address.includes(":") ? `[${ep.address}]:${ep.port}` : `${ep.address}:${ep.port}`}\r\n`;
      if (this.masterOnly) extra += `x-raftmesh-epoch: ${route.epochHeader}\r\n`;
      head = Buffer.concat([head.subarray(0, head.length - 2), Buffer.from(`${extra}\r\n`, "latin1")]);
    }
    const s = conn.socket;
    // One write (one syscall) for the head and a body kept whole.
    s.write(this.body ? Buffer.concat([head, ...this.body]) : head);
    if (this.streamed && conn.connected) this.flushQueued();
  }

  upConnect(conn: UpstreamConn): void {
    if (conn === this.conn && this.streamed) this.flushQueued();
  }

  /** flushQueued sends the streamed body read so far, once the connection is up (a refused connect has sent none of it). */
  private flushQueued(): void {
    const q = this.queued;
    const s = this.conn!.socket;
    if (q) {
      this.queued = undefined;
      this.queuedBytes = 0;
      this.bodyStarted = true;
      let ok = true;
      for (const b of q) ok = s.write(b);
      if (!ok) this.client.pauseReading();
      else this.client.resumeReading();
    }
  }

  upDrain(): void {
    this.client.resumeReading();
  }

  clientDrain(): void {
    this.conn?.socket.resume();
  }

  upTimeout(conn: UpstreamConn): void {
    if (conn !== this.conn || this.resp) return;
    this.timedOut = true;
    conn.socket.destroy();
  }

  upData(conn: UpstreamConn, chunk: Buffer): void {
    if (conn !== this.conn) return;
    if (this.resp) {
      this.forward(chunk, 0);
      return;
    }
    let buf = this.respBuf ? Buffer.concat([this.respBuf, chunk]) : chunk;
    this.respBuf = undefined;
    for (;;) {
      const end = findHeadEnd(buf, 0, buf.length, UPSTREAM_HEAD_BYTES_MAX);
      if (end === -1) {
        this.respBuf = Buffer.from(buf);
        return;
      }
      const r = typeof end === "number" ? parseResponseHead(buf, 0, end) : end;
      if (isHeadError(r) || r.status === 101) {
        // An answer that cannot be framed: the connection is done for.
        conn.socket.destroy();
        return;
      }
      if (r.status < 200) {
        // Interim answers (103 Early Hints, a stray 100) are not passed on: Expect was answered here.
        buf = buf.subarray(r.end);
        if (buf.length === 0) return;
        continue;
      }
      this.respond(conn, buf, r);
      return;
    }
  }

  private respond(conn: UpstreamConn, buf: Buffer, r: ResponseHead): void {
    conn.disarm();
    if (r.status >= 500) {
      // The try's own retry reservation ends before mayRetry may reserve the next one: one flag
      // holds one reservation, and a retry answered with a 5xx and retried again would otherwise
      // keep a place in the budget for good (as h2c-proxy.ts does, the 5xx passed on is not counted).
      this.releaseRetry();
      if (this.mayRetry("5xx")) {
        // The rest of this answer is not read: its connection closes rather than wait for it.
        this.endTry(false, false);
        return void this.retry("5xx");
      }
    }
    this.resp = r;
    this.started = true;
    this.status = r.status;
    const noBody = this.isHead || r.status === 204 || r.status === 304;
    let extra = "";
    if (noBody) this.respMode = Body.None;
    else if (r.chunked) {
      this.respMode = Body.Chunked;
      (this.respChunks ??= new ChunkedReader()).reset();
      if (this.clientMinor === 1) extra = "transfer-encoding: chunked\r\n";
      else {
        this.decode = true;
        this.closeClient = true;
      }
    } else if (r.contentLength !== -1) {
      this.respMode = Body.Length;
      this.respLeft = r.contentLength;
    } else {
      this.respMode = Body.Close;
      if (this.clientMinor === 1) {
        this.frame = true;
        extra = "transfer-encoding: chunked\r\n";
      } else this.closeClient = true;
    }
    if (!this.clientKeepAlive || this.closeClient) {
      this.closeClient = true;
      extra += CONN_CLOSE;
    } else if (this.clientMinor === 0) extra += CONN_KEEP;
    // The head and the body bytes read with it go out in one write (one syscall, no writev).
    let bodyEnd = r.end;
    let complete = false;
    if (this.respMode === Body.None) complete = true;
    else if (this.respMode === Body.Length) {
      bodyEnd += Math.min(buf.length - r.end, this.respLeft);
      this.respLeft -= bodyEnd - r.end;
      complete = this.respLeft === 0;
    } else if (this.respMode === Body.Chunked && !this.decode) {
      bodyEnd = this.respChunks!.scan(buf, r.end, buf.length);
      if (this.respChunks!.failed) return void this.brokenResponse();
      complete = this.respChunks!.done;
    }
    const ok = this.client.write(responseHead(buf, r, extra, bodyEnd));
    if (complete) return void this.responseEnd(bodyEnd === buf.length);
    if (bodyEnd < buf.length) this.forward(buf, bodyEnd);
    else if (!ok) conn.socket.pause();
  }

  /**
   * forward passes response body bytes buf[from, ...) to the client, framed as the response says.
   * buf is the upstream read buffer, reused by the next read: what is written is a copy.
   */
  private forward(buf: Buffer, from: number): void {
    const n = buf.length - from;
    if (n <= 0) return;
    let ok = true;
    switch (this.respMode) {
      case Body.Length: {
        const take = Math.min(n, this.respLeft);
        ok = this.client.write(Buffer.from(buf.subarray(from, from + take)));
        this.respLeft -= take;
        if (this.respLeft === 0) return void this.responseEnd(take === n);
        break;
      }
      case Body.Chunked: {
        const rc = this.respChunks!;
        let end: number;
        if (this.decode) end = rc.scan(buf, from, buf.length, (a, b) => void (ok = this.client.write(Buffer.from(buf.subarray(a, b)))));
        else {
          end = rc.scan(buf, from, buf.length);
          if (!rc.failed) ok = this.client.write(Buffer.from(buf.subarray(from, end)));
        }
        if (rc.failed) return void this.brokenResponse();
        if (rc.done) return void this.responseEnd(end === buf.length);
        break;
      }
      case Body.Close:
        if (this.frame) ok = this.client.write(Buffer.concat([Buffer.from(chunkPrefix(n), "latin1"), buf.subarray(from), CRLF]));
        else ok = this.client.write(Buffer.from(buf.subarray(from)));
        break;
      default:
        // Bytes after a body-less answer: the instance broke framing; the connection is not reused.
        return;
    }
    if (!ok) this.conn?.socket.pause();
  }

  upEnd(conn: UpstreamConn): void {
    if (conn !== this.conn) return;
    if (this.resp && this.respMode === Body.Close) {
      if (this.frame) this.client.write(LAST_CHUNK);
      this.responseEnd(false);
    }
    // Otherwise the close that follows says what broke.
  }

  upClose(conn: UpstreamConn): void {
    if (conn !== this.conn) return;
    if (this.resp) {
      // The instance went away inside its answer: the client must see a cut response, not a whole one.
      return void this.brokenResponse();
    }
    const kind: FailureKind = this.timedOut ? "timeout" : conn.connected ? "reset" : "connect";
    this.conn = undefined;
    this.endTry(false, false);
    // A certificate that does not verify fails the same way on every try: answered at once, never retried.
    if (conn.tlsFailure !== undefined && !this.timedOut) return void this.failTls(conn.tlsFailure);
    if (this.mayRetry(kind)) return void this.retry(kind);
    this.fail(kind === "timeout" ? "upstream-timeout" : "upstream-failed");
  }

  /** brokenResponse ends a response the instance broke off: both connections close. */
  private brokenResponse(): void {
    this.endTry(false, false);
    this.client.abandon();
    this.finish();
  }

  /** responseEnd: the response was passed on whole; reusable says nothing followed it on the upstream connection. */
  private responseEnd(reusable: boolean): void {
    const status = this.resp!.status;
    const keep = reusable && this.resp!.keepAlive && this.respMode !== Body.Close && this.bodyComplete;
    const now = performance.now();
    this.endTry(status < 500, keep, now);
    this.finish(now);
    this.client.requestDone(this, !this.closeClient && this.bodyComplete);
  }

  /** endTry settles the current try: the connection goes back to the pool (keep) or closes, and the counters are released. */
  private endTry(ok: boolean, keep: boolean, now = performance.now()): void {
    if (this.settled) return;
    this.settled = true;
    const conn = this.conn;
    this.conn = undefined;
    const route = this.route;
    if (conn) {
      conn.disarm();
      if (conn.socket.isPaused()) conn.socket.resume();
      if (keep) this.ctx.pools.put(conn);
      else {
        conn.user = undefined;
        conn.socket.destroy();
      }
    }
    if (route.balancer.onEnd(this.ep!.id, ok ? "success" : "failure", now)) this.ctx.signal?.({ kind: "outlier-ejected", service: route.table.name, instance: this.ep!.id });
    this.ctx.pools.release(this.pool!);
    this.releaseRetry();
  }

  /** releaseRetry gives back the budget place the current try holds, if it is a retry that holds one. */
  private releaseRetry(): void {
    if (this.retrying && this.retryHeld) {
      this.retrying = false;
      this.retryHeld = false;
      this.route.budget.onRetryEnd();
    }
  }

  /**
   * mayRetry says whether a failed try may be tried again: never once the client got response
   * bytes or a streamed body was sent; after a connect failure always; after a reset, timeout or
   * 5xx only for idempotent methods (or 5xx with retryOn5xx); within retries, and but for connect
   * failures within the retry budget.
   */
  private mayRetry(kind: FailureKind): boolean {
    if (this.finished || this.started) return false;
    const c = this.route.table.config;
    if (this.tries > Math.min(c.retries, RETRIES_MAX)) return false;
    if (this.streamed && this.bodyStarted) return false;
    if (kind !== "connect" && !this.idempotent && !(kind === "5xx" && c.retryOn5xx)) return false;
    // A connect failure put no load on any instance (nothing reached it): its retry is not charged
    // to the budget, which exists so that retries cannot multiply the load on a failing service.
    if (kind === "connect") return true;
    if (!this.route.budget.tryStartRetry()) {
      // Master-slave: the requests in flight when the master dies are reset together, more of
      // them than the budget's floor. A refused retry after a reset waits for the next master instead of
      // failing (hold()), sending nothing meanwhile, and goes to it uncharged: a try on the new
      // master is that request's first there, no added load on the instance that failed (HAProxy's
      // redispatch, to another server, is not a retry against the one that failed either). If
      // the wait ends with no other master, it fails as refused (attempt()): a master that
      // resets every request, with no failover, still sees at most the budget's retries.
      if (kind === "reset" && this.masterOnly && this.holdLeftMs > 0) {
        this.placeRefused = true;
        return true;
      }
      this.ctx.signal?.({ kind: "retry-budget-exhausted", service: this.route.table.name });
      return false;
    }
    this.retryHeld = true;
    return true;
  }

  /** budgetExhausted answers a request whose retry the budget refused. */
  private budgetExhausted(): void {
    this.ctx.signal?.({ kind: "retry-budget-exhausted", service: this.route.table.name });
    this.fail("upstream-failed");
  }

  /**
   * retry waits a full-jitter backoff (random in [0, min(max, base × 2^n))) and tries again
   * elsewhere; a master-slave request whose master refused its connection, with no other master
   * to go to, waits for the table instead (hold()).
   */
  private retry(kind: FailureKind): void {
    // A retry the budget refused is counted once it goes to the next master (attempt()).
    if (this.placeRefused) {
      if (this.hold(false)) return;
      this.placeRefused = false;
      return void this.budgetExhausted();
    }
    this.route.meter.retried();
    if (kind === "connect" && this.masterOnly && this.holdLeftMs > 0 && !this.otherMaster() && this.hold(false)) return;
    const cap = Math.min(RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_BASE_MS * 2 ** (this.tries - 1));
    setTimeout(() => this.attempt(), Math.floor(this.ctx.random() * cap));
  }

  /** otherMaster: the table names a master other than the one the last try went to (another instance, or a new epoch); anyMaster: any master. */
  private otherMaster(anyMaster = false): boolean {
    const m = this.route.master;
    const ep = this.ep;
    if (!m) return false;
    if (anyMaster || !ep) return true;
    return m.id !== ep.id || endpointKey(m) !== endpointKey(ep) || this.route.epochHeader !== this.sentEpoch;
  }

  /**
   * hold parks the retry of a master-slave request whose master refused its connection until an
   * update of the table names another master, at most holdLeftMs in all (MASTER_WAIT_MS_MAX): in
   * a failover the table lags the crash by tens to hundreds of ms, and blind backoffs would spend
   * every retry on the dead port. A refused connect sent nothing, so any method may wait. A held
   * request counts as pending in the circuit breaker; false says the pending limit is full (the
   * retry backs off as any other). A client that leaves ends the hold (cancelWait); at the bound
   * the retry goes ahead as usual. anyMaster: the table had no master, so any master ends the wait.
   */
  private hold(anyMaster: boolean): boolean {
    const route = this.route;
    if (!route.breaker.tryEnqueuePending()) return false;
    const since = performance.now();
    let unwatch: () => void;
    const leave = () => {
      this.cancelWait = undefined;
      clearTimeout(timer);
      unwatch();
      route.breaker.onPendingDequeued();
      this.holdLeftMs -= performance.now() - since;
    };
    const changed = () => {
      if (!this.otherMaster(anyMaster)) {
        unwatch = this.ctx.routes.watch(route.table.name, changed);
        return;
      }
      leave();
      this.attempt();
    };
    unwatch = this.ctx.routes.watch(route.table.name, changed);
    const timer = setTimeout(() => {
      leave();
      this.holdLeftMs = 0;
      this.attempt();
    }, this.holdLeftMs);
    this.cancelWait = leave;
    return true;
  }

  private fail(kind: ErrorKind): void {
    this.status = errorBody(kind, undefined).status;
    this.respondSelf(errorResponse(kind, this.route.table.name, undefined, this.selfConn()));
  }

  private failTls(reason: string): void {
    this.ctx.signal?.({ kind: "upstream-tls-failed", service: this.route.table.name, instance: this.ep?.id });
    this.status = 502;
    this.respondSelf(errorResponse("upstream-tls-failed", this.route.table.name, undefined, this.selfConn(), reason));
  }

  private selfConn(): string {
    if (!this.clientKeepAlive || !this.bodyComplete) return CONN_CLOSE;
    return this.clientMinor === 0 ? CONN_KEEP : "";
  }

  /** respondSelf answers the request with the endpoint's own response (no try left, or a limit). */
  private respondSelf(response: Buffer): void {
    if (this.finished) return;
    if (this.started) {
      this.client.abandon();
      this.finish();
      return;
    }
    this.started = true;
    this.client.write(response);
    this.finish();
    this.client.requestDone(this, this.clientKeepAlive && this.bodyComplete);
  }

  /** clientGone: the client connection closed; the try in flight is abandoned. */
  clientGone(): void {
    if (this.finished) return;
    this.cancelWait?.();
    // A client leaving says nothing about the instance: the try ends as a success for outlier detection.
    this.endTry(true, false);
    this.finish();
  }

  private finish(now = performance.now()): void {
    if (this.finished) return;
    this.finished = true;
    this.route.meter.finished((now - this.startedAt) / 1000, this.status);
    this.route.breaker.onRequestEnd();
    this.route.budget.onRequestEnd();
    if (this.retryHeld) {
      this.retryHeld = false;
      this.route.budget.onRetryEnd();
    }
  }
}

/**
 * responseHead builds the head sent to the client: HTTP/1.1, the instance's status line and lines
 * minus hop-by-hop ones, plus extra; followed by the body bytes buf[r.end, bodyEnd).
 */
function responseHead(buf: Buffer, r: ResponseHead, extra: string, bodyEnd: number): Buffer {
  const lines = r.lines;
  let size = 9 + (r.statusLineEnd - r.statusAt) + 2 + extra.length + 2 + (bodyEnd - r.end);
  for (let i = 0; i < lines.length; i += 3) if (lines[i + 2] === LineKind.Forward) size += lines[i + 1]! - lines[i]! + 2;
  const out = Buffer.allocUnsafe(size);
  let at = put(out, 0, HTTP11, 0, HTTP11.length);
  at = put(out, at, buf, r.statusAt, r.statusLineEnd + 2);
  at = copyLines(buf, lines, out, at, LineKind.Forward, -1);
  if (extra.length > 0) at += out.write(extra, at, "latin1");
  out[at] = 13;
  out[at + 1] = 10;
  if (bodyEnd > r.end) put(out, at + 2, buf, r.end, bodyEnd);
  return out;
}
