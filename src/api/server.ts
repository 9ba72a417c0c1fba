import { Server, ServerCredentials, type ServerInterceptor, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { Server as NetServer } from "node:net";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import {
  API_CONNECTION_IDLE_MS,
  API_CONNECTIONS_MAX,
  API_KEEPALIVE_TIME_MS,
  API_KEEPALIVE_TIMEOUT_MS,
  API_MESSAGE_BYTES_MAX,
  API_RESPONSE_BYTES_MAX,
  API_STREAMS_PER_CONNECTION_MAX,
} from "./limits.js";
import { clientApi, clientPackageDefinition } from "../common/proto.js";
import { watchServiceDefinition } from "./watch-stream.js";
import { checkedService, wireInterceptor } from "./wire-check.js";

/** HEALTH_SERVICES are the names grpc.health.v1 answers for: "" is the whole server. */
const HEALTH_SERVICES = ["", "raftmesh.v1.Registry", "raftmesh.v1.KV", "raftmesh.v1.Cluster"];

/** API_SHUTDOWN_GRACE_MS: calls in flight get this long to finish before the API server is forced down. */
export const API_SHUTDOWN_GRACE_MS = 2_000;

/** ApiServices are the implementations the client API server serves (kv-service.ts, cluster-service.ts, registry-service.ts). */
export interface ApiServices {
  readonly kv: UntypedServiceImplementation;
  readonly cluster: UntypedServiceImplementation;
  readonly registry: UntypedServiceImplementation;
  /** events serves raftmesh.v1.Events (the node's event stream), when given. */
  readonly events?: UntypedServiceImplementation;
  /** acl serves raftmesh.v1.Acl (access tokens), when given. */
  readonly acl?: UntypedServiceImplementation;
}

/**
 * ConnectionLimits bound how long a connection lives without answering pings or without calls, and
 * how many connections the server holds at once (limits.ts); onRefused hears each connection
 * closed at that bound.
 */
export interface ConnectionLimits {
  readonly keepaliveMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly idleMs: number;
  readonly connectionsMax: number;
  readonly onRefused?: () => void;
}

const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  keepaliveMs: API_KEEPALIVE_TIME_MS,
  keepaliveTimeoutMs: API_KEEPALIVE_TIMEOUT_MS,
  idleMs: API_CONNECTION_IDLE_MS,
  connectionsMax: API_CONNECTIONS_MAX,
};

/**
 * ApiServer is the client API gRPC server of one node: KV, Cluster, Registry and Events. Internal
 * (node-to-node) is deliberately not here: it is served on the peer port, to members only.
 */
export class ApiServer {
  private readonly server: Server;

  private readonly health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((s) => [s, "NOT_SERVING"])));

  private readonly limits: ConnectionLimits;

  /** interceptors see every call (the node's metrics count and time them there); connection overrides the connection limits (tests). */
  constructor(services: ApiServices, interceptors: readonly ServerInterceptor[] = [], connection: Partial<ConnectionLimits> = {}) {
    const limits = { ...DEFAULT_CONNECTION_LIMITS, ...connection };
    this.limits = limits;
    this.server = new Server({
      "grpc.max_receive_message_length": API_MESSAGE_BYTES_MAX,
      "grpc.max_send_message_length": API_RESPONSE_BYTES_MAX,
      // Dead and stalled connections are found by pings and closed (limits.ts says why).
      "grpc.keepalive_time_ms": limits.keepaliveMs,
      "grpc.keepalive_timeout_ms": limits.keepaliveTimeoutMs,
      "grpc.max_connection_idle_ms": limits.idleMs,
      // Nothing reads channelz here, and its per-call bookkeeping showed in the leader's profile.
      "grpc.enable_channelz": 0,
      // A connection's calls beyond this wait in the client (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS):
      // HEADERS frames are not flow-controlled, so without it one socket read could start thousands
      // of calls in one event-loop turn and starve the Raft heartbeats (limits.ts).
      "grpc.max_concurrent_streams": API_STREAMS_PER_CONNECTION_MAX,
      // The wire check answers malformed requests inside the others, so metrics count them too.
      interceptors: [...interceptors, wireInterceptor],
    });
    const api = clientApi();
    // Every request's bytes are checked before they are decoded (wire-check.ts).
    const checked = (def: Parameters<typeof checkedService>[0]) => checkedService(def, clientPackageDefinition());
    this.server.addService(checked(api.KV.service), services.kv);
    this.server.addService(checked(api.Cluster.service), services.cluster);
    this.server.addService(checked(watchServiceDefinition(api.Registry.service)), services.registry);
    if (services.events) this.server.addService(checked(api.Events.service), services.events);
    if (services.acl) this.server.addService(checked(api.Acl.service), services.acl);
    // grpc.health.v1 and server reflection, so grpcurl and standard health probes work.
    this.health.addToServer(this.server);
    new ReflectionService(clientPackageDefinition()).addToServer(this.server);
  }

  /** setServing reports SERVING (a leader is known) or NOT_SERVING through grpc.health.v1. */
  setServing(serving: boolean): void {
    for (const s of HEALTH_SERVICES) this.health.setStatus(s, serving ? "SERVING" : "NOT_SERVING");
  }

  /** listen binds "host:port" (port 0 picks one) and returns the bound port; plaintext unless credentials are given. */
  listen(address: string, credentials: ServerCredentials = ServerCredentials.createInsecure()): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, credentials, (err, port) => {
        if (err) return reject(err);
        try {
          this.boundConnections();
          resolve(port);
        } catch (e) {
          this.server.forceShutdown();
          reject(e);
        }
      });
    });
  }

  /**
   * boundConnections sets connectionsMax on every listening socket the server bound. grpc-js has no
   * option for it, so this reaches its listeners (its http2Servers map; each an http2 server, a
   * net.Server underneath, whose maxConnections closes a connection past the bound as it is
   * accepted and emits "drop"). Binding fails loudly if a grpc-js release renamed the map, rather
   * than serving unbounded (test/unit/api/connections-max.test.ts).
   */
  private boundConnections(): void {
    const listeners = (this.server as unknown as { http2Servers?: unknown }).http2Servers;
    if (!(listeners instanceof Map) || listeners.size === 0) {
      throw new Error("the client API server cannot bound its connections: grpc-js's listeners are not where this build expects them");
    }
    for (const listener of listeners.keys()) {
      if (!(listener instanceof NetServer)) throw new Error("the client API server cannot bound its connections: a grpc-js listener is not a net.Server");
      if (listener.maxConnections === this.limits.connectionsMax) continue;
      listener.maxConnections = this.limits.connectionsMax;
      listener.on("drop", () => this.limits.onRefused?.());
    }
  }

  /** close stops accepting calls, waits up to the grace period for calls in flight, then forces the rest. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, API_SHUTDOWN_GRACE_MS);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
