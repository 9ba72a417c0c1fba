import { join } from "node:path";
import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import { performance } from "node:perf_hooks";
import { clusterService } from "../api/cluster-service.js";
import { Forwarder } from "../api/forwarder.js";
import { type Balancer, startBalancer } from "../balancer/index.js";
import { type AddressBook, LeaderRoute } from "../api/leader-route.js";
import { WRITE_WAIT_MS_MAX } from "../api/limits.js";
import { kvService } from "../api/kv-service.js";
import type { ReadIndexer } from "../api/read-barrier.js";
import { failoverService } from "../api/failover-service.js";
import { forwardHeartbeats, internalService, registryService } from "../api/registry-service.js";
import { ApiServer } from "../api/server.js";
import { rateLimitInterceptor } from "../api/rate-limit.js";
import { aclService } from "../api/acl-service.js";
import { authInterceptor } from "../api/auth.js";
import { adminAuthorizer, startConfigBootstrap } from "./acl.js";
import { childLogger, type Logger } from "../common/logger.js";
import type { HeartbeatRequestMsg, RenewResultMsg } from "../common/messages.js";
import { clientApi } from "../common/proto.js";
import { packageVersion } from "../common/version.js";
import type { AgentConfig } from "../config/index.js";
import { ClusterStateMachine, type MemberAddress } from "../node/cluster-state-machine.js";
import { RaftNode } from "../node/raft-node.js";
import { type NodeId, nodeId, type PersistedState, Role } from "../raft/index.js";
import { ClusterClock } from "../registry/cluster-clock.js";
import type { RegistryFeed } from "../registry/events.js";
import { HeartbeatBatcher } from "../registry/heartbeat-batcher.js";
import { LeaseDriver } from "../registry/lease-driver.js";
import type { RegistryStateMachine } from "../registry/state-machine.js";
import { REGISTRY_SNAPSHOT_VERSION, SNAPSHOT_READ_MAX_UNSAID } from "../registry/state-machine-snapshot.js";
import { type ClusterNow, ProposingWriter, type RegistryWriter } from "../registry/writer.js";
import { RaftmeshClient } from "../client/index.js";
import { LocalAgent } from "../local/index.js";
import { Supervisor } from "../local/supervisor.js";
import { NodeMetrics } from "../metrics/index.js";
import { LogStore } from "../storage/index.js";
import { GrpcTransport, identityMetadata, mayBeMember } from "../transport/index.js";
import { releaseBuffers } from "../common/release-buffers.js";
import { AdminHttp } from "./admin-http.js";
import { WallClock } from "./clock.js";
import { Founding } from "./founding.js";
import { initialState, type StartMode } from "./initial-state.js";
import { buildRegistry } from "./local-registry.js";
import { Monitoring } from "./monitoring.js";
import { nodeStatus } from "./status.js";
import { statusPageRoutes } from "./status-page.js";
import { loadBalancerTls, loadNodeTls, type NodeTls, warnPlaintext, watchCertificateExpiry } from "./tls.js";
import { eventsService } from "../events/service.js";
import { anyUnsafe, EarlyAckWriter, readUnsafeSwitches, staleReadIndexer, type UnsafeSwitches, unconfirmedLeadership, fastLeaseClock } from "./unsafe.js";

/** BoundPorts are the ports the agent's servers listen on (useful when the configuration asked for port 0). */
export interface BoundPorts {
  readonly peer: number;
  readonly api: number;
  readonly admin: number;
}

/**
 * Agent is one raftmesh node process: storage, peer transport, the Raft host loop, the client API
 * and the admin endpoint, started in that order and stopped in reverse.
 */
