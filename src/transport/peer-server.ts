/**
 * PeerServer is the receiving side of the transport: the RaftPeer service, registered on a gRPC
 * server the host owns (so peer traffic may share a port), checking every caller's identity and
 * handing each message to Raft in arrival order.
 */
import { type Server, type ServerReadableStream, type ServerUnaryCall, type sendUnaryData, Metadata, status } from "@grpc/grpc-js";
import type { Message, NodeId } from "../raft/types.js";
import { ImpossiblePeerMessageError, SnapshotBusyError, statusOf, TransportClosedError, TransportError, UnknownPeerError, WireFormatError } from "./errors.js";
import { type CallIdentity, checkIdentity, type LocalIdentity, type PeerCall, readIdentity, verifyPeerIdentity } from "./identity.js";
import type { TransportLogger } from "./logger.js";
import { encodeProbeAnswer, type ProbeAnswer, type WireProbeRequest, type WireProbeResponse } from "./probe.js";
import { peerMethods } from "./proto.js";
import { SnapshotAssembler } from "./snapshot-chunks.js";
import { decodeMessage, type WireAck, type WireEnvelope, type WireMessage, type WireSnapshotChunk } from "./wire.js";

/** PeerServerOptions configure a PeerServer. */
export interface PeerServerOptions {
  readonly local: LocalIdentity;
  readonly logger: TransportLogger;
  /** snapshotBytesMax bounds the data one incoming snapshot may announce. */
  readonly snapshotBytesMax: number;
  /**
   * deliver is called synchronously, in arrival order per stream, with each checked message. It
   * returns why the message is one no correct peer sends (the message was dropped; the stream is
   * then ended and the sender logged), or undefined. It must not throw.
   */
  readonly deliver: (m: Message) => string | undefined;
  /** answerProbe answers a member's Probe (undefined: this host does not answer yet). It must not throw. */
  readonly answerProbe: (from: NodeId, session: string) => ProbeAnswer | undefined;
  /**
   * streamEnded is told when the last open Stream call from a peer ended from the peer's side:
   * closed, reset or cancelled (its process died or its connection broke), never a timeout and
   * never a call this server ended itself. It must not throw.
   */
  readonly streamEnded?: (peer: NodeId) => void;
  /**
   * streamOpened is told when a peer's Stream call was accepted: the peer is up and counts this
   * node among its members. It must not throw.
   */
  readonly streamOpened?: (peer: NodeId) => void;
  /** requireCertificate: with TLS on, a caller's certificate must name the member it claims to be. */
  readonly requireCertificate?: boolean;
}

/** PeerServerStats counts what the receiving side saw since it started. */
export interface PeerServerStats {
  readonly received: number;
  readonly refused: number;
  /** impossible counts messages dropped, with their stream, because no correct peer sends them. */
  readonly impossible: number;
  readonly snapshotsReceived: number;
  readonly snapshotsRefused: number;
  readonly streamsOpen: number;
}

/** OpenCall is one accepted call; end() answers it once, with an error or with success. */
interface OpenCall {
  readonly peer: NodeId;
  readonly kind: "stream" | "snapshot";
  end(error?: TransportError): void;
}

type Call<T> = ServerReadableStream<T, WireAck>;

/** PeerServer serves RaftPeer.Stream and RaftPeer.InstallSnapshot. */
export class PeerServer {
  private readonly open = new Set<OpenCall>();
  private readonly snapshotsFrom = new Set<NodeId>();
  /**
   * lastSaid is the newest snapshot format each peer said it reads on its latest accepted Raft call
   * (stream or snapshot) since this process started, kept after the call ended: no entry when it
   * said nothing on that call (a build before the claim). Other peer-port calls (probes, forwarded
   * lease renewals) neither set nor clear it.
   */
  private readonly lastSaid = new Map<NodeId, number>();
  private closed = false;
  private received = 0;
  private refused = 0;
  private impossible = 0;
  private snapshotsReceived = 0;
  private snapshotsRefused = 0;
  private readonly refusalLog = new RefusalLog();

