/**
 * GrpcTransport is the node's peer transport: one PeerClient per peer for sending and one
 * PeerServer for receiving, behind the small surface the host loop needs.
 */
import assert from "node:assert/strict";
import {
  type ChannelOptions,
  type handleUnaryCall,
  Server,
  ServerCredentials,
  type ServiceDefinition,
  status,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { channelCredentials, memberCheck, serverCredentials, type TlsFiles } from "../common/tls.js";
import { type Message, type NodeId, SNAPSHOT_DATA_RELEASED } from "../raft/types.js";
import { TransportClosedError, TransportError, UnknownPeerError } from "./errors.js";
import { KEEPALIVE_TIME_MS, KEEPALIVE_TIMEOUT_MS, PEER_FRAME_BYTES_MAX, resolveLimits, SERVER_SHUTDOWN_GRACE_MS, type TransportLimits } from "./limits.js";
import { hostOf, isLoopbackHost } from "./identity.js";
import { childLogger, STDERR_LOGGER, type TransportLogger } from "./logger.js";
import { PeerClient, type PeerStats } from "./peer-client.js";
import { PeerServer } from "./peer-server.js";
import type { ProbeAnswer } from "./probe.js";
import type { SnapshotReport } from "./snapshot-sender.js";
import { encodeMessage, wireMessageBytes } from "./wire.js";

/**
 * PEER_SERVER_OPTIONS are the gRPC server options peer traffic needs: frames as large as the
 * largest message, and keepalive. A host that passes its own server to register() should use them.
 */
export const PEER_SERVER_OPTIONS: ChannelOptions = {
  "grpc.max_receive_message_length": PEER_FRAME_BYTES_MAX,
  "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
  "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
};

/** GrpcTransportOptions configure a GrpcTransport. */
export interface GrpcTransportOptions {
  readonly clusterId: string;
  readonly selfId: NodeId;
  /** peers maps each other member to its peer address "host:port"; an entry for selfId is ignored. */
  readonly peers: ReadonlyMap<NodeId, string>;
  /** logger is bound by the host to this component and node; STDERR_LOGGER by default. The transport adds a child per side and per peer. */
  readonly logger?: TransportLogger;
  readonly limits?: Partial<TransportLimits>;
  /** random drives reconnect jitter; Math.random by default. */
  readonly random?: () => number;
  /**
   * tls, when given, is mutual TLS on the peer port: the server asks every caller for a certificate
   * of the CA naming the member it claims to be, and each client checks that the peer it dialled
   * presents the certificate of the member it meant. Both follow the files when they change.
   */
  readonly tls?: TlsFiles;
  /**
   * snapshotReadMax is the newest snapshot format this node reads, told to every peer on every call
   * (METADATA_SNAPSHOT_READ_MAX) so that none sends it one it would refuse; unset, nothing is told.
   */
  readonly snapshotReadMax?: number;
}

/** TransportStats are the transport's counters; totals include peers that were removed since. */
export interface TransportStats {
  readonly peers: readonly PeerStats[];
  readonly sent: number;
  readonly dropped: number;
  /** droppedUnknownPeer counts messages addressed to a node that is not in the peer map. */
  readonly droppedUnknownPeer: number;
  readonly reconnects: number;
  readonly received: number;
  /** undelivered counts messages received before onMessage was given a handler. */
  readonly undelivered: number;
  /** refused counts incoming calls refused for identity reasons or because the transport was closing. */
  readonly refused: number;
  /** impossible counts received messages no correct peer sends, dropped with their sender's stream. */
  readonly impossible: number;
  readonly snapshotsReceived: number;
  readonly snapshotsRefused: number;
}

type Totals = { sent: number; dropped: number; reconnects: number };

/** GrpcTransport sends Raft messages to peers and receives theirs over gRPC. */
export class GrpcTransport {
  private readonly clients = new Map<NodeId, PeerClient>();
  private readonly addresses = new Map<NodeId, string>();
  private readonly limits: TransportLimits;
  private readonly logger: TransportLogger;
  private readonly server: PeerServer;
  private ownServer: Server | undefined;
  private registered = false;
  private closed = false;
  private messageHandler: ((m: Message) => string | undefined) | undefined;
  private readonly peerServices: { service: ServiceDefinition; implementation: () => UntypedServiceImplementation | undefined }[] = [];
  private unreachableHandler: ((peer: NodeId) => void) | undefined;
  private disconnectedHandler: ((peer: NodeId) => void) | undefined;
  private snapshotHandler: ((report: SnapshotReport) => void) | undefined;
  private probeHandler: ((from: NodeId, session: string) => ProbeAnswer | undefined) | undefined;
  private retired: Totals = { sent: 0, dropped: 0, reconnects: 0 };
  private droppedUnknownPeer = 0;
  private undelivered = 0;

  constructor(private readonly options: GrpcTransportOptions) {
    this.limits = resolveLimits(options.limits);
    // A host logger arrives already bound to its component and node (binding them again would
    // repeat the keys in every JSON line, which strict parsers reject); the fallback names the node.
    this.logger = options.logger ?? childLogger(STDERR_LOGGER, { node: options.selfId });
    this.server = new PeerServer({
      local: { clusterId: options.clusterId, selfId: options.selfId, isPeer: (id) => this.addresses.has(id), addressOf: (id) => this.addresses.get(id) },
      logger: childLogger(this.logger, { side: "server" }),
      snapshotBytesMax: this.limits.snapshotBytesMax,
      deliver: (m) => this.deliver(m),
      answerProbe: (from, session) => this.probeHandler?.(from, session),
      streamEnded: (peer) => this.noteDisconnected(peer),
      streamOpened: (peer) => this.clients.get(peer)?.peerReachable(),
      requireCertificate: options.tls !== undefined,
    });
    this.setPeers(options.peers);
  }

  /** listen creates a gRPC server for peer traffic on bindAddress ("127.0.0.1:0" picks a port) and returns the bound port. */
  async listen(bindAddress: string): Promise<number> {
    if (this.closed) throw new TransportClosedError();
    const server = new Server(PEER_SERVER_OPTIONS);
    this.register(server);
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const creds = this.options.tls ? serverCredentials(this.options.tls, true) : ServerCredentials.createInsecure();
        server.bindAsync(bindAddress, creds, (error, bound) => (error ? reject(error) : resolve(bound)));
      });
      this.ownServer = server;
      this.logger.info({ bindAddress, port }, "peer server listening");
      this.warnIfPlaintextOffHost(bindAddress);
      return port;
    } catch (error) {
      server.forceShutdown();
      throw new TransportError(`cannot listen for peers on ${bindAddress}`, { cause: error });
    }
  }

  /** register adds the peer service to a server the host owns (create it with PEER_SERVER_OPTIONS); use it or listen(), once. */
  register(server: Server): void {
    assert(!this.registered, "the peer service is already registered");
    this.registered = true;
    this.server.register(server);
    for (const { service, implementation } of this.peerServices) this.registerPeerService(server, service, implementation);
  }

  /**
   * addPeerService serves a node-to-node service on the peer port, behind the caller checks every
   * Raft call passes (PeerServer.checkCaller): calls that only members may make (Internal) live
   * here, never on the client port. Only unary methods. implementation is looked up per call, so
   * the host may build it after the port opens; until then calls are answered UNAVAILABLE. Call
   * it before listen() or register().
   */
  addPeerService(service: ServiceDefinition, implementation: () => UntypedServiceImplementation | undefined): void {
    assert(!this.registered, "peer services must be added before the peer service is registered");
    this.peerServices.push({ service, implementation });
  }

  private registerPeerService(server: Server, service: ServiceDefinition, implementation: () => UntypedServiceImplementation | undefined): void {
    const handlers: UntypedServiceImplementation = {};
    for (const [name, def] of Object.entries(service)) {
      assert(!def.requestStream && !def.responseStream, `peer service method ${name} must be unary`);
      const handler: handleUnaryCall<unknown, unknown> = (call, callback) => {
        if (this.closed) {
          callback({ code: status.UNAVAILABLE, details: "peer transport is closed" });
          return;
        }
        if (!this.server.checkCaller(call, callback, name)) return;
        const impl = implementation()?.[name] as handleUnaryCall<unknown, unknown> | undefined;
        if (!impl) {
          callback({ code: status.UNAVAILABLE, details: `node "${this.options.selfId}" is starting and cannot answer ${name} yet` });
          return;
        }
        impl(call, callback);
      };
      handlers[name] = handler;
    }
    server.addService(service, handlers);
  }

  /**
   * warnIfPlaintextOffHost warns, once at start, when peer traffic may leave this machine in plain
   * text: without TLS a caller's claimed identity can only be checked against its address
   * (identity.ts), which anyone on the network path can spoof. Loopback-only setups stay quiet.
   */
  private warnIfPlaintextOffHost(bindAddress: string): void {
    const offHost = offHostPeerAddresses(bindAddress, [...this.addresses.values()]);
    if (offHost === undefined) return;
    this.logger.warn(
      { bindAddress, offHost },
      "PLAINTEXT PEER PORT ON A NON-LOOPBACK ADDRESS: peer calls are neither encrypted nor authenticated; " +
        "a member's id is checked only against the address it connects from. Use TLS outside a trusted network",
    );
  }

  /**
   * send hands messages to their peers' queues and returns at once. It never blocks and never
   * throws for a network reason: what cannot go is dropped and counted. Snap messages go through
   * InstallSnapshot. A local message type or a wrong `from` is a host bug and asserts.
   */
  send(messages: readonly Message[]): void {
    for (const m of messages) {
      assert(m.from === this.options.selfId, `message from "${m.from}" handed to the transport of "${this.options.selfId}"`);
      if (this.closed) return;
      const client = this.clients.get(m.to);
      if (!client) {
        this.droppedUnknownPeer++;
        this.logger.debug({ to: m.to, type: m.type }, "message to unknown peer dropped");
        continue;
      }
      if (m.snapshot) {
        // Released bytes are the host's to fill from its store (RaftNode.send); sent as they are, they would install an empty state.
        assert(m.snapshot.data !== SNAPSHOT_DATA_RELEASED, `snapshot at ${m.snapshot.meta.index} handed to the transport without its bytes`);
        client.sendSnapshot(m);
      } else client.send(encodeMessage(m), wireMessageBytes(m));
    }
  }

  /**
   * onMessage sets the handler every received message goes to, synchronously and in order per
   * sending peer. It returns why a message is one no correct peer sends (then the sender's stream
   * is closed and the sender logged and counted), or undefined.
   */
  onMessage(handler: (m: Message) => string | undefined): void {
    this.messageHandler = handler;
  }

  /** onUnreachable sets the handler told, never from inside send(), that messages to a peer were lost (core: reportUnreachable). */
  onUnreachable(handler: (peer: NodeId) => void): void {
    this.unreachableHandler = handler;
  }

  /**
   * onPeerDisconnected sets the handler told when a peer's incoming stream ended from its side
   * (closed or reset, as when its process dies; not a timeout) and no other stream from it is open,
   * or when this node's open stream to it broke (UNAVAILABLE), whichever is read first (core:
   * peerDisconnected; a second notice of one failure changes nothing there).
   */
  onPeerDisconnected(handler: (peer: NodeId) => void): void {
    this.disconnectedHandler = handler;
  }

  /** onSnapshot sets the handler told how each snapshot sent ended (core: reportSnapshot). */
  onSnapshot(handler: (report: SnapshotReport) => void): void {
    this.snapshotHandler = handler;
  }

  /** peerSnapshotReadMax is the newest snapshot format peer said it reads (PeerServer.peerSnapshotReadMax): undefined when it said nothing. */
  peerSnapshotReadMax(peer: NodeId): number | undefined {
    return this.server.peerSnapshotReadMax(peer);
  }

  /** peerSnapshotReadMaxLastSaid is what peer said on its latest Raft call, open or ended (PeerServer.peerSnapshotReadMaxLastSaid). */
  peerSnapshotReadMaxLastSaid(peer: NodeId): number | undefined {
    return this.server.peerSnapshotReadMaxLastSaid(peer);
  }

  /** onProbe sets the handler that answers a member's Probe; while it is unset or returns undefined, probes are answered UNAVAILABLE. */
  onProbe(handler: (from: NodeId, session: string) => ProbeAnswer | undefined): void {
    this.probeHandler = handler;
  }

  /** probe asks a peer what it holds (see PeerClient.probe); it rejects at once for a node that is not a peer. */
  probe(peer: NodeId, session: string): Promise<ProbeAnswer> {
    if (this.closed) return Promise.reject(new TransportClosedError());
    const client = this.clients.get(peer);
    if (!client) return Promise.reject(new UnknownPeerError(peer, this.options.selfId, this.options.clusterId));
    return client.probe(session);
  }

  /** setPeers replaces the peer map after a membership change: new peers get a client, removed ones are closed and refused. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    if (this.closed) return;
    for (const [id, client] of this.clients) {
      if (peers.get(id) !== this.addresses.get(id)) this.retire(id, client);
    }
    this.addresses.clear();
    for (const [id, address] of peers) {
      if (id === this.options.selfId) continue;
      this.addresses.set(id, address);
      if (!this.clients.has(id)) this.clients.set(id, this.createClient(id, address));
    }
    this.server.dropUnknownPeers();
  }

  /** stats returns the counters of every peer and of the receiving side. */
  stats(): TransportStats {
    const peers = [...this.clients.values()].map((c) => c.stats());
    const sum = (f: (p: PeerStats) => number, base: number) => peers.reduce((acc, p) => acc + f(p), base);
    const server = this.server.stats();
    return {
      peers,
      sent: sum((p) => p.sent, this.retired.sent),
      dropped: sum((p) => p.dropped, this.retired.dropped),
      droppedUnknownPeer: this.droppedUnknownPeer,
      reconnects: sum((p) => p.reconnects, this.retired.reconnects),
      received: server.received,
      undelivered: this.undelivered,
      refused: server.refused,
      impossible: server.impossible,
      snapshotsReceived: server.snapshotsReceived,
      snapshotsRefused: server.snapshotsRefused,
    };
  }

  /** close stops every client, ends every incoming call and shuts down a server made by listen(); no handler runs after it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [id, client] of this.clients) this.retire(id, client);
    this.server.close();
    const server = this.ownServer;
    this.ownServer = undefined;
    if (server) await shutdown(server);
    this.logger.info({}, "transport closed");
  }

  /** noteDisconnected passes on either side's notice that a peer's connection ended, unless this transport closed itself. */
  private noteDisconnected(peer: NodeId): void {
    if (!this.closed) this.disconnectedHandler?.(peer);
  }

  private createClient(id: NodeId, address: string): PeerClient {
    return new PeerClient({
      identity: { clusterId: this.options.clusterId, nodeId: this.options.selfId, targetId: id, snapshotReadMax: this.options.snapshotReadMax },
      address,
      limits: this.limits,
      logger: childLogger(this.logger, { side: "client", peer: id }),
      random: this.options.random,
      onUnreachable: (peer) => this.unreachableHandler?.(peer),
      onStreamBroke: (peer) => this.noteDisconnected(peer),
      onSnapshot: (report) => this.snapshotHandler?.(report),
      credentials: this.options.tls ? channelCredentials(this.options.tls, memberCheck(id)) : undefined,
    });
  }

  private retire(id: NodeId, client: PeerClient): void {
    const s = client.stats();
    this.retired = { sent: this.retired.sent + s.sent, dropped: this.retired.dropped + s.dropped + s.queued, reconnects: this.retired.reconnects + s.reconnects };
    client.close();
    this.clients.delete(id);
  }

  private deliver(m: Message): string | undefined {
    if (this.closed) return undefined;
    if (this.messageHandler) return this.messageHandler(m);
    this.undelivered++;
    return undefined;
  }
}

/** offHostPeerAddresses lists the non-loopback peer addresses (and the bind address, when it is not loopback), or undefined when peer traffic stays on this machine. */
export function offHostPeerAddresses(bindAddress: string, peerAddresses: readonly string[]): string[] | undefined {
  const offHost = [bindAddress, ...peerAddresses].filter((a) => !isLoopbackHost(hostOf(a)));
  return offHost.length === 0 ? undefined : offHost;
}

/** shutdown lets open calls finish for a short grace period, then forces the server down. */
async function shutdown(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, SERVER_SHUTDOWN_GRACE_MS);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
