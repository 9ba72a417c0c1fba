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
import type { Endpoint } from "./types.js";
import { CLIENT_CONNECTIONS_MAX, RETRIES_MAX, TCP_CONNECT_TIMEOUT_MS } from "./limits.js";
import type { RouteTable } from "./route-table.js";

/** TcpListener proxies one upstream's connections. */
export class TcpListener {
  readonly server: Server;
  /** open connections by endpoint id, so a demoted master's can be cut. */
  private readonly open = new Map<string, Set<Socket>>();

  constructor(
    private readonly routes: RouteTable,
    readonly service: string,
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
    route?.balancer.onStart(ep.id);
    const up = connect({ host: ep.address, port: ep.port, noDelay: true });
    up.setTimeout(TCP_CONNECT_TIMEOUT_MS, () => up.destroy(new Error("connect timeout")));
    const onConnectError = () => {
      route?.balancer.onEnd(ep.id, "failure", performance.now());
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
        route?.balancer.onEnd(ep.id, ok ? "success" : "failure", performance.now());
      };
      up.on("error", () => {
        end(false);
        client.destroy();
      });
      up.once("close", () => {
        end(true);
        client.destroy();
      });
      client.once("close", () => up.destroy());
      client.pipe(up);
      up.pipe(client);
      client.resume();
    });
  }
}
