/**
 * PeerClient is the sending side for one peer: a bounded queue drained into one long-lived Stream
 * call, reconnects with jittered backoff, and InstallSnapshot calls one at a time. Nothing here
 * blocks the caller or throws for a network reason: a message that cannot go is dropped and
 * counted, because Raft retries whatever matters.
 */
import { type ChannelCredentials, type ChannelOptions, Client, type ClientWritableStream, credentials, type ServiceError, status } from "@grpc/grpc-js";
import type { Message, NodeId } from "../raft/types.js";
import { Backoff } from "./backoff.js";
import { isRefusal, PeerRefusedError, TransportClosedError, TransportError } from "./errors.js";
import { type CallIdentity, identityMetadata } from "./identity.js";
import {
  ENVELOPE_BYTES_TARGET,
  ENVELOPE_MESSAGES_MAX,
  KEEPALIVE_TIME_MS,
  KEEPALIVE_TIMEOUT_MS,
  PEER_FRAME_BYTES_MAX,
  PEER_MESSAGE_BYTES_MAX,
  PROBE_DEADLINE_MS,
  type TransportLimits,
} from "./limits.js";
import type { TransportLogger } from "./logger.js";
import { decodeProbeAnswer, type ProbeAnswer, type WireProbeResponse } from "./probe.js";
import { peerMethods } from "./proto.js";
import { BoundedQueue } from "./queue.js";
import { SnapshotSender } from "./snapshot-sender.js";
import type { SnapshotReport } from "./snapshot-sender.js";
import type { WireEnvelope, WireMessage } from "./wire.js";

/** PeerClientOptions configure one PeerClient. */
export interface PeerClientOptions {
  /** identity is this node's cluster and id, and the peer's id as target. */
  readonly identity: CallIdentity;
  readonly address: string;
  readonly limits: TransportLimits;
  readonly logger: TransportLogger;
  /** random drives the backoff jitter; Math.random unless a test fixes it. */
  readonly random?: () => number;
  /** onUnreachable is called (never inside send) once per failure episode: stream broke or a message was dropped. */
  readonly onUnreachable: (peer: NodeId) => void;
  /**
   * onStreamBroke is called when an open stream to the peer broke (UNAVAILABLE: the peer's socket
   * closed or reset, as when its process dies). Both of a crashed peer's connections close at
   * once, and this side's read of the reset often comes first (by 2-18 ms on a loaded follower).
   */
  readonly onStreamBroke?: (peer: NodeId) => void;
  /** onSnapshot is called once per snapshot handed to sendSnapshot, when it was acknowledged or failed. */
  readonly onSnapshot: (report: SnapshotReport) => void;
  /** credentials dial the peer (TLS, checking that its certificate names the target); plaintext when absent. */
  readonly credentials?: ChannelCredentials;
}

/** PeerStats counts what happened on the way to one peer since its client was created. */
export interface PeerStats {
  readonly id: NodeId;
  readonly address: string;
  /** connected is true while a stream is open and accepted. */
  readonly connected: boolean;
  readonly queued: number;
  readonly queuedBytes: number;
  /** sent counts messages written to the stream (they may still be lost with it). */
  readonly sent: number;
  /** dropped counts every message given up on: queue full, not connected, too large, or left behind by a broken stream. */
  readonly dropped: number;
  /** droppedDisconnected is the part of dropped that happened while the peer was not connected. */
  readonly droppedDisconnected: number;
  /** reconnects counts stream attempts after a failure. */
  readonly reconnects: number;
  /** refusals counts calls the peer refused for identity reasons. */
  readonly refusals: number;
  readonly snapshotsSent: number;
  readonly snapshotsFailed: number;
}

type State = "connecting" | "open" | "backoff" | "closed";

/** PeerClient sends messages to one peer. */
export class PeerClient {
  private readonly client: Client;
  private readonly queue = new BoundedQueue<WireMessage>();
  private readonly backoff: Backoff;
  private readonly snapshots: SnapshotSender;
  private state: State = "connecting";
  private call: ClientWritableStream<WireEnvelope> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  /** failedSinceOpen: the last stream (or connect attempt) failed and none has opened since. */
  private failedSinceOpen = false;
  private unreachableReported = false;
  private lastRefusal = "";
  private counts = { sent: 0, dropped: 0, droppedDisconnected: 0, reconnects: 0, refusals: 0 };

