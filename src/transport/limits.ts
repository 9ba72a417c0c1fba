/**
 * Limits of the peer transport. Each is a default the host may change through TransportLimits (the
 * tests shrink them); each says why it has the number it has.
 */

/** PEER_QUEUE_MESSAGES_MAX bounds the messages waiting for one peer's stream: 4,096 covers the core's 256 inflight appends plus heartbeats and votes many times over, so only a stuck stream ever fills it. */
export const PEER_QUEUE_MESSAGES_MAX = 4096;

/** PEER_QUEUE_BYTES_MAX bounds the bytes waiting for one peer: the core's 32 MiB inflight window plus one largest (64 MiB) entry, so a slow peer costs at most this much memory. */
export const PEER_QUEUE_BYTES_MAX = 96 * 1024 * 1024;

/** PEER_BACKLOG_MESSAGES_MAX bounds the queue while a peer is backing off after a failed stream (the queue is cut to it then): the core retries anyway, so a long outage should not leave thousands of stale heartbeats to flush on reconnect. */
export const PEER_BACKLOG_MESSAGES_MAX = 256;

/** PEER_MESSAGE_BYTES_MAX bounds one encoded message: one 64 MiB entry (storage's ENTRY_DATA_BYTES_MAX) plus 1 MiB of headers; a larger message could never be received, so it is dropped at the sender. */
export const PEER_MESSAGE_BYTES_MAX = 65 * 1024 * 1024;

/** ENVELOPE_BYTES_TARGET is where batching stops adding messages to one frame: 1 MiB matches the core's append size, so heartbeats never wait behind more than one large frame. */
export const ENVELOPE_BYTES_TARGET = 1024 * 1024;

/** ENVELOPE_MESSAGES_MAX bounds the messages in one frame so a burst of tiny messages still yields to other streams on the connection. */
export const ENVELOPE_MESSAGES_MAX = 512;

/** PEER_FRAME_BYTES_MAX is the largest gRPC message a peer server accepts: one largest message plus a full batch beside it. */
export const PEER_FRAME_BYTES_MAX = PEER_MESSAGE_BYTES_MAX + 2 * ENVELOPE_BYTES_TARGET;

/** RECONNECT_BACKOFF_MS_MIN is the first reconnect delay: short, because a peer that restarts should rejoin within one election timeout. */
export const RECONNECT_BACKOFF_MS_MIN = 50;

/** RECONNECT_BACKOFF_MS_MAX caps the reconnect delay: 1 s keeps a returning peer's wait short while a dead one costs one dial a second. */
export const RECONNECT_BACKOFF_MS_MAX = 1000;

/** STREAM_ACCEPT_TIMEOUT_MS bounds how long a new stream may wait for the peer to accept it, so a black-holed address is retried instead of holding the backlog forever. */
export const STREAM_ACCEPT_TIMEOUT_MS = 5000;

/** SNAPSHOT_CHUNK_BYTES_MAX bounds one InstallSnapshot chunk: 1 MiB stays far below gRPC's frame limit and lets other streams interleave. */
export const SNAPSHOT_CHUNK_BYTES_MAX = 1024 * 1024;

/** SNAPSHOT_BYTES_MAX bounds a received snapshot's data: storage's SNAPSHOT_DATA_BYTES_MAX (1 GiB), so the receiver never buffers more than it could store. */
export const SNAPSHOT_BYTES_MAX = 1024 * 1024 * 1024;

/** SNAPSHOT_DEADLINE_MS is the deadline of one InstallSnapshot call: 1 GiB at a modest 20 MiB/s fits, and a stuck transfer frees the peer's single snapshot slot. */
export const SNAPSHOT_DEADLINE_MS = 60_000;

/** KEEPALIVE_TIME_MS is how often an idle connection is pinged, so a peer that vanished without a FIN is noticed in seconds, not at the TCP timeout. */
export const KEEPALIVE_TIME_MS = 5000;

/** KEEPALIVE_TIMEOUT_MS is how long a ping may go unanswered before the connection is declared dead. */
export const KEEPALIVE_TIMEOUT_MS = 5000;

/** PROBE_DEADLINE_MS is the deadline of one Probe call: the answer is computed at once, so a second means the peer is down or unreachable, and the asker tries again in its next round. */
export const PROBE_DEADLINE_MS = 1000;

/** SERVER_SHUTDOWN_GRACE_MS bounds a graceful shutdown of a server the transport owns before it is forced. */
export const SERVER_SHUTDOWN_GRACE_MS = 1000;

/** TransportLimits are the tunable bounds of one transport; every field defaults to the constant of the same name. */
export interface TransportLimits {
  readonly queueMessagesMax: number;
  readonly queueBytesMax: number;
  readonly backlogMessagesMax: number;
  readonly reconnectBackoffMsMin: number;
  readonly reconnectBackoffMsMax: number;
  readonly streamAcceptTimeoutMs: number;
  readonly snapshotChunkBytesMax: number;
  readonly snapshotBytesMax: number;
  readonly snapshotDeadlineMs: number;
}

/** DEFAULT_LIMITS are the limits a transport uses when the host overrides none. */
export const DEFAULT_LIMITS: TransportLimits = {
  queueMessagesMax: PEER_QUEUE_MESSAGES_MAX,
  queueBytesMax: PEER_QUEUE_BYTES_MAX,
  backlogMessagesMax: PEER_BACKLOG_MESSAGES_MAX,
  reconnectBackoffMsMin: RECONNECT_BACKOFF_MS_MIN,
  reconnectBackoffMsMax: RECONNECT_BACKOFF_MS_MAX,
  streamAcceptTimeoutMs: STREAM_ACCEPT_TIMEOUT_MS,
  snapshotChunkBytesMax: SNAPSHOT_CHUNK_BYTES_MAX,
  snapshotBytesMax: SNAPSHOT_BYTES_MAX,
  snapshotDeadlineMs: SNAPSHOT_DEADLINE_MS,
};

/** resolveLimits fills the host's overrides with defaults and asserts they make sense together. */
export function resolveLimits(overrides: Partial<TransportLimits> = {}): TransportLimits {
  const limits = { ...DEFAULT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0) throw new RangeError(`transport limit ${name} must be a positive integer, got ${value}`);
  }
  if (limits.backlogMessagesMax > limits.queueMessagesMax) throw new RangeError("backlogMessagesMax must not exceed queueMessagesMax");
  if (limits.reconnectBackoffMsMin > limits.reconnectBackoffMsMax) throw new RangeError("reconnectBackoffMsMin must not exceed reconnectBackoffMsMax");
  if (limits.snapshotChunkBytesMax > SNAPSHOT_CHUNK_BYTES_MAX) throw new RangeError(`snapshotChunkBytesMax must not exceed ${SNAPSHOT_CHUNK_BYTES_MAX}`);
  return limits;
}
