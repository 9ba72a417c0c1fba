/**
 * Types shared by the Raft core and everything that hosts it (storage, transport, node).
 *
 * Term and LogIndex are plain numbers: they take part in arithmetic on every line of the core, and a
 * branded number would need a cast at each of those places, which hides mistakes instead of
 * catching them. NodeId is branded because mixing it up with another string is a real risk.
 */

/** NodeId names one member of the cluster ("n1", "n2", ...). */
export type NodeId = string & { readonly __brand: "NodeId" };

/** Term is a Raft term: it only ever grows on a node. */
export type Term = number;

/** LogIndex is a position in the replicated log; index 0 is the empty prefix. */
export type LogIndex = number;

/** NO_NODE stands for "nobody" in vote and leader fields. */
export const NO_NODE = "" as NodeId;

/** nodeId brands a string as a NodeId. */
export function nodeId(id: string): NodeId {
  return id as NodeId;
}

/** EntryKind says whether an entry carries application data or a membership change. */
export const EntryKind = {
  Normal: 0,
  ConfChange: 1,
} as const;
export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind];

/** Entry is one record of the replicated log. An empty Normal entry is the leader's no-op. */
export interface Entry {
  readonly term: Term;
  readonly index: LogIndex;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

/** HardState is what must be durable before any message that depends on it is sent. */
export interface HardState {
  readonly term: Term;
  readonly vote: NodeId;
  readonly commit: LogIndex;
}

/** ConfState is a cluster configuration: voters decide, learners only receive the log. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** ConfChangeType lists the single-server membership changes the core accepts. */
export const ConfChangeType = {
  /** AddVoter adds a voter, or promotes a learner to voter. */
  AddVoter: "add-voter",
  /** AddLearner adds a learner, or demotes a voter to learner. */
  AddLearner: "add-learner",
  /** Remove removes a voter or learner. */
  Remove: "remove",
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

/** ConfChange is one single-server membership change, carried in a ConfChange entry. */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly node: NodeId;
}

/** SnapshotMeta says which prefix of the log a snapshot replaces and the configuration at its end. */
export interface SnapshotMeta {
  readonly index: LogIndex;
  readonly term: Term;
  readonly conf: ConfState;
}

/** Snapshot is an application snapshot together with its metadata. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/**
 * SNAPSHOT_DATA_RELEASED stands in for a snapshot's bytes once the host holds them durably and has
 * told the core it need not keep them (RawNode.releaseSnapshotData). A Snap message carrying it
 * must be filled from the host's store before it leaves the process. Compared by identity: a
 * snapshot whose bytes really are empty is another array.
 */
export const SNAPSHOT_DATA_RELEASED: Uint8Array = new Uint8Array(0);

/** MessageType lists every message the core sends or takes. Local ones never cross the network. */
export const MessageType = {
  /** Hup is local: start an election (or pre-election). */
  Hup: "hup",
  /** App carries entries after (index, logTerm) and the leader's commit index. */
  App: "app",
  /** AppResp acknowledges up to index, or rejects index with a hint (rejectHint, logTerm). */
  AppResp: "app-resp",
  /** Vote asks for a vote, with the candidate's last (index, logTerm). */
  Vote: "vote",
  VoteResp: "vote-resp",
  /** PreVote asks whether a vote at term would be granted, without anyone changing term. */
  PreVote: "pre-vote",
  PreVoteResp: "pre-vote-resp",
  /** Snap carries a snapshot to a follower that is too far behind. */
  Snap: "snap",
  /** Heartbeat keeps followers from campaigning and carries a safe commit index and a read context. */
  Heartbeat: "heartbeat",
  HeartbeatResp: "heartbeat-resp",
  /** ReadIndex asks the leader for a read index for the request named by context. */
  ReadIndex: "read-index",
  /** ReadIndexResp answers ReadIndex with the read index (index), or rejects it. */
  ReadIndexResp: "read-index-resp",
  /** TimeoutNow tells a caught-up follower to campaign at once (leadership transfer). */
  TimeoutNow: "timeout-now",
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** ReadRejectReason says why a ReadIndex request was refused; a host answers its caller with it at once. */
export const ReadRejectReason = {
  /** NotLeader: the node asked does not lead (any more); the read may be sent again, to the leader. */
  NotLeader: "not-leader",
  /** Limit: the leader already holds pendingReadsMax reads; the caller should back off. */
  Limit: "limit",
  /** Expired: the read waited pendingReadTicksMax ticks without a quorum round confirming it. */
  Expired: "expired",
} as const;
export type ReadRejectReason = (typeof ReadRejectReason)[keyof typeof ReadRejectReason];

/**
 * Message is the one shape every Raft message has, so that one transport frame carries them all.
 * Fields that a type does not use are 0, false, empty, or undefined.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
  /** App: term of the entry before the batch. Vote: candidate's last term. AppResp reject: term at rejectHint. */
  readonly logTerm: Term;
  /** App: index of the entry before the batch. Vote: candidate's last index. AppResp: acked or rejected index. */
  readonly index: LogIndex;
  readonly entries: readonly Entry[];
  readonly commit: LogIndex;
  readonly reject: boolean;
  readonly rejectHint: LogIndex;
  readonly snapshot?: Snapshot;
  /** Heartbeat and ReadIndex: the read round or request this message belongs to. Vote: "transfer" marker. */
  readonly context?: Uint8Array;
  /** ReadIndexResp with reject: why. Absent on rejections from older peers, which meant NotLeader. */
  readonly readReject?: ReadRejectReason;
}

/** ReadState releases a read: once applied >= index, local state may serve the read named by context. */
export interface ReadState {
  readonly index: LogIndex;
  readonly context: Uint8Array;
}

/** ReadReject refuses the read named by context: the host answers its caller at once instead of at its deadline. */
export interface ReadReject {
  readonly context: Uint8Array;
  readonly reason: ReadRejectReason;
}

/** Role is what a node currently is. */
export const Role = {
  Follower: "follower",
  PreCandidate: "pre-candidate",
  Candidate: "candidate",
  Leader: "leader",
} as const;
export type Role = (typeof Role)[keyof typeof Role];

/** SoftState is volatile state the host may want to show or act on; it is never persisted. */
export interface SoftState {
  readonly lead: NodeId;
  readonly role: Role;
}

/**
 * Ready is the work the host must do, in this order: persist `hardState`, `entries` and `snapshot`
 * in one synced batch; then send `messages`; then apply `snapshot` and `committedEntries` to the
 * state machine and release `readStates` once applied reaches their index (and fail the reads in
 * `readRejects`); then call advance().
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  /** entries to persist; the first may overwrite (and so truncate) entries already stored. */
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  /** readRejects are this node's reads that will never get a ReadState; their callers may be told now. */
  readonly readRejects: readonly ReadReject[];
}

/** RandomSource is the only source of randomness the core uses; the host seeds it. */
export interface RandomSource {
  /** nextInt returns an integer in [0, maxExclusive). */
  nextInt(maxExclusive: number): number;
}
