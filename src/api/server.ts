import { Server, ServerCredentials, type ServerInterceptor, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { Server as NetServer, type Socket } from "node:net";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import {
  API_CONNECTION_IDLE_MS,
  API_CONNECTIONS_MAX,
  API_MEMBER_CONNECTIONS_RESERVED,
  API_KEEPALIVE_TIME_MS,
  API_KEEPALIVE_TIMEOUT_MS,
  API_MESSAGE_BYTES_MAX,
  API_RESPONSE_BYTES_MAX,
  API_STREAMS_PER_CONNECTION_MAX,
} from "./limits.js";
import { clientApi, clientPackageDefinition } from "../common/proto.js";
import { releaseOnClose } from "../common/stream-release.js";
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
 * how many connections the server holds at once (limits.ts): connectionsMax in all, and
 * memberReserve more from addresses isMember says may be a member's. onRefused hears each
 * connection closed at the bound.
 */
export interface ConnectionLimits {
  readonly keepaliveMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly idleMs: number;
  readonly connectionsMax: number;
  readonly memberReserve: number;
  readonly isMember?: (remote: string) => boolean;
  readonly onRefused?: () => void;
}

const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  keepaliveMs: API_KEEPALIVE_TIME_MS,
  keepaliveTimeoutMs: API_KEEPALIVE_TIMEOUT_MS,
  idleMs: API_CONNECTION_IDLE_MS,
  connectionsMax: API_CONNECTIONS_MAX,
  memberReserve: API_MEMBER_CONNECTIONS_RESERVED,
};

/**
 * ApiServer is the client API gRPC server of one node: KV, Cluster, Registry and Events. Internal
 * (node-to-node) is deliberately not here: it is served on the peer port, to members only.
 */
export class ApiServer {
  private readonly server: Server;

  private readonly health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((s) => [s, "NOT_SERVING"])));

  private readonly limits: ConnectionLimits;

  /** connectionsBounded says whether listen() could bound the connections of its listening sockets (boundConnections). */
  connectionsBounded = false;
  /** open is how many connections the server's listeners hold now (admit). */
  private open = 0;
  private readonly bounded = new Set<NetServer>();

  /** interceptors see every call (the node's metrics count and time them there); connection overrides the connection limits (tests). */
  constructor(services: ApiServices, interceptors: readonly ServerInterceptor[] = [], connection: Partial<ConnectionLimits> = {}) {
    const limits = { ...DEFAULT_CONNECTION_LIMITS, ...connection };
    // net.Server treats a maxConnections of 0 as no bound at all.
    if (!Number.isInteger(limits.connectionsMax) || limits.connectionsMax < 1) throw new RangeError(`connectionsMax must be a positive integer, got ${limits.connectionsMax}`);
    if (!Number.isInteger(limits.memberReserve) || limits.memberReserve < 0) throw new RangeError(`memberReserve must be a non-negative integer, got ${limits.memberReserve}`);
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
        this.connectionsBounded = this.boundConnections();
        resolve(port);
      });
    });
  }

  /**
   * boundConnections bounds the connections of every listening socket the server bound and says
   * whether it could. grpc-js has no option for it, so this reaches its listeners (its
   * http2Servers map; each an http2 server, a net.Server underneath). Two bounds:
   * - the hard one, connectionsMax + memberReserve per listener: net.Server's maxConnections closes
   *   a connection past it as it is accepted, before any socket or session is built ("drop");
   * - connectionsMax over all listeners for addresses that cannot be a member's (admit).
   * A grpc-js release that moved the listeners (the lock file pins the one tested,
   * test/unit/api/connections-max.test.ts) leaves the server unbounded rather than unable to start:
   * the node logs that at error level.
   * Each listener also lets a call's stream drop its listeners once it closed (stream-release.ts:
   * otherwise a finished call's objects outlive young-generation collections).
   */
  private boundConnections(): boolean {
    const listeners = (this.server as unknown as { http2Servers?: unknown }).http2Servers;
    if (!(listeners instanceof Map) || listeners.size === 0) return false;
    if (![...listeners.keys()].every((l) => l instanceof NetServer)) return false;
    for (const listener of listeners.keys() as IterableIterator<NetServer>) {
      if (this.bounded.has(listener)) continue;
      this.bounded.add(listener);
      listener.maxConnections = this.limits.connectionsMax + this.limits.memberReserve;
      listener.on("drop", () => this.limits.onRefused?.());
      // Before the server's own listener, which builds the HTTP/2 (or TLS) session on the socket.
      listener.prependListener("connection", (socket: Socket) => this.admit(socket));
      listener.on("stream", releaseOnClose);
    }
    return true;
  }

  /**
   * admit counts a connection and closes it when the server holds connectionsMax already and its
   * address cannot be a member's. It is closed on the next turn, not here: the server's own
   * connection listener runs after this one and expects a live socket (a session on a closed one
   * ends at once, as if the client had hung up).
   */
  private admit(socket: Socket): void {
    this.open++;
    socket.once("close", () => this.open--);
    if (this.open <= this.limits.connectionsMax) return;
    const host = socket.remoteAddress ?? "";
    const remote = host.includes(":") ? `[${host}]:${socket.remotePort}` : `${host}:${socket.remotePort}`;
    if (this.limits.isMember?.(remote) === true) return;
    this.limits.onRefused?.();
    setImmediate(() => socket.destroy());
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
