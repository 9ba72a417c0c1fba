import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { nodeStatus } from "../api/cluster-service.js";
import type { ApiContext } from "../api/context.js";
import { NoLeaderError } from "../api/errors.js";
import { Forwarder } from "../api/forwarder.js";
import { WRITE_WAIT_MS_MAX } from "../api/limits.js";
import type { HeartbeatRequestMsg, RenewResultMsg } from "../common/messages.js";
import { proposeCommand } from "../api/registry-write.js";
import { heartbeatDeadline } from "../api/registry-service.js";
import { ApiServer } from "../api/server.js";
import { eventBytes } from "../api/watch-stream.js";
import { packageVersion } from "../common/version.js";
import type { AgentConfig } from "../config/index.js";
import { ClusterStateMachine, type MemberAddress } from "../node/cluster-state-machine.js";
import { RaftNode } from "../node/raft-node.js";
import { type NodeId, nodeId, Role } from "../raft/index.js";
import { ClusterClock, type ClusterTimeSource } from "../registry/cluster-clock.js";
import { HeartbeatBatcher } from "../registry/heartbeat-batcher.js";
import { RegistryStateMachine } from "../registry/state-machine.js";
import { WatchHub } from "../registry/watch-hub.js";
import { LogStore } from "../storage/index.js";
import { GrpcTransport } from "../transport/index.js";
import { AdminHttp } from "./admin-http.js";
import { Founding } from "./founding.js";
import { initialState, type StartMode } from "./initial-state.js";
import { WallClock } from "./clock.js";
import { LeaseDriver } from "./lease-driver.js";
import { anyUnsafe, readUnsafeSwitches, unconfirmedLeadership } from "./unsafe.js";

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
    const { store, state: loaded } = await LogStore.open(dir, {
      clusterId: config.clusterId,
      nodeId: id,
      logger: logger.child({ component: "storage" }),
    });
    let opened: GrpcTransport | undefined;
    try {
      const configured = new Map(config.members.map((m) => [m.id, { peer: m.peer, api: m.api }]));
      // Peers: the configured members, overridden by addresses recorded in the log, minus removed members.
      let cluster: ClusterStateMachine | undefined;
      const peersOf = (recorded: ReadonlyMap<string, MemberAddress>): Map<NodeId, string> => {
        const out = new Map<NodeId, string>();
        for (const [mid, a] of configured) out.set(nodeId(mid), a.peer);
        for (const [mid, a] of recorded) out.set(nodeId(mid), a.peer);
        for (const mid of out.keys()) if (cluster?.isRemoved(mid)) out.delete(mid);
        out.delete(id);
        return out;
      };
      const transport = new GrpcTransport({
        clusterId: config.clusterId,
        selfId: id,
        peers: peersOf(new Map()),
        logger: logger.child({ component: "transport" }),
      });
      // The peer port opens before the node decides how it starts: an empty node asks the other
      // members whether the cluster exists yet, and they ask it (src/agent/founding.ts).
      opened = transport;
      const founding = new Founding({
        selfId: id,
        peers: config.members.map((m) => nodeId(m.id)).filter((mid) => mid !== id),
        probe: (peer, session) => transport.probe(peer, session),
        logger: logger.child({ component: "founding" }),
      });
      transport.onProbe(() => founding.answer());
      const peerPort = await transport.listen(config.peerListen);
      const { state, mode } = await initialState(store, loaded, {
        bootstrap: config.bootstrap,
        members: config.members.map((m) => m.id),
        founding,
      });
      // The registry, with the watch hub and the lease driver following every applied change.
      let ctx: ApiContext | undefined;
      const hub = new WatchHub(
        {
          eventsSince: (i, max) => registry.eventsSince(i, max),
          get applied() {
            return registry.applied;
          },
        },
        {},
        eventBytes,
      );
      const clock = new WallClock();
      const unsafe = readUnsafeSwitches(process.env);
      if (anyUnsafe(unsafe)) logger.warn({ unsafe }, "UNSAFE test switches are on: this node breaks its guarantees on purpose");
      // Commands are stamped with cluster time, counted by this node's monotonic clock while it leads.
      const clusterClock = new ClusterClock({ source: registryTime(() => registry), monoMs: () => performance.now() });
      const clusterTime = { now: () => clusterClock.now(node.status().term) };
      const leases = new LeaseDriver({
        clusterNow: () => clusterTime.now(),
        registry: { allInstances: () => registry.allInstances(), instance: (s, i) => registry.instance(s, i) },
        propose: (cmd) => proposeCommand(ctx as ApiContext, cmd, undefined, new Date(Date.now() + WRITE_WAIT_MS_MAX)),
        logger: logger.child({ component: "leases" }),
        // Heartbeats are acknowledged once a quorum confirmed this node still leads (see LeaseDriver).
        leadership: unsafe.unconfirmedLeaseAck
          ? unconfirmedLeadership({ isLeader: () => node.isLeader() })
          : { isLeader: () => node.isLeader(), readIndex: (ms) => node.readIndex(ms) },
      });
      const registry = new RegistryStateMachine({
        onEvents: (events) => {
          leases.onEvents(events);
          hub.publish(events);
        },
        onReset: (index) => {
          hub.reset(index);
          leases.onReset();
        },
      });
      cluster = new ClusterStateMachine(registry, (recorded) => transport.setPeers(peersOf(recorded)));
      let api: ApiServer | undefined;
      const node = new RaftNode({
        id,
        tickMs: config.tickMs,
        electionTicks: config.electionTicks,
        heartbeatTicks: config.heartbeatTicks,
        store,
        state,
        machine: cluster,
        sink: transport,
        logger: logger.child({ component: "raft" }),
        snapshotEveryEntries: config.snapshotEntries,
        pendingReadsMax: config.pendingReadsMax,
      });
      node.events.on("failure", (e) => onFatal(e.error));
      node.events.on("role", (e) => leases.onRole(e.role === Role.Leader));
      node.events.on("leader", (e) => api?.setServing(e.leader !== ""));
      transport.onMessage((m) => node.step(m));
      founding.follow(() => node.status());
      const forwarder = new Forwarder();
      const addressOf = (mid: string) => cluster?.address(mid) ?? configured.get(mid);
      const batcher = new HeartbeatBatcher<HeartbeatRequestMsg, RenewResultMsg>({
        send: async (items) => {
          const leader = node.leader();
          const leaderApi = leader ? addressOf(leader)?.api : undefined;
          if (!leaderApi) throw new NoLeaderError("no leader is known; heartbeats were not recorded");
          const res = await forwarder.forward<{ items: readonly HeartbeatRequestMsg[] }, { results: RenewResultMsg[] }>(
            leaderApi,
            "Internal",
            "RenewLeases",
            { items },
            heartbeatDeadline(),
          );
          return res.results;
        },
        schedule: (fn, ms) => {
          const t = setTimeout(fn, ms);
          return () => clearTimeout(t);
        },
      });
      ctx = {
        clusterTime,
        unsafe,
        nodeId: config.nodeId,
        clusterId: config.clusterId,
        version: packageVersion(),
        node,
        cluster,
        registry,
        leases,
        hub,
        batcher,
        forwarder,
        addressOf,
      };
      api = new ApiServer(ctx);
      const admin = new AdminHttp({
        status: () => ({ ...nodeStatus(ctx as ApiContext) }),
        running: () => node.running(),
        clock: unsafe.clockControl ? clock : undefined,
      });
      const apiPort = await api.listen(config.apiListen);
      const adminPort = await admin.listen(config.adminListen);
      node.start();
      leases.start();
      const ports = { peer: peerPort, api: apiPort, admin: adminPort };
      logger.info({ mode, dir, ports, members: config.members.map((m) => m.id), version: ctx.version }, startMessage(mode));
      return new Agent(config, mode, ports, node, { store, transport, api, admin, forwarder, leases, batcher }, logger);
    } catch (err) {
      await opened?.close();
      await store.close();
      throw err;
    }
  }

  /** stop shuts the agent down in reverse order: client API, Raft loop, transport, storage, admin. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { api, transport, store, admin, forwarder, leases, batcher } = this.parts;
      await api.close();
      leases.stop();
      batcher.close();
      await this.node.stop();
      forwarder.close();
      await transport.close();
      await store.close();
      await admin.close();
      this.logger.info({}, "agent stopped");
    })();
    return this.stopping;
  }
}

/** registryTime reads the applied cluster time of a registry made later (the registry's hooks need the driver first). */
function registryTime(registry: () => RegistryStateMachine): ClusterTimeSource {
  return {
    get clusterTime() {
      return registry().clusterTime;
    },
    get appliedTerm() {
      return registry().appliedTerm;
    },
  };
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