export class Agent {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly config: AgentConfig,
    readonly mode: StartMode,
    readonly ports: BoundPorts,
    readonly node: RaftNode,
    private readonly parts: {
      store: LogStore;
      transport: GrpcTransport;
      api: ApiServer;
      admin: AdminHttp;
      forwarder: Forwarder;
      leases: LeaseDriver;
      batcher: HeartbeatBatcher<HeartbeatRequestMsg, RenewResultMsg>;
      balancer: Balancer;
      monitoring: Monitoring;
      local: { agent: LocalAgent; client: RaftmeshClient } | undefined;
      tls: NodeTls | undefined;
      stopAclBootstrap: () => void;
      balancerTls: ReturnType<typeof loadBalancerTls>;
      unwatchExpiry: () => void;
    },
    private readonly logger: Logger,
  ) {}

  /**
   * start brings the node up. onFatal hears of a failure that stopped the node (storage failure,
   * broken invariant): the process should log it and exit non-zero so a supervisor restarts it.
   */
  static async start(config: AgentConfig, logger: Logger, onFatal: (err: Error) => void): Promise<Agent> {
    const id = nodeId(config.nodeId);
    const dir = join(config.dataDir, config.nodeId);
    const { store, state: loaded } = await LogStore.open(dir, { clusterId: config.clusterId, nodeId: id, logger: childLogger(logger, { component: "storage" }) });
    let transport: GrpcTransport | undefined;
    let tls: NodeTls | undefined;
    let balancerTls: ReturnType<typeof loadBalancerTls> | undefined;
    let unwatchExpiry: (() => void) | undefined;
    // started: what runs once Raft has started, so a failed start (a balancer port taken) stops it again.
    let started: { node: RaftNode; leases: LeaseDriver; monitoring: Monitoring; api: ApiServer; admin: AdminHttp } | undefined;
    try {
      const unsafe = readUnsafe(logger);
      tls = loadNodeTls(config, childLogger(logger, { component: "tls" }));
      warnPlaintext(config, logger);
      const peers = new PeerAddresses(config, id);
      transport = buildTransport(config, id, peers, logger, tls);
      // The peer port opens before the node decides how it starts: an empty node asks the other
      // members whether the cluster exists yet, and they ask it (src/agent/founding.ts).
      const founding = buildFounding(config, id, transport, logger);
      // Internal (followers' heartbeat batches) is for members only: on the peer port, never the client port.
      let internal: UntypedServiceImplementation | undefined;
      transport.addPeerService(clientApi().Internal.service, () => internal);
      const peerPort = await transport.listen(config.peerListen);
      const { state, mode } = await initialState(store, loaded, { bootstrap: config.bootstrap, members: config.members.map((m) => m.id), founding });
      const metrics = config.metrics ? new NodeMetrics({ node: config.nodeId, cluster: config.clusterId, version: packageVersion() }) : undefined;
      const registry = buildRegistry();
      const cluster = buildCluster(registry.machine, transport, peers);
      const node = buildNode(config, { id, store, state, cluster, transport, logger, onFatal, metrics });
      metrics?.followNode(node);
      if (metrics && tls) metrics.followTls(tls.files);
      metrics?.followRegistry(registry);
      founding.follow(() => node.status());
      const addressOf: AddressBook = (mid) => cluster.address(mid) ?? peers.configured(mid);
      const clusterTime = buildClusterTime(node, registry.machine);
      const unmetered = buildWriter(node, clusterTime, unsafe);
      const writer = metrics ? metrics.writer(unmetered) : unmetered;
      const leases = buildLeases({ node }, registry, { writer, clusterTime }, unsafe, logger);
      const forwarder = new Forwarder(tls?.members);
      const batcher = new HeartbeatBatcher<HeartbeatRequestMsg, RenewResultMsg>({ send: forwardHeartbeats(node, addressOf, forwarder, (leader) => identityMetadata({ clusterId: config.clusterId, nodeId: id, targetId: nodeId(leader) })), schedule: timerSchedule });
      const status = () => nodeStatus({ node, clusterId: config.clusterId, version: packageVersion(), addressOf });
      const route = new LeaderRoute(node, addressOf, forwarder);
      // Monitoring follows the node and the registry before the node starts, so entries applied again at start-up are reported too.
      const monitoring = new Monitoring({ config, node, feed: registry.feed, registry: registry.machine, status, addressOf, replayedThrough: state.hardState.commit, logger, apiCredentials: tls?.members, apiToken: config.acl ? config.aclAgentToken || config.aclBootstrapToken : "" });
      const reads: ReadIndexer = unsafe.staleReads ? staleReadIndexer : node;
      const authRefused = config.acl ? metrics?.authFailures() : undefined;
      const auth = config.acl ? [authInterceptor({ tokens: registry.machine, onRefused: authRefused })] : [];
      // The rate limiter and the connection bound let members' addresses past them alike (grpc peers "ipv4:host:port" and sockets' "host:port").
      const fromMember = (remote: string) => mayBeMember(remote, memberAddresses(cluster, peers));
      const api = new ApiServer({
        kv: kvService({ registry: registry.machine, writer, route, reads }),
        cluster: clusterService({ node, members: cluster, addressOf, route, status }),
        registry: {
          ...registryService({ registry: registry.machine, writer, route, reads, hub: registry.hub, node, leases, batcher }),
          ...failoverService({ route, writer, leases }),
        },
        events: eventsService(monitoring.journal),
        acl: aclService({ enabled: config.acl, registry: registry.machine, writer, route }),
      }, [...(metrics ? [metrics.apiInterceptor()] : []), ...auth, rateLimitInterceptor({ writesPerSecond: config.clientWriteRate, watchesPerSecond: config.clientWatchRate, fromMember })], {
        connectionsMax: config.apiConnectionsMax,
        isMember: fromMember,
        onRefused: connectionRefusals(logger, config.apiConnectionsMax, metrics?.connectionsRefused()),
      });
      internal = internalService({ node, leases });
      node.events.on("leader", (e) => api.setServing(e.leader !== ""));
      node.events.on("leader", () => route.leaderChanged());
      const apiPort = await api.listen(config.apiListen, tls?.api);
      if (!api.connectionsBounded) logger.error({ connectionsMax: config.apiConnectionsMax }, "the client API cannot reach its listeners with this grpc-js version: serving without the connection bound, and closed calls' streams keep their listeners");
      const local = buildLocal(config, dir, apiPort, logger, tls);
      // Set once the balancing endpoint listens (below); /readyz waits for it.
      let endpoint: Balancer | undefined;
      const admin = new AdminHttp({
        status: () => ({ ...status() }),
        running: () => node.running(),
        notServing: () => (endpoint ? endpoint.notListening() : "balancing endpoint not listening yet"),
        clock: unsafe.clockControl ? new WallClock() : undefined,
        routes: statusPageRoutes(monitoring),
        metrics,
        local: local?.agent,
        tls: tls ? { files: tls.files, clientAuth: tls.clientAuth } : undefined,
        authorize: config.acl ? adminAuthorizer(registry.machine, authRefused) : undefined,
      });
      const adminPort = await admin.listen(config.adminListen);
      // Raft starts before the balancer's worker threads: spawning them took 2-3 s on a loaded
      // machine (each loads the balancer's modules), and a restarted member that waits for them
      // before it ticks delays the cluster's next election by as much. The feed lists the
      // registry in full when it starts, so entries applied meanwhile are not missed.
      node.start();
      leases.start();
      monitoring.start();
      started = { node, leases, monitoring, api, admin };
      balancerTls = loadBalancerTls(config, tls, childLogger(logger, { component: "balancer" }));
      const expiring = [...(tls ? [{ name: "node", files: tls.files }] : []), ...balancerTls.own];
      unwatchExpiry = watchCertificateExpiry(expiring, childLogger(logger, { component: "tls" }), (w) =>
        monitoring.journal.record({ kind: "tls-cert-expiring", message: `${w.name} certificate ${w.file} expires at ${new Date(w.notAfterMs).toISOString()}`, details: { certificate: w.name, file: w.file, notAfter: new Date(w.notAfterMs).toISOString() } }),
      ).stop;
      const balancer = await startBalancer({ ...config, tls: balancerTls.files }, { registry: registry.machine, hub: registry.hub }, childLogger(logger, { component: "balancer" }), (s) => monitoring.signal(s));
      endpoint = balancer;
      if (metrics && balancer.stats) metrics.followBalancer(balancer.stats);
      monitoring.balancer = { listen: config.balancerListen, workers: config.balancerWorkers, ports: Object.fromEntries(balancer.ports), tcpUpstreams: config.tcpUpstreams };
      await local?.agent.start();
      // Last, so no failed start leaves its timer behind.
      const stopAclBootstrap = config.acl && config.aclBootstrapToken ? startConfigBootstrap({ secret: config.aclBootstrapToken, node, registry: registry.machine, writer, logger: childLogger(logger, { component: "acl" }) }) : () => undefined;
      const ports = { peer: peerPort, api: apiPort, admin: adminPort };
      logger.info({ mode, dir, ports, members: config.members.map((m) => m.id), version: packageVersion() }, startMessage(mode));
      return new Agent(config, mode, ports, node, { store, transport, api, admin, forwarder, leases, batcher, balancer, monitoring, local, tls, stopAclBootstrap, balancerTls, unwatchExpiry }, logger);
    } catch (err) {
      if (started) {
        started.monitoring.stop();
        started.leases.stop();
        await started.api.close();
        await started.node.stop();
        await started.admin.close();
      }
      unwatchExpiry?.();
      balancerTls?.close();
      tls?.files.close();
      await transport?.close();
      await store.close();
      throw err;
    }
  }

  /** reloadServices reads the services directory again (SIGHUP); a node without one has nothing to reload. */
  reloadServices(): Promise<unknown> {
    return this.parts.local?.agent.reload() ?? Promise.resolve(undefined);
  }

  /** stop shuts the agent down in reverse order: client API, Raft loop, transport, storage, admin. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { api, transport, store, admin, forwarder, leases, batcher, balancer, monitoring, local, tls, stopAclBootstrap, balancerTls, unwatchExpiry } = this.parts;
      stopAclBootstrap();
      await local?.agent.stop();
      local?.client.close();
      monitoring.stop();
      await balancer.stop();
      await api.close();
      leases.stop();
      batcher.close();
      await this.node.stop();
      forwarder.close();
      await transport.close();
      await store.close();
      await admin.close();
      unwatchExpiry?.();
      balancerTls?.close();
      tls?.files.close();
      this.logger.info({}, "agent stopped");
    })();
    return this.stopping;
  }
}

/**
 * buildLocal builds the local agent when the node has a services directory. It reaches this node's
 * client API on loopback through the client SDK, exactly as an external instance would, so a
 * local instance's registration and heartbeats take the one path every other instance takes.
 */