  constructor(private readonly options: PeerServerOptions) {}

  /** register adds the RaftPeer service to server; call it once, before the server binds. */
  register(server: Server): void {
    const { service } = peerMethods();
    server.addService(service, {
      Stream: (call: Call<WireEnvelope>, callback: sendUnaryData<WireAck>) => this.handleStream(call, callback),
      InstallSnapshot: (call: Call<WireSnapshotChunk>, callback: sendUnaryData<WireAck>) => this.handleSnapshot(call, callback),
      Probe: (call: ServerUnaryCall<WireProbeRequest, WireProbeResponse>, callback: sendUnaryData<WireProbeResponse>) =>
        this.handleProbe(call, callback),
    });
  }

  /**
   * peerSnapshotReadMax is the newest snapshot format peer said it reads on its latest Raft call,
   * while it has one open to this node; undefined when it said nothing (a build before the claim)
   * or has no Raft call open (down, restarting, perhaps on another build).
   */
  peerSnapshotReadMax(peer: NodeId): number | undefined {
    for (const call of this.open) if (call.peer === peer) return this.lastSaid.get(peer);
    return undefined;
  }

  /**
   * peerSnapshotReadMaxLastSaid is what peer said it reads on its latest accepted Raft call, open or
   * ended (undefined: it said nothing on that call, or has made none since this process started).
   */
  peerSnapshotReadMaxLastSaid(peer: NodeId): number | undefined {
    return this.lastSaid.get(peer);
  }

  /** dropUnknownPeers ends the calls of senders that are no longer peers, after a membership change. */
  dropUnknownPeers(): void {
    for (const call of [...this.open]) {
      if (!this.options.local.isPeer(call.peer)) {
        call.end(new UnknownPeerError(call.peer, this.options.local.selfId, this.options.local.clusterId));
      }
    }
  }

  /** close ends every open call with UNAVAILABLE and refuses new ones; no message is delivered after it returns. */
  close(): void {
    this.closed = true;
    for (const call of [...this.open]) call.end(new TransportClosedError());
  }

  /** stats returns the counters of the receiving side. */
  stats(): PeerServerStats {
    const { received, refused, impossible, snapshotsReceived, snapshotsRefused } = this;
    return { received, refused, impossible, snapshotsReceived, snapshotsRefused, streamsOpen: this.open.size };
  }

  private handleStream(call: Call<WireEnvelope>, callback: sendUnaryData<WireAck>): void {
    const open = this.admit(call, callback, "stream");
    if (!open) return;
    // Headers go out at once: the sender treats them as "accepted" and only then starts writing.
    call.sendMetadata(new Metadata());
    this.options.streamOpened?.(open.peer);
    call.on("data", (envelope: WireEnvelope) => {
      for (const wire of envelope.messages) {
        if (!this.open.has(open)) return;
        const m = this.decode(open, wire);
        if (!m) return;
        this.received++;
        const impossible = this.options.deliver(m);
        if (impossible !== undefined) {
          this.dropImpossible(open, call, m, impossible);
          return;
        }
      }
    });
    call.on("end", () => {
      const wasOpen = this.open.has(open);
      open.end();
      if (wasOpen) this.noteStreamEnded(open.peer);
    });
  }

  /** noteStreamEnded reports a peer whose stream ended from its side, unless another stream from it is still open. */
  private noteStreamEnded(peer: NodeId): void {
    if (this.closed) return;
    for (const other of this.open) if (other.peer === peer && other.kind === "stream") return;
    this.options.streamEnded?.(peer);
  }

  /** dropImpossible ends the stream of a peer that sent a message no correct peer sends, naming the peer in the log. */
  private dropImpossible(open: OpenCall, call: PeerCall, m: Message, reason: string): void {
    this.impossible++;
    const error = new ImpossiblePeerMessageError(open.peer, reason);
    const fields = { err: error, peer: open.peer, address: call.getPeer(), type: m.type, term: m.term, clusterId: this.options.local.clusterId };
    if (this.refusalLog.shouldLog(`impossible ${open.peer} ${m.type}`)) this.options.logger.error(fields, "impossible peer message dropped; stream closed");
    else this.options.logger.debug(fields, "impossible peer message dropped; stream closed");
    open.end(error);
  }

