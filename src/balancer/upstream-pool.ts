/**
 * Per-endpoint upstream connection pools: one keep-alive http.Agent per address:port, bounded by
 * UPSTREAM_SOCKETS_MAX, shared by every service that names the address. A pool whose endpoint left
 * every table drains: requests already on it finish, then its sockets close.
 */
import { Agent, type AgentOptions } from "node:http";
import { UPSTREAM_IDLE_SOCKETS_MAX, UPSTREAM_IDLE_TIMEOUT_MS, UPSTREAM_SOCKETS_MAX } from "./limits.js";

/** Pool is one endpoint's connections; active counts the requests using it. */
export interface Pool {
  readonly agent: Agent;
  active: number;
  draining: boolean;
  /**
   * waiters are requests pending for a connection of this endpoint (circuit breaker at
   * maxConnections); each is called when a socket is freed or closed and says whether it went.
   */
  readonly waiters: (() => boolean)[];
}

/** UpstreamPools maps address:port to its pool. */
export class UpstreamPools {
  private readonly pools = new Map<string, Pool>();

  /** acquire returns the pool for key, counting one more request on it; release() must follow. */
  acquire(key: string): Pool {
    let p = this.pools.get(key);
    if (!p || p.draining) {
      p = {
        agent: new Agent({
          keepAlive: true,
          maxSockets: UPSTREAM_SOCKETS_MAX,
          maxFreeSockets: UPSTREAM_IDLE_SOCKETS_MAX,
          timeout: UPSTREAM_IDLE_TIMEOUT_MS,
          scheduling: "lifo",
          // Requests and answers are small writes: Nagle's algorithm would hold them for an ACK.
          noDelay: true,
        } as AgentOptions),
        active: 0,
        draining: false,
        waiters: [],
      };
      const pool = p;
      // The agent's own 'free' listener ran first: the socket is in freeSockets now, unless the
      // agent gave it to a request queued inside it.
      p.agent.on("free", () => wake(pool));
      this.pools.set(key, p);
    }
    p.active++;
    return p;
  }

  /** release ends one request on the pool; a draining pool with none left closes. */
  release(p: Pool): void {
    p.active--;
    if (p.draining && p.active === 0) p.agent.destroy();
  }

  /** retain drains every pool whose key is not in live. */
  retain(live: ReadonlySet<string>): void {
    for (const [key, p] of this.pools) {
      if (live.has(key)) continue;
      this.pools.delete(key);
      p.draining = true;
      if (p.active === 0) p.agent.destroy();
    }
  }

  /** size is the number of pools not draining. */
  get size(): number {
    return this.pools.size;
  }

  /** close destroys every pool. */
  close(): void {
    for (const p of this.pools.values()) p.agent.destroy();
    this.pools.clear();
  }
}

/** wake offers a freed or closed connection to the requests pending on the pool, first come first. */
export function wake(p: Pool): void {
  for (let i = 0; i < p.waiters.length; ) {
    if (p.waiters[i]!()) p.waiters.splice(i, 1);
    else i++;
  }
}
