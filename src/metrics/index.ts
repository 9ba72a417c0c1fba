/**
 * The metrics module's public face: NodeMetrics is one node's Prometheus registry (never the
 * prom-client global: tests run several nodes in one process), with the process's default metrics
 * (event-loop lag, GC, memory) and the series of the parts it follows. Each part is followed
 * through what it already reports (node.events, the registry's feed, the balancer's shared
 * counters) or through one wrapper the composition root puts in place (store, sink, writer, the
 * API server's interceptor); nothing below the agent knows metrics exist.
 */
import { collectDefaultMetrics, Counter as PromCounter, Gauge as PromGauge, Registry } from "prom-client";
import type { ServerInterceptor } from "@grpc/grpc-js";
import type { RegistryWriter } from "../registry/writer.js";
import { apiInterceptor } from "./api.js";
import { type BalancerStatsSource, balancerCollector } from "./balancer.js";
import { RaftMetrics, type RaftSource } from "./raft.js";
import { RegistryMetrics, type RegistrySource } from "./registry.js";

export { OTHER_SERVICE, REGISTRY_SERVICE_SERIES_MAX } from "./limits.js";
export type { BalancerStatsSource, RaftSource, RegistrySource };

/** NodeInfo labels raftmesh_node_info. */
export interface NodeInfo {
  readonly node: string;
  readonly cluster: string;
  readonly version: string;
}

/** NodeMetrics is one node's metrics registry and the wrappers that feed it. */
export class NodeMetrics {
  /** registry holds this node's series only. */
  readonly registry = new Registry();
  /** raft times the store, sink and writer and follows the node (RaftMetrics). */
  readonly raft: RaftMetrics;

  constructor(info: NodeInfo) {
    collectDefaultMetrics({ register: this.registry });
    const g = new PromGauge({ name: "raftmesh_node_info", help: "Always 1; its labels name the node, its cluster and its version.", labelNames: ["node", "cluster", "version"], registers: [this.registry] });
    g.set({ node: info.node, cluster: info.cluster, version: info.version }, 1);
    this.raft = new RaftMetrics(this.registry);
  }

  /** followNode registers the Raft series read from the node and subscribes to its events. */
  followNode(node: RaftSource): void {
    this.raft.follow(node);
  }

  /** followRegistry registers the registry series and subscribes to its feed. */
  followRegistry(src: RegistrySource): void {
    new RegistryMetrics(this.registry, src);
  }

  /** followBalancer registers the balancing endpoint's series, merged from its workers' counters. */
  followBalancer(src: BalancerStatsSource): void {
    balancerCollector(this.registry, src);
  }

  /**
   * followTls reports the node's certificate: seconds until it expires (read at each scrape, so a
   * renewed certificate shows at once) and how often the files were taken again.
   */
  followTls(files: { readonly material: { readonly notAfterMs?: number }; readonly reloads: number }): void {
    new PromGauge({
      name: "raftmesh_tls_cert_expiry_seconds",
      help: "Seconds until this node's TLS certificate expires (negative once expired).",
      registers: [this.registry],
      collect() {
        const notAfter = files.material.notAfterMs;
        if (notAfter !== undefined) this.set((notAfter - Date.now()) / 1000);
      },
    });
    new PromGauge({
      name: "raftmesh_tls_reloads",
      help: "Times this node took changed TLS files into use since it started.",
      registers: [this.registry],
      collect() {
        this.set(files.reloads);
      },
    });
  }

  /**
   * authFailures registers raftmesh_api_auth_failures_total and returns what counts one refusal:
   * code is UNAUTHENTICATED or PERMISSION_DENIED, method the gRPC path (or "admin GET /status" for
   * the admin port). Both label sets are bounded: the methods are the API's, the paths the admin's.
   */
  authFailures(): (code: string, method: string) => void {
    const c = new PromCounter({
      name: "raftmesh_api_auth_failures_total",
      help: "Calls refused by access control, by status code (UNAUTHENTICATED, PERMISSION_DENIED) and method.",
      labelNames: ["code", "method"],
      registers: [this.registry],
    });
    return (code, method) => c.inc({ code, method });
  }

  /** connectionsRefused registers raftmesh_api_connections_refused_total and returns what counts one. */
  connectionsRefused(): () => void {
    const c = new PromCounter({
      name: "raftmesh_api_connections_refused_total",
      help: "Client API connections closed as they were accepted because the node held its bound of connections (--api-connections-max) already.",
      registers: [this.registry],
    });
    return () => c.inc();
  }

  /** apiInterceptor is the gRPC server interceptor that counts and times client API calls. */
  apiInterceptor(): ServerInterceptor {
    return apiInterceptor(this.registry);
  }

  /** writer wraps the registry's write path to count proposals and time them to their result. */
  writer(inner: RegistryWriter): RegistryWriter {
    return {
      write: async (cmd, session, deadline) => {
        const t0 = performance.now();
        try {
          const res = await inner.write(cmd, session, deadline);
          this.raft.proposed(true, (performance.now() - t0) / 1000);
          return res;
        } catch (err) {
          this.raft.proposed(false, (performance.now() - t0) / 1000);
          throw err;
        }
      },
    };
  }

  /** contentType is the Prometheus text format's content type. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** text is every series in the Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** names lists the metric families registered (for tests and the dashboard check). */
  names(): string[] {
    return this.registry.getMetricsAsArray().map((m) => m.name);
  }
}
