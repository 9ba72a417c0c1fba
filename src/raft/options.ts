import { RaftError } from "./errors.js";
import {
  COMMITTED_BYTES_PER_READY_MAX,
  ELECTION_TICK_MIN,
  INFLIGHT_BYTES_MAX,
  INFLIGHT_MESSAGES_MAX,
  MESSAGE_BYTES_MAX,
  PENDING_READ_TICKS_MAX,
  PENDING_READS_MAX,
  UNCOMMITTED_BYTES_MAX,
} from "./limits.js";
import type { NodeId, RandomSource } from "./types.js";

/**
 * UnsafeSwitches break the core on purpose. They exist only so the simulator can prove that its
 * checkers catch each bug (negative controls); no production code path sets them.
 */
export interface UnsafeSwitches {
  /** grantVoteWithoutLogCheck grants votes without the up-to-date log check (Raft §5.4.1). */
  grantVoteWithoutLogCheck?: boolean;
  /** commitPriorTermByCount commits entries of earlier terms by counting replicas (Raft §5.4.2, figure 8). */
  commitPriorTermByCount?: boolean;
  /** skipPersistVote leaves the vote out of the hard state handed to the host to persist. */
  skipPersistVote?: boolean;
  /** readWithoutHeartbeat answers ReadIndex at once from the leader's commit index, with no quorum round. */
  readWithoutHeartbeat?: boolean;
}

/** RaftOptions configures one core. Times are in ticks; the host decides how long a tick is. */
export interface RaftOptions {
  readonly id: NodeId;
  /** electionTick is the minimum election timeout; each timeout is drawn from [electionTick, 2*electionTick). */
  readonly electionTick: number;
  /** heartbeatTick is the interval between leader heartbeats; it must be below electionTick. */
  readonly heartbeatTick: number;
  readonly random: RandomSource;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly messageBytesMax?: number;
  readonly inflightMessagesMax?: number;
  readonly inflightBytesMax?: number;
  readonly uncommittedBytesMax?: number;
  readonly committedBytesPerReadyMax?: number;
  readonly pendingReadsMax?: number;
  /** pendingReadTicksMax is how many ticks a leader holds an unconfirmed read before refusing it as expired. */
  readonly pendingReadTicksMax?: number;
  /** snapshotKeepEntries is how many entries before a local snapshot stay in the log for slow followers. */
  readonly snapshotKeepEntries?: number;
  readonly unsafe?: UnsafeSwitches;
}

/** ResolvedOptions are RaftOptions with every default filled in. */
export type ResolvedOptions = Required<Omit<RaftOptions, "unsafe">> & { unsafe: UnsafeSwitches };

/** resolveOptions fills defaults and rejects impossible settings with a RaftError naming the field. */
export function resolveOptions(o: RaftOptions): ResolvedOptions {
  if (!o.id) throw new RaftError("options.id is empty");
  if (!Number.isInteger(o.heartbeatTick) || o.heartbeatTick < 1) {
    throw new RaftError(`options.heartbeatTick must be a positive integer, got ${o.heartbeatTick}`);
  }
  if (!Number.isInteger(o.electionTick) || o.electionTick < ELECTION_TICK_MIN || o.electionTick <= o.heartbeatTick) {
    throw new RaftError(
      `options.electionTick must be an integer above heartbeatTick (${o.heartbeatTick}) and >= ${ELECTION_TICK_MIN}, got ${o.electionTick}`,
    );
  }
  for (const field of ["pendingReadsMax", "pendingReadTicksMax"] as const) {
    const v = o[field];
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new RaftError(`options.${field} must be a positive integer, got ${v}`);
  }
  return {
    id: o.id,
    electionTick: o.electionTick,
    heartbeatTick: o.heartbeatTick,
    random: o.random,
    preVote: o.preVote ?? true,
    checkQuorum: o.checkQuorum ?? true,
    messageBytesMax: o.messageBytesMax ?? MESSAGE_BYTES_MAX,
    inflightMessagesMax: o.inflightMessagesMax ?? INFLIGHT_MESSAGES_MAX,
    inflightBytesMax: o.inflightBytesMax ?? INFLIGHT_BYTES_MAX,
    uncommittedBytesMax: o.uncommittedBytesMax ?? UNCOMMITTED_BYTES_MAX,
    committedBytesPerReadyMax: o.committedBytesPerReadyMax ?? COMMITTED_BYTES_PER_READY_MAX,
    pendingReadsMax: o.pendingReadsMax ?? PENDING_READS_MAX,
    pendingReadTicksMax: o.pendingReadTicksMax ?? PENDING_READ_TICKS_MAX,
    snapshotKeepEntries: o.snapshotKeepEntries ?? 0,
    unsafe: o.unsafe ?? {},
  };
}