  constructor(private readonly options: PeerClientOptions) {
    const { limits } = options;
    this.client = new Client(options.address, options.credentials ?? credentials.createInsecure(), channelOptions(limits));
    this.backoff = new Backoff(limits.reconnectBackoffMsMin, limits.reconnectBackoffMsMax, options.random);
    this.snapshots = new SnapshotSender({ ...options, client: this.client });
    this.connect();
  }

  /** peer is the node this client sends to. */
  get peer(): NodeId {
    return this.options.identity.targetId;
  }

  /** send queues one encoded message of about `bytes` bytes, or drops and counts it; it never blocks or throws. */
  send(m: WireMessage, bytes: number): void {
    if (this.state === "closed") return;
    if (bytes > PEER_MESSAGE_BYTES_MAX) {
      this.options.logger.error({ type: m.type, bytes, bytesMax: PEER_MESSAGE_BYTES_MAX }, "message too large for the peer stream, dropped");
      this.drop(1);
      return;
    }
    const { queueMessagesMax, backlogMessagesMax, queueBytesMax } = this.options.limits;
    // After a failure the peer is likely still down: keep only a small backlog until a stream is
    // open again (also while a reconnect attempt is under way, not only while backing off).
    const messagesMax = this.failedSinceOpen ? backlogMessagesMax : queueMessagesMax;
    if (!this.queue.offer(m, bytes, messagesMax, queueBytesMax)) {
      this.drop(1);
      return;
    }
    this.pump();
  }

  /**
   * peerReachable says the peer just opened its own stream to this node: it is up and counts this
   * node as a member. A stream to it that is waiting out a backoff is tried now. The wait after a
   * refusal is the longest (up to RECONNECT_BACKOFF_MS_MAX), and a node that joins is refused by
   * every member until they apply its addition: a learner lost ~0.6 s there before it could answer
   * its leader, and a snapshot install waits on that answer. A refusal again backs off as before.
   */
  peerReachable(): void {
    if (this.state !== "backoff") return;
    clearTimeout(this.timer);
    this.backoff.reset();
    this.counts.reconnects++;
    this.connect();
  }

  /** sendSnapshot starts an InstallSnapshot call for a Snap message, unless one is already running for this peer. */
  sendSnapshot(m: Message): void {
    if (this.state !== "closed") this.snapshots.send(m);
  }