function buildLocal(config: AgentConfig, dir: string, apiPort: number, logger: Logger, tls: NodeTls | undefined): { agent: LocalAgent; client: RaftmeshClient } | undefined {
  if (config.servicesDir === "") return undefined;
  const host = config.apiListen.slice(0, config.apiListen.lastIndexOf(":")).replace(/^\[|\]$/g, "");
  const loopback = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  // With TLS the local agent is a client like any other: it presents this node's certificate.
  // With access control on it sends the configured agent token, as an application would send its own.
  if (config.acl && !config.aclAgentToken) logger.warn({}, "access control is on and aclAgentToken is not set: the local agent's registrations and heartbeats will be refused");
  const client = new RaftmeshClient([`${loopback}:${apiPort}`], { tls: tls?.paths, token: config.aclAgentToken || undefined });
  const agent = new LocalAgent({ servicesDir: config.servicesDir, logDir: join(dir, "logs"), client, logger, supervise: (name, spec) => new Supervisor(name, spec) });
  return { agent, client };
}

/** readUnsafe reads the negative-control switches and warns when any is on. */
function readUnsafe(logger: Logger): UnsafeSwitches {
  const unsafe = readUnsafeSwitches(process.env);
  if (anyUnsafe(unsafe)) logger.warn({ unsafe }, "UNSAFE test switches are on: this node breaks its guarantees on purpose");
  return unsafe;
}

