import type { LogIndex, NodeId } from "../raft/index.js";

/** NodeError is the base of every expected failure of the node layer. */
export class NodeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NodeError";
  }
}

/** ProposalLostError is thrown when the entry of a proposal was overwritten by another leader's: it did not take effect. */
export class ProposalLostError extends NodeError {
  constructor(readonly index: LogIndex) {
    super(`proposal at index ${index} was overwritten by a newer leader and did not take effect`);
    this.name = "ProposalLostError";
  }
}

/**
 * ProposalOutcomeUnknownError is thrown when this node can no longer learn whether a proposal's
 * entry committed: a snapshot from the leader replaced the log past its index, so the entry may be
 * inside the snapshot or may have been overwritten. The caller must read before retrying.
 */
export class ProposalOutcomeUnknownError extends NodeError {
  constructor(readonly index: LogIndex) {
    super(`a snapshot from the leader replaced the log past the proposal at index ${index}; whether it took effect is unknown`);
    this.name = "ProposalOutcomeUnknownError";
  }
}

/** NodeStoppedError is thrown to callers still waiting when the node stops; their outcome is unknown. */
export class NodeStoppedError extends NodeError {
  constructor() {
    super("node stopped; the outcome of the pending request is unknown");
    this.name = "NodeStoppedError";
  }
}

/** ReadTimeoutError is thrown when a linearizable read does not get a read index in time (no quorum, or no leader). */
export class ReadTimeoutError extends NodeError {
  constructor(
    readonly timeoutMs: number,
    readonly leader: NodeId,
  ) {
    super(`linearizable read got no read index within ${timeoutMs} ms (leader: ${leader || "unknown"})`);
    this.name = "ReadTimeoutError";
  }
}

/** RemovedFromClusterError fails requests waiting on a node that was removed from the cluster; their outcome is unknown. */
export class RemovedFromClusterError extends NodeError {
  constructor(readonly id: NodeId) {
    super(`node ${id} was removed from the cluster while the request waited; its outcome is unknown`);
    this.name = "RemovedFromClusterError";
  }
}