  /**
   * probe asks the peer what it holds (see ProbeAnswer). It rejects with PeerRefusedError when the
   * peer refuses who we are, and with a TransportError when it cannot be asked within
   * PROBE_DEADLINE_MS or answers something invalid.
   */
  probe(session: string): Promise<ProbeAnswer> {
    if (this.state === "closed") return Promise.reject(new TransportClosedError());
    const { probe } = peerMethods();
    const metadata = identityMetadata(this.options.identity);
    // Wait for the connection within the deadline rather than fail at once while the channel backs
    // off: a peer that is starting up then answers in this round, not the next.
    metadata.setOptions({ waitForReady: true });
    const deadline = new Date(Date.now() + PROBE_DEADLINE_MS);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        probe.path,
        probe.requestSerialize,
        probe.responseDeserialize,
        { session },
        metadata,
        { deadline },
        (error: ServiceError | null, response?: WireProbeResponse) => {
          if (error) {
            if (isRefusal(error.code)) reject(new PeerRefusedError(this.peer, error.code, error.details));
            else reject(new TransportError(`peer "${this.peer}" did not answer the probe (${status[error.code]}): ${error.details}`, { cause: error }));
            return;
          }
          try {
            resolve(decodeProbeAnswer(response as WireProbeResponse));
          } catch (decodeError) {
            reject(decodeError);
          }
        },
      );
    });
  }

  /** stats returns this peer's counters. */
  stats(): PeerStats {
    const snap = this.snapshots.stats();
    return {
      id: this.peer,
      address: this.options.address,
      connected: this.state === "open",
      queued: this.queue.length,
      queuedBytes: this.queue.bytes,
      ...this.counts,
      snapshotsSent: snap.sent,
      snapshotsFailed: snap.failed,
    };
  }

  /** close cancels the stream and any snapshot, drops the queue and closes the channel; no callback runs after it. */
  close(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    clearTimeout(this.timer);
    this.snapshots.close();
    this.call?.cancel();
    this.call = undefined;
    this.queue.dropOldest(0);
    this.client.close();
  }

  private connect(): void {
    const { stream } = peerMethods();
    const metadata = identityMetadata(this.options.identity);
    const call: ClientWritableStream<WireEnvelope> = this.client.makeClientStreamRequest(
      stream.path,
      stream.requestSerialize,
      stream.responseDeserialize,
      metadata,
      {},
      (error) => this.onStreamEnd(call, error),
    );
    this.call = call;
    this.state = "connecting";
    // The receiver sends headers only once it accepted our identity; until then nothing is written.
    call.on("metadata", () => this.onAccepted(call));
    this.timer = setTimeout(() => call.cancel(), this.options.limits.streamAcceptTimeoutMs);
    this.timer.unref();
  }

  private onAccepted(call: ClientWritableStream<WireEnvelope>): void {
    if (call !== this.call || this.state !== "connecting") return;
    clearTimeout(this.timer);
    this.state = "open";
    this.failedSinceOpen = false;
    this.backoff.reset();
    this.lastRefusal = "";
    this.options.logger.info({ address: this.options.address }, "peer stream open");
    this.pump();
  }

  /** pump writes queued messages in batches while the stream takes them, and waits for 'drain' when it does not. */
  private pump(): void {
    const call = this.call;
    while (call && this.state === "open" && !this.waitingDrain && this.queue.length > 0) {
      const messages = this.queue.takeBatch(ENVELOPE_BYTES_TARGET, ENVELOPE_MESSAGES_MAX);
      this.counts.sent += messages.length;
      this.unreachableReported = false;
      if (!call.write({ messages })) {
        this.waitingDrain = true;
        call.once("drain", () => {
          if (call !== this.call) return;
          this.waitingDrain = false;
          this.pump();
        });
      }
    }
  }

  private onStreamEnd(call: ClientWritableStream<WireEnvelope>, error: ServiceError | null): void {
    if (call !== this.call || this.state === "closed") return;
    clearTimeout(this.timer);
    const wasOpen = this.state === "open";
    this.call = undefined;
    this.waitingDrain = false;
    this.state = "backoff";
    this.failedSinceOpen = true;
    this.logStreamEnd(wasOpen, error);
    if (wasOpen && error?.code === status.UNAVAILABLE) this.options.onStreamBroke?.(this.peer);
    // What is left is stale by now; keep only a backlog the size allowed while disconnected.
    this.drop(this.queue.dropOldest(this.options.limits.backlogMessagesMax));
    this.reportUnreachable();
    this.timer = setTimeout(() => {
      this.counts.reconnects++;
      this.connect();
    }, this.backoff.next());
    this.timer.unref();
  }

  private logStreamEnd(wasOpen: boolean, error: ServiceError | null): void {
    const code = error?.code ?? status.OK;
    const details = error?.details ?? "peer ended the stream";
    const logger = this.options.logger;
    if (isRefusal(code)) {
      this.counts.refusals++;
      // A refusal is a misconfiguration that retrying will not fix soon: wait the longest, and
      // log it as an error once per distinct reason rather than once per attempt.
      this.backoff.saturate();
      const refusal = new PeerRefusedError(this.peer, code, details);
      const fields = { err: refusal, address: this.options.address, clusterId: this.options.identity.clusterId };
      if (details !== this.lastRefusal) logger.error(fields, "peer refused connection");
      else logger.debug(fields, "peer refused connection again");
      this.lastRefusal = details;
    } else if (wasOpen) {
      logger.warn({ address: this.options.address, code: status[code], details }, "peer stream broke");
    } else {
      logger.debug({ address: this.options.address, code: status[code], details }, "peer not reachable");
    }
  }

  private drop(n: number): void {
    if (n === 0) return;
    this.counts.dropped += n;
    if (this.state !== "open") this.counts.droppedDisconnected += n;
    this.reportUnreachable();
  }

  /** reportUnreachable tells the host once per failure episode, from a microtask so that send() never re-enters the host. */
  private reportUnreachable(): void {
    if (this.unreachableReported) return;
    this.unreachableReported = true;
    queueMicrotask(() => {
      if (this.state !== "closed") this.options.onUnreachable(this.peer);
    });
  }
}

/** channelOptions make grpc-js's own reconnects follow our backoff, detect dead peers by keepalive, and never buffer for retries. */
function channelOptions(limits: TransportLimits): ChannelOptions {
  return {
    "grpc.initial_reconnect_backoff_ms": limits.reconnectBackoffMsMin,
    "grpc.max_reconnect_backoff_ms": limits.reconnectBackoffMsMax,
    "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
    "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.enable_retries": 0,
    "grpc.max_send_message_length": PEER_FRAME_BYTES_MAX,
    // Each peer gets its own connection, so closing or backing off one never affects another.
    "grpc.use_local_subchannel_pool": 1,
  };
}