  private handleSnapshot(call: Call<WireSnapshotChunk>, callback: sendUnaryData<WireAck>): void {
    const open = this.admit(call, callback, "snapshot");
    if (!open) return;
    if (this.snapshotsFrom.has(open.peer)) {
      this.snapshotsRefused++;
      open.end(new SnapshotBusyError(open.peer));
      return;
    }
    this.snapshotsFrom.add(open.peer);
    const assembler = new SnapshotAssembler(this.options.snapshotBytesMax);
    const refuse = (error: unknown) => {
      if (!(error instanceof TransportError)) throw error;
      this.snapshotsRefused++;
      this.options.logger.warn({ err: error, peer: open.peer }, "snapshot refused");
      open.end(error);
    };
    call.on("data", (chunk: WireSnapshotChunk) => {
      if (!this.open.has(open)) return;
      try {
        assembler.add(chunk);
      } catch (error) {
        refuse(error);
      }
    });
    call.on("end", () => {
      if (!this.open.has(open)) return;
      let m: Message;
      try {
        const { header, data } = assembler.finish();
        m = this.checkRoute(open.peer, decodeMessage(header, data));
      } catch (error) {
        refuse(error);
        return;
      }
      this.snapshotsReceived++;
      this.options.logger.info({ peer: open.peer, index: m.snapshot?.meta.index, bytes: m.snapshot?.data.length }, "snapshot received");
      const impossible = this.options.deliver(m);
      if (impossible !== undefined) this.dropImpossible(open, call, m, impossible);
      else open.end();
    });
  }

  /** handleProbe answers a member's Probe after the same identity check as every other call; it never reaches Raft. */
  private handleProbe(call: ServerUnaryCall<WireProbeRequest, WireProbeResponse>, callback: sendUnaryData<WireProbeResponse>): void {
    if (this.closed) {
      const closed = new TransportClosedError();
      callback({ code: statusOf(closed), details: closed.message });
      return;
    }
    const identity = this.checkCaller(call, callback, "probe");
    if (!identity) return;
    const answer = this.options.answerProbe(identity.nodeId, call.request.session);
    if (answer === undefined) {
      callback({ code: status.UNAVAILABLE, details: `node "${this.options.local.selfId}" is starting and cannot answer yet` });
      return;
    }
    callback(null, encodeProbeAnswer(answer));
  }

  /** admit checks the caller's identity; it answers and returns undefined when the call is refused. */
  private admit<T>(call: Call<T>, callback: sendUnaryData<WireAck>, kind: "stream" | "snapshot"): OpenCall | undefined {
    if (this.closed) {
      // Refusing calls while closing is expected, not a misconfiguration: it is not logged as one.
      this.refused++;
      const closed = new TransportClosedError();
      callback({ code: statusOf(closed), details: closed.message });
      return undefined;
    }
    const identity = this.checkCaller(call, callback, kind);
    return identity ? this.track(call, callback, kind, identity) : undefined;
  }

  /**
   * checkCaller checks who a peer-port call comes from: identity metadata, cluster, membership and
   * target (checkIdentity), then that the connection comes from that member (verifyPeerIdentity).
   * It answers a refused call itself and returns undefined. Every service on the peer port uses it.
   */
  checkCaller<R>(call: PeerCall & { readonly metadata: Metadata }, callback: sendUnaryData<R>, kind: string): CallIdentity | undefined {
    const identity = readIdentity(call.metadata);
    if (identity instanceof TransportError) return this.refuse(call, callback, kind, identity, {});
    const refusal = checkIdentity(identity, this.options.local) ?? verifyPeerIdentity(call, identity.nodeId, this.options.local, this.options.requireCertificate === true);
    if (!refusal) return identity;
    const remote = { remoteClusterId: identity.clusterId, remoteNodeId: identity.nodeId, targetId: identity.targetId };
    return this.refuse(call, callback, kind, refusal, remote);
  }