/** memberAddresses are every member's peer and API addresses, recorded in the log or configured: where a forwarding member calls from. */
function* memberAddresses(cluster: ClusterStateMachine, peers: PeerAddresses): Iterable<string> {
  for (const a of cluster.allAddresses().values()) yield* [a.peer, a.api];
  for (const a of peers.allConfigured()) yield* [a.peer, a.api];
}

/** PeerAddresses are the peers to dial: the configured members, overridden by addresses recorded in the log, minus removed members. */
class PeerAddresses {
  private readonly configuredAddresses: ReadonlyMap<string, { peer: string; api: string }>;

  constructor(
    config: AgentConfig,
    private readonly self: NodeId,
  ) {
    this.configuredAddresses = new Map(config.members.map((m) => [m.id, { peer: m.peer, api: m.api }]));
  }

  /** configured is a member's addresses from this node's configuration. */
  configured(id: string): { peer: string; api: string } | undefined {
    return this.configuredAddresses.get(id);
  }

  /** allConfigured are the configured members' addresses, peer and API. */
  allConfigured(): Iterable<{ peer: string; api: string }> {
    return this.configuredAddresses.values();
  }

  /** peers is the map to dial, given the addresses recorded in the log and which members were removed. */
  peers(recorded: ReadonlyMap<string, MemberAddress>, isRemoved: (id: NodeId) => boolean): Map<NodeId, string> {
    const out = new Map<NodeId, string>();
    for (const [mid, a] of this.configuredAddresses) out.set(nodeId(mid), a.peer);
    for (const [mid, a] of recorded) out.set(nodeId(mid), a.peer);
    for (const mid of out.keys()) if (isRemoved(mid)) out.delete(mid);
    out.delete(this.self);
    return out;
  }
}

