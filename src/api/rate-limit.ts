/**
 * Per-client rate limits of the client API: a token bucket per client address for writes, and one
 * for watches, so one client cannot take the leader's write path or a node's watch capacity from the
 * others (RESOURCE_EXHAUSTED, not-applied: the client may retry after a pause). The client is its
 * address: a client id is whatever the caller says. Calls another node forwarded were counted
 * where they entered, so they pass uncounted when they come from a member's address. Heartbeats are not counted: their batching has its own overload bound.
 */
import { Metadata, type ServerInterceptor, ServerInterceptingCall, status as Status } from "@grpc/grpc-js";
import { METADATA_NOT_APPLIED } from "../common/metadata.js";
import { METADATA_FORWARDED } from "./forwarder.js";

/** The default rates are in src/common/limits.ts, where the configuration schema finds them. */
export { CLIENT_WATCH_RATE_DEFAULT, CLIENT_WRITE_RATE_DEFAULT } from "../common/limits.js";
/** RATE_BURST_SECONDS: a bucket holds this many seconds of its rate, so a client that was quiet may send a burst (a reconnect that opens 500 watches at once). */
export const RATE_BURST_SECONDS = 5;
/** RATE_CLIENTS_MAX bounds the buckets kept: past it the least recently seen client's bucket is dropped (it starts full again). */
export const RATE_CLIENTS_MAX = 10_000;

/** WRITE_METHODS are the calls that propose a write. */
export const WRITE_METHODS: ReadonlySet<string> = new Set([
  "/raftmesh.v1.KV/Put",
  "/raftmesh.v1.KV/Delete",
  "/raftmesh.v1.KV/Txn",
  "/raftmesh.v1.Registry/Register",
  "/raftmesh.v1.Registry/Deregister",
  "/raftmesh.v1.Registry/PutService",
  "/raftmesh.v1.Registry/DeleteService",
  "/raftmesh.v1.Registry/SetMaintenance",
  "/raftmesh.v1.Registry/Failover",
]);
/** WATCH_METHODS are the calls that open a watch. */
export const WATCH_METHODS: ReadonlySet<string> = new Set(["/raftmesh.v1.Registry/Watch", "/raftmesh.v1.Events/Watch"]);

/** RateLimits: per second per client address; 0 turns a limit off. */
export interface RateLimits {
  readonly writesPerSecond: number;
  readonly watchesPerSecond: number;
  /**
   * fromMember says whether a caller's address (grpc-js peer) may be a member: only then is a call
   * marked forwarded let through uncounted (it was counted where it entered). Without it, a
   * stranger setting the marker skipped the limit. Absent: every call is counted.
   */
  readonly fromMember?: (peer: string) => boolean;
}

/** Buckets is a token bucket per key, bounded to RATE_CLIENTS_MAX keys (Map order is the LRU order). */
export class Buckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
    private readonly keysMax = RATE_CLIENTS_MAX,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  /** take spends one token of key's bucket; false when it is empty. */
  take(key: string): boolean {
    const t = this.now();
    const burst = this.perSecond * RATE_BURST_SECONDS;
    const b = this.buckets.get(key) ?? { tokens: burst, at: t };
    b.tokens = Math.min(burst, b.tokens + ((t - b.at) / 1000) * this.perSecond);
    b.at = t;
    this.buckets.delete(key);
    this.buckets.set(key, b);
    if (this.buckets.size > this.keysMax) this.buckets.delete(this.buckets.keys().next().value as string);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

/** clientOf is the address part of a grpc-js peer ("ipv4:127.0.0.1:5000", "[::1]:5000", "127.0.0.1:5000"), without the port. */
export function clientOf(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, "");
  const i = p.lastIndexOf(":");
  return i > 0 && /^\d+$/.test(p.slice(i + 1)) ? p.slice(0, i) : p;
}

/** rateLimitInterceptor refuses a write or a watch past its client's rate with RESOURCE_EXHAUSTED naming the limit. */
export function rateLimitInterceptor(limits: RateLimits, now?: () => number): ServerInterceptor {
  const writes = limits.writesPerSecond > 0 ? new Buckets(limits.writesPerSecond, now) : undefined;
  const watches = limits.watchesPerSecond > 0 ? new Buckets(limits.watchesPerSecond, now) : undefined;
  return (descriptor, call) => {
    const path = descriptor.path;
    const buckets = WRITE_METHODS.has(path) ? writes : WATCH_METHODS.has(path) ? watches : undefined;
    if (!buckets) return new ServerInterceptingCall(call);
    const what = buckets === writes ? `writes (limit ${limits.writesPerSecond}/s)` : `watches (limit ${limits.watchesPerSecond}/s)`;
    return new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(md, nextMd) {
            const forwarded = md.get(METADATA_FORWARDED).length > 0 && limits.fromMember?.(call.getPeer()) === true;
            if (forwarded || buckets.take(clientOf(call.getPeer()))) {
              nextMd(md);
              return;
            }
            const trailer = new Metadata();
            trailer.set(METADATA_NOT_APPLIED, "1");
            call.sendStatus({ code: Status.RESOURCE_EXHAUSTED, details: `too many ${what} from ${clientOf(call.getPeer())}; slow down and retry`, metadata: trailer });
          },
        });
      },
    });
  };
}
