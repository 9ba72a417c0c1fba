/**
 * Per-endpoint upstream connection pools for the HTTP/1.1 proxy: plain keep-alive TCP connections
 * per address:port, reused last-in first-out, at most UPSTREAM_SOCKETS_MAX per endpoint and
 * UPSTREAM_IDLE_SOCKETS_MAX of them idle, shared by every service that names the address. A pool
 * whose endpoint left every table drains: requests already on it finish, then its connections close.
 * A service with upstreamTls has TLS pools of its own (tls.ts), keyed apart from plaintext ones.
 */
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { SecureContext } from "node:tls";
import { UPSTREAM_IDLE_SOCKETS_MAX, UPSTREAM_IDLE_TIMEOUT_MS } from "./limits.js";
import { dialTls, tlsFailure, tlsPoolKey, type UpstreamTls, upstreamContext, type WorkerTls } from "./tls.js";
import type { CircuitBreaker } from "./types.js";

/** READ_BUFFER_BYTES: one read takes up to 64 KiB (a response head and body of most answers at once). */
const READ_BUFFER_BYTES = 64 * 1024;
const READ_BUFFER = Buffer.allocUnsafe(READ_BUFFER_BYTES);

/** IDLE_SWEEP_MS: idle connections are checked this often, so one idles at most UPSTREAM_IDLE_TIMEOUT_MS + this. */
const IDLE_SWEEP_MS = 250;

/** UpstreamUser is the request a connection serves; its events go there. */
export interface UpstreamUser {
  upConnect(conn: UpstreamConn): void;
  /** upData: bytes read; chunk is a view of a shared buffer, valid only during the call (copy what is kept). */
  upData(conn: UpstreamConn, chunk: Buffer): void;
  /** upEnd: the instance closed its side (a body read to the close ends here). */
  upEnd(conn: UpstreamConn): void;
  upClose(conn: UpstreamConn): void;
  upDrain(conn: UpstreamConn): void;
  /** upTimeout: the deadline set with arm() passed. */
  upTimeout(conn: UpstreamConn): void;
}

/** UpstreamConn is one connection to an endpoint. */
export class UpstreamConn {
  user: UpstreamUser | undefined;
  connected = false;
  /** reused: the connection served a request before (a reset on it may be the instance closing an idle one). */
  reused = false;
  idleSince = 0;
  /** owner: the circuit breaker its opening was charged to (maxConnections), released when it closes. */
  owner: CircuitBreaker | undefined;
  closed = false;
  /** tlsFailure: why the TLS handshake (or the instance's check of this node's certificate) failed; undefined otherwise. */
  tlsFailure: string | undefined;
  /**
   * One timer per connection, set for the first deadline and left running: a request arms the
   * connection by moving its deadline (a number), and a timer that fires before the deadline sets
   * itself again for the time left. No timer-list work per request (setTimeout, clearTimeout or
   * refresh), at the cost of a wake-up per deadline's length on a busy connection.
   */
  private timer: NodeJS.Timeout | undefined;
  /** timerAt: when the running timer fires; deadline: when the armed request times out. */
  private timerAt = 0;
  private deadline = 0;
  private armed = false;

  /** arm starts a deadline of ms from now (performance.now()) for the request on the connection (upTimeout when it passes). */
  arm(ms: number, now: number): void {
    this.armed = true;
    this.deadline = now + ms;
    if (this.timer !== undefined) {
      // A shorter deadline than the running timer's (another service's per-try timeout) sets it anew.
      if (this.deadline >= this.timerAt) return;
      clearTimeout(this.timer);
    }
    this.setTimer(ms, now);
  }