  /** refuse logs a refusal (as an error once per reason and interval, else as debug) and answers the call with it. */
  private refuse<R>(call: PeerCall, callback: sendUnaryData<R>, kind: string, error: TransportError, remote: object): undefined {
    this.refused++;
    const fields = { err: error, kind, address: call.getPeer(), clusterId: this.options.local.clusterId, ...remote };
    if (this.refusalLog.shouldLog(error.message)) this.options.logger.error(fields, "refused peer call");
    else this.options.logger.debug(fields, "refused peer call");
    callback({ code: statusOf(error), details: error.message });
    return undefined;
  }

  private track<T>(call: Call<T>, callback: sendUnaryData<WireAck>, kind: "stream" | "snapshot", identity: CallIdentity): OpenCall {
    const logger = this.options.logger;
    const open: OpenCall = {
      peer: identity.nodeId,
      kind,
      end: (error) => {
        if (!this.open.delete(open)) return;
        if (kind === "snapshot") this.snapshotsFrom.delete(open.peer);
        logger.debug({ peer: open.peer, kind, err: error }, "peer call ended");
        callback(error ? { code: statusOf(error), details: error.message } : null, error ? null : {});
      },
    };
    this.open.add(open);
    // The latest Raft call speaks for the peer's current build: one restarted on an older build says nothing.
    if (identity.snapshotReadMax === undefined) this.lastSaid.delete(open.peer);
    else this.lastSaid.set(open.peer, identity.snapshotReadMax);
    logger.debug({ peer: open.peer, kind, address: call.getPeer() }, "peer call accepted");
    // A cancelled or broken call needs no answer, only forgetting.
    const forget = () => {
      if (!this.open.delete(open)) return;
      if (kind === "snapshot") this.snapshotsFrom.delete(open.peer);
      else this.noteStreamEnded(open.peer);
    };
    call.on("cancelled", forget);
    call.on("error", forget);
    return open;
  }

  /** decode turns one wire message into a core message, or ends the call and returns undefined. */
  private decode(open: OpenCall, wire: WireMessage): Message | undefined {
    try {
      return this.checkRoute(open.peer, decodeMessage(wire));
    } catch (error) {
      if (!(error instanceof WireFormatError)) throw error;
      this.options.logger.warn({ err: error, peer: open.peer }, "invalid peer message");
      open.end(error);
      return undefined;
    }
  }

  /** checkRoute insists that a message names the stream's sender and this node, so a misrouted message never reaches Raft. */
  private checkRoute(peer: NodeId, m: Message): Message {
    if (m.from !== peer || m.to !== this.options.local.selfId) {
      throw new WireFormatError(`message from "${m.from}" to "${m.to}" on a call from "${peer}" to "${this.options.local.selfId}"`);
    }
    return m;
  }
}

/** REFUSAL_LOG_INTERVAL_MS is how often the same refusal is logged as an error: a misconfigured peer redials every second, and one line a minute is enough to see it. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

/** REFUSAL_LOG_REASONS_MAX bounds the reasons remembered, so callers with ever new ids cannot grow the map without limit. */
const REFUSAL_LOG_REASONS_MAX = 1024;

/** RefusalLog decides which refusals are logged as errors: each distinct reason once per interval. */
class RefusalLog {
  private readonly lastMs = new Map<string, number>();

  shouldLog(reason: string): boolean {
    const now = Date.now();
    const last = this.lastMs.get(reason);
    if (last !== undefined && now - last < REFUSAL_LOG_INTERVAL_MS) return false;
    if (this.lastMs.size >= REFUSAL_LOG_REASONS_MAX) this.lastMs.clear();
    this.lastMs.set(reason, now);
    return true;
  }
}