function buildTransport(config: AgentConfig, id: NodeId, peers: PeerAddresses, logger: Logger, tls: NodeTls | undefined): GrpcTransport {
  return new GrpcTransport({
    tls: tls?.files,
    clusterId: config.clusterId,
    selfId: id,
    peers: peers.peers(new Map(), () => false),
    logger: childLogger(logger, { component: "transport" }),
    // Told on every peer call, so no member sends this node a snapshot it would refuse.
    snapshotReadMax: REGISTRY_SNAPSHOT_VERSION,
  });
}

function buildFounding(config: AgentConfig, id: NodeId, transport: GrpcTransport, logger: Logger): Founding {
  const founding = new Founding({
    selfId: id,
    peers: config.members.map((m) => nodeId(m.id)).filter((mid) => mid !== id),
    probe: (peer, session) => transport.probe(peer, session),
    logger: childLogger(logger, { component: "founding" }),
  });
  transport.onProbe(() => founding.answer());
  return founding;
}

/** buildCluster is the node's state machine: the membership records, around the registry; recorded addresses update the transport's peers. */
function buildCluster(registry: RegistryStateMachine, transport: GrpcTransport, peers: PeerAddresses): ClusterStateMachine {
  const cluster: ClusterStateMachine = new ClusterStateMachine(registry, (recorded) => transport.setPeers(peers.peers(recorded, (mid) => cluster.isRemoved(mid))));
  return cluster;
}

function buildNode(
  config: AgentConfig,
  p: { id: NodeId; store: LogStore; state: PersistedState; cluster: ClusterStateMachine; transport: GrpcTransport; logger: Logger; onFatal: (err: Error) => void; metrics?: NodeMetrics },
): RaftNode {
  const timed = p.metrics?.raft;
  const node = new RaftNode({
    id: p.id,
    tickMs: config.tickMs,
    electionTicks: config.electionTicks,
    heartbeatTicks: config.heartbeatTicks,
    store: timed ? timed.store(p.store) : p.store,
    state: p.state,
    machine: p.cluster,
    sink: timed ? timed.sink(p.transport) : p.transport,
    logger: childLogger(p.logger, { component: "raft" }),
    snapshotEveryEntries: config.snapshotEntries,
    pendingReadsMax: config.pendingReadsMax,
    // The durable store writes the chunks to a file and keeps none: free them once written.
    releaseSnapshotChunks: (chunks) => void releaseBuffers(chunks),
    // A member that has not said what it reads (an older build) or has no Raft stream open to this
    // node is taken to read what builds read before they said: format 4. A rolling upgrade keeps going.
    peerSnapshotReadMax: (peer) => p.transport.peerSnapshotReadMax(peer) ?? SNAPSHOT_READ_MAX_UNSAID,
    // A member that is down or reconnecting keeps what it said last: snapshots taken meanwhile stay in
    // the newer format, and it is sent one once it has said again what it reads.
    peerSnapshotReadMaxLastSaid: (peer) => p.transport.peerSnapshotReadMaxLastSaid(peer) ?? SNAPSHOT_READ_MAX_UNSAID,
  });
  node.events.on("failure", (e) => p.onFatal(e.error));
  p.transport.onMessage(
    timed
      ? (m) => {
          timed.received(m);
          const impossible = node.step(m);
          if (impossible) timed.impossible(impossible.from, impossible.type);
          return impossible?.reason;
        }
      : (m) => node.step(m)?.reason,
  );
  // A leader's stream that ends (its process died, its connection reset) lets a follower campaign
  // early instead of waiting out the election timeout; pre-vote keeps a mere reset harmless.
  p.transport.onPeerDisconnected((peer) => node.peerDisconnected(peer));
  return node;
}