  private setTimer(ms: number, now: number): void {
    this.timerAt = now + ms;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.armed || this.closed) return;
      const t = performance.now();
      const left = this.deadline - t;
      if (left > 0) return void this.setTimer(Math.ceil(left), t);
      this.armed = false;
      this.user?.upTimeout(this);
    }, ms);
    this.timer.unref();
  }

  disarm(): void {
    this.armed = false;
  }

  constructor(
    readonly pool: Pool,
    readonly socket: Socket,
  ) {
    // Over TLS the connection is up once the handshake is done: before, nothing of a request reached the instance.
    socket.on(pool.tls ? "secureConnect" : "connect", () => {
      this.connected = true;
      this.user?.upConnect(this);
    });
    if (pool.tls) {
      let tcpUp = false;
      socket.once("connect", () => (tcpUp = true));
      socket.on("error", (err) => (this.tlsFailure ??= tlsFailure(err, tcpUp && !this.connected)));
    }
    socket.on("end", () => {
      if (this.user) this.user.upEnd(this);
      else socket.destroy();
    });
    socket.on("drain", () => this.user?.upDrain(this));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      this.armed = false;
      if (this.timer) clearTimeout(this.timer);
      const p = this.pool;
      p.total--;
      const i = p.idle.indexOf(this);
      if (i !== -1) p.idle.splice(i, 1);
      if (this.owner) {
        this.owner.onConnectionClosed();
        this.owner = undefined;
      }
      const u = this.user;
      this.user = undefined;
      u?.upClose(this);
      wake(p);
    });
  }
}

/** Pool is one endpoint's connections; active counts the requests using it. */
export interface Pool {
  readonly address: string;
  readonly port: number;
  /** tls: the pool's connections are TLS (undefined: plaintext). */
  readonly tls?: UpstreamTls;
  /** idle connections, most recently used last. */
  readonly idle: UpstreamConn[];
  /** total counts open connections: idle, busy and connecting. */
  total: number;
  active: number;
  draining: boolean;
  /**
   * waiters are requests pending for a connection of this endpoint (circuit breaker at
   * maxConnections, or UPSTREAM_SOCKETS_MAX); each is called when a connection is freed or closed
   * and says whether it went.
   */
  readonly waiters: (() => boolean)[];
}

/** UpstreamPools maps address:port to its pool. */
export class UpstreamPools {
  private readonly pools = new Map<string, Pool>();
  /** byEndpoint: the pool of an endpoint object of the current tables, found without building its key. */
  private byEndpoint = new WeakMap<object, Pool>();
  private readonly sweeper: NodeJS.Timeout;
  private tick = 0;
  private tlsNow: WorkerTls | undefined;
  /** context: the secure context of new TLS connections, built on first use after each change. */
  private context: SecureContext | undefined;

  constructor() {
    this.sweeper = setInterval(() => this.sweep(), IDLE_SWEEP_MS);
    this.sweeper.unref();
  }

  /** setTls takes new TLS material: connections opened from now on use it, open ones carry on. */
  setTls(t: WorkerTls | undefined): void {
    this.tlsNow = t;
    this.context = undefined;
  }

  /** tlsContext is the secure context of new TLS upstream connections. */
  tlsContext(): SecureContext {
    this.context ??= upstreamContext(this.tlsNow);
    return this.context;
  }

  /** acquireFor is acquire for an endpoint (over TLS when tls is given), cached per endpoint object: a table's endpoints and config change together. */
  acquireFor(ep: { readonly address: string; readonly port: number }, tls?: UpstreamTls): Pool {
    const p = this.byEndpoint.get(ep);
    if (p && !p.draining) {
      p.active++;
      return p;
    }
    const fresh = this.acquire(`${ep.address}:${ep.port}${tlsPoolKey(tls)}`, ep.address, ep.port, tls);
    this.byEndpoint.set(ep, fresh);
    return fresh;
  }

  /** acquire returns the pool for key, counting one more request on it; release() must follow. */
  acquire(key: string, address: string, port: number, tls?: UpstreamTls): Pool {
    let p = this.pools.get(key);
    if (!p || p.draining) {
      p = { address, port, tls, idle: [], total: 0, active: 0, draining: false, waiters: [] };
      this.pools.set(key, p);
    }
    p.active++;
    return p;
  }

