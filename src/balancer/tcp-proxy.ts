/**
 * A TCP upstream listener: each connection is piped to an instance of its service (master-slave:
 * the master of the newest epoch), trying the next instance while the connect fails. Connections
 * to a master that lost its place are cut at once (cutMaster), so a client cannot keep writing
 * to a demoted master.
 *
 * On a table update (prune): connections to an instance that turned critical are cut in every
 * mode (Envoy closes a host's pooled connections when it turns unhealthy; a byte stream gains
 * nothing from staying on a failing instance). Connections to an instance removed from the
 * service are cut in master-slave mode (a deregistered master must not keep taking writes) but
 * drain in active-active mode: an instance that deregisters before it exits (rolling restart)
 * closes its own connections when done, and Envoy keeps them as well by default
 * (close_connections_on_host_set_change is off unless set).
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { WorkerSignal } from "./messages.js";
import type { Endpoint } from "./types.js";
import { CLIENT_CONNECTIONS_MAX, RETRIES_MAX, TCP_CONNECT_TIMEOUT_MS, TCP_READ_BUFFER_BYTES } from "./limits.js";
import type { Route, RouteTable } from "./route-table.js";

/** TcpListener proxies one upstream's connections. */
export class TcpListener {
  readonly server: Server;
  /** open connections by endpoint id, so a demoted master's can be cut. */
  private readonly open = new Map<string, Set<Socket>>();

  constructor(
    private readonly routes: RouteTable,
    readonly service: string,
    /** signal hears open circuits and ejections (the worker throttles them: never one per connection). */
    private readonly signal?: (s: WorkerSignal) => void,
  ) {
    this.server = createServer({ pauseOnConnect: true, noDelay: true }, (c) => this.accept(c));
    this.server.maxConnections = CLIENT_CONNECTIONS_MAX;
  }

  /** cutMaster destroys every connection to the endpoint that was the service's master. */
  cutMaster(id: string): void {
    const set = this.open.get(id);
    if (!set) return;
    for (const s of set) s.destroy();
    this.open.delete(id);
  }

  /** prune cuts connections to instances that turned critical, or (master-slave) left the service. */
  prune(): void {
    const route = this.routes.get(this.service);
    for (const [id, set] of this.open) {
      const ep = route?.table.endpoints.find((e) => e.id === id);
      const cut = ep ? ep.health === "critical" : route === undefined || route.mode === "master-slave";
      if (!cut) continue;
      for (const s of set) s.destroy();
      this.open.delete(id);
    }
  }

  /** cutAll destroys every proxied connection (stop). */
  cutAll(): void {
    for (const set of this.open.values()) for (const s of set) s.destroy();
    this.open.clear();
  }

  private accept(client: Socket): void {
    client.on("error", () => client.destroy());
    this.tryConnect(client, new Set(), 0);
  }

  /** ended tells the balancer a connection to ep ended; an ejection it causes is signalled. */
  private ended(route: Route | undefined, ep: Endpoint, ok: boolean): void {
    if (route?.balancer.onEnd(ep.id, ok ? "success" : "failure", performance.now())) this.signal?.({ kind: "outlier-ejected", service: this.service, instance: ep.id });
  }

  private pick(tried: ReadonlySet<string>): Endpoint | undefined {
    const route = this.routes.get(this.service);
    if (!route) return undefined;
    if (route.mode === "master-slave") return route.master;
    return route.balancer.pick({ exclude: tried }, performance.now());
  }

  private tryConnect(client: Socket, tried: Set<string>, n: number): void {
    if (client.destroyed) return;
    const ep = this.pick(tried);
    if (!ep) {
      client.destroy();
      return;
    }
    tried.add(ep.id);
    const route = this.routes.get(this.service);
    // Each upstream connection counts against the service's maxConnections (shared with the HTTP
    // proxies' new connections, across workers). At the limit the client is closed at once: a byte
    // stream has no status to answer with, and a log line per refusal would let a flood fill the log.
    const breaker = route?.breaker;
    if (breaker && !breaker.tryOpenConnection()) {
      this.signal?.({ kind: "circuit-open", service: this.service, limit: "connections" });
      client.destroy();
      return;
    }
    route?.balancer.onStart(ep.id);
    // Upstream bytes are read into one buffer per connection and written to the client from the
    // read callback (net's onread): no Buffer allocated and no stream machinery run per chunk.
    // The buffer is lent to a write the kernel did not take at once, and then replaced.
    let buf = Buffer.allocUnsafe(TCP_READ_BUFFER_BYTES);
    const up = connect({
      host: ep.address,
      port: ep.port,
      noDelay: true,
      onread: {
        buffer: () => buf,
        callback: (n: number, b: Buffer): boolean => {
          const ok = client.write(n === b.length ? b : b.subarray(0, n));
          if (client.writableLength > 0) buf = Buffer.allocUnsafe(TCP_READ_BUFFER_BYTES);
          return ok;
        },
      },
    });
    // Released when this socket closes, whether its connect failed or the connection ran.
    if (breaker) up.once("close", () => breaker.onConnectionClosed());
    up.setTimeout(TCP_CONNECT_TIMEOUT_MS, () => up.destroy(new Error("connect timeout")));
    const onConnectError = () => {
      this.ended(route, ep, false);
      if (n < Math.min(route?.table.config.retries ?? 0, RETRIES_MAX)) this.tryConnect(client, tried, n + 1);
      else client.destroy();
    };
    up.once("error", onConnectError);
    up.once("connect", () => {
      up.setTimeout(0);
      up.off("error", onConnectError);
      let set = this.open.get(ep.id);
      if (!set) this.open.set(ep.id, (set = new Set()));
      set.add(up);
      let ended = false;
      const end = (ok: boolean) => {
        if (ended) return;
        ended = true;
        set.delete(up);
        this.ended(route, ep, ok);
      };
      up.on("error", () => {
        end(false);
        client.destroy();
      });
      // An upstream that closed cleanly has its last bytes queued to the client: end, not destroy.
      up.once("end", () => client.end());
      up.once("close", (hadError: boolean) => {
        end(!hadError);
        if (hadError) client.destroy();
        else client.end();
      });
      client.once("close", () => up.destroy());
      client.once("end", () => up.end());
      // Client bytes go to the upstream from 'data' (no pipe() layer); backpressure both ways.
      client.on("data", (c: Buffer) => {
        if (!up.write(c)) client.pause();
      });
      up.on("drain", () => client.resume());
      client.on("drain", () => up.resume());
      client.resume();
    });
  }
}