/** buildClusterTime is the time commands are stamped with: the cluster time, counted by this node's monotonic clock while it leads (cluster-clock.ts). */
function buildClusterTime(node: RaftNode, registry: RegistryStateMachine): ClusterNow {
  const clock = new ClusterClock({ source: registry, monoMs: () => performance.now() });
  return { now: () => clock.now(node.term()) };
}

/** buildWriter is the registry's write path on this node; the early-ack control swaps in a writer that acknowledges before a quorum has the entry. */
function buildWriter(node: RaftNode, clusterTime: ClusterNow, unsafe: UnsafeSwitches): RegistryWriter {
  if (unsafe.earlyAck) return new EarlyAckWriter(node, clusterTime);
  return new ProposingWriter(node, clusterTime);
}

/**
 * buildLeases is the lease driver, following the registry's changes and this node's role; its
 * health changes go through the same write path as every other write. Heartbeats are acknowledged
 * once a quorum confirmed this node still leads (see LeaseDriver), except under the
 * unconfirmed-lease-ack control.
 */
function buildLeases(
  { node }: { node: RaftNode },
  registry: { machine: RegistryStateMachine; feed: RegistryFeed },
  write: { writer: RegistryWriter; clusterTime: ClusterNow },
  unsafe: UnsafeSwitches,
  logger: Logger,
): LeaseDriver {
  const { machine, feed } = registry;
  const { writer, clusterTime } = write;
  const leases = new LeaseDriver({
    clusterNow: () => clusterTime.now(),
    registry: machine,
    propose: (cmd) => writer.write(cmd, undefined, new Date(Date.now() + WRITE_WAIT_MS_MAX)),
    logger: childLogger(logger, { component: "leases" }),
    leadership: unsafe.unconfirmedLeaseAck ? unconfirmedLeadership(node) : node,
    ...(unsafe.fastLeaseClock ? { monoMs: fastLeaseClock(() => performance.now()) } : {}),
  });
  feed.on("changes", (events) => leases.onEvents(events));
  feed.on("reset", () => leases.onReset());
  node.events.on("role", (e) => leases.onRole(e.role === Role.Leader));
  return leases;
}

/** timerSchedule runs fn after ms on a real timer (the batcher's ScheduleFn). */
function timerSchedule(fn: () => void, ms: number): () => void {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
}

function startMessage(mode: StartMode): string {
  switch (mode) {
    case "bootstrap":
      return "agent started: founded a new cluster with the configured members";
    case "join":
      return "agent started with an empty data directory and bootstrap off: waiting for the leader to add this node (raftmesh members add)";
    default:
      return "agent started from its data directory";
  }
}

/** CONNECTION_REFUSED_LOG_MS: refusals at the connection bound are logged at most once per this long, so a flood of them cannot flood the log. */
const CONNECTION_REFUSED_LOG_MS = 10_000;

/** connectionRefusals counts each client API connection refused at the bound (--api-connections-max) and logs them, rate-limited. */
function connectionRefusals(logger: Logger, connectionsMax: number, count: (() => void) | undefined): () => void {
  let since = 0;
  let loggedAt = Number.NEGATIVE_INFINITY;
  return () => {
    count?.();
    since++;
    const now = performance.now();
    if (now - loggedAt < CONNECTION_REFUSED_LOG_MS) return;
    loggedAt = now;
    logger.warn({ refused: since, connectionsMax }, "client API connections refused: the node holds its bound of connections");
    since = 0;
  };
}