  /** release ends one request on the pool; a draining pool with none left closes. */
  release(p: Pool): void {
    p.active--;
    if (p.draining && p.active === 0) closeIdle(p);
  }

  /** take is an idle connection of p (the most recently used), or undefined. */
  take(p: Pool): UpstreamConn | undefined {
    const c = p.idle.pop();
    if (c) c.reused = true;
    return c;
  }

  /** open starts a new connection to p's endpoint for user. */
  open(p: Pool, user: UpstreamUser, owner: CircuitBreaker | undefined): UpstreamConn {
    if (p.tls) return this.openTls(p, user, owner);
    let c: UpstreamConn | undefined;
    // Requests and answers are small writes: Nagle's algorithm would hold them for an ACK. Reads
    // land in one buffer shared by every upstream connection of the thread (onread), skipping the
    // stream machinery of 'data' events: the user copies what it keeps past the call.
    const socket = connect({
      host: p.address,
      port: p.port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array) => {
          const conn = c!;
          if (conn.user) conn.user.upData(conn, Buffer.from(buf.buffer, buf.byteOffset, n));
          // Bytes from an idle connection answer nothing: the connection cannot be trusted again.
          else socket.destroy();
          return true;
        },
      },
    });
    p.total++;
    c = new UpstreamConn(p, socket);
    c.owner = owner;
    c.user = user;
    return c;
  }

  /** openTls opens a TLS connection: reads come as 'data' events (TLS sockets take no onread buffer). */
  private openTls(p: Pool, user: UpstreamUser, owner: CircuitBreaker | undefined): UpstreamConn {
    const socket = dialTls(p.address, p.port, this.tlsContext(), p.tls!, ["http/1.1"]);
    p.total++;
    const c = new UpstreamConn(p, socket);
    c.owner = owner;
    c.user = user;
    socket.on("data", (chunk: Buffer) => {
      if (c.user) c.user.upData(c, chunk);
      else socket.destroy();
    });
    return c;
  }

  /** put returns a connection whose exchange ended cleanly; it idles for the next request or closes. */
  put(c: UpstreamConn): void {
    c.user = undefined;
    const p = c.pool;
    if (c.closed) return;
    if (p.draining || p.idle.length >= UPSTREAM_IDLE_SOCKETS_MAX || c.socket.destroyed) {
      c.socket.destroy();
      return;
    }
    c.idleSince = this.tick;
    p.idle.push(c);
    wake(p);
  }

  /** retain drains every pool whose key is not live (O(pools): nothing to do without traffic). */
  retain(isLive: (key: string) => boolean): void {
    for (const [key, p] of this.pools) {
      if (isLive(key)) continue;
      this.pools.delete(key);
      p.draining = true;
      closeIdle(p);
    }
  }

  /** size is the number of pools not draining. */
  get size(): number {
    return this.pools.size;
  }

  /** close closes every pool's idle connections and stops the sweeper. */
  close(): void {
    clearInterval(this.sweeper);
    for (const p of this.pools.values()) {
      p.draining = true;
      closeIdle(p);
    }
    this.pools.clear();
  }

  /** sweep closes connections idle for UPSTREAM_IDLE_TIMEOUT_MS, before the instance closes them under a new request. */
  private sweep(): void {
    const t = ++this.tick;
    const limit = Math.ceil(UPSTREAM_IDLE_TIMEOUT_MS / IDLE_SWEEP_MS) - 1;
    for (const p of this.pools.values()) {
      // Oldest first: stop at the first connection still young enough.
      while (p.idle.length > 0 && t - p.idle[0]!.idleSince >= limit) p.idle.shift()!.socket.destroy();
    }
  }
}

function closeIdle(p: Pool): void {
  for (const c of p.idle.splice(0)) c.socket.destroy();
}

/** wake offers a freed or closed connection to the requests pending on the pool, first come first. */
export function wake(p: Pool): void {
  for (let i = 0; i < p.waiters.length; ) {
    if (p.waiters[i]!()) p.waiters.splice(i, 1);
    else i++;
  }
}

