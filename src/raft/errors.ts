import type { MessageType, NodeId } from "./types.js";

/** RaftError is the base of every expected failure the core reports to its host. */
export class RaftError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RaftError";
  }
}

/** NotLeaderError is thrown by propose, proposeConfChange and transferLeadership on a node that does not lead; `leader` is the known leader or "" when none is known. */
export class NotLeaderError extends RaftError {
  constructor(readonly leader: NodeId) {
    super(leader ? `not the leader; the leader is ${leader}` : "not the leader; no leader is known");
    this.name = "NotLeaderError";
  }
}

/** ProposalDroppedError is thrown when the leader refuses a proposal it would otherwise take, e.g. while a leadership transfer is pending. */
export class ProposalDroppedError extends RaftError {
  constructor(readonly reason: string) {
    super(`proposal dropped: ${reason}`);
    this.name = "ProposalDroppedError";
  }
}

/** UncommittedLimitError is thrown when accepting a proposal would take the uncommitted tail of the log past its byte limit. */
export class UncommittedLimitError extends RaftError {
  constructor(
    readonly uncommittedBytes: number,
    readonly limitBytes: number,
  ) {
    super(`too much uncommitted data: ${uncommittedBytes} bytes pending, limit ${limitBytes}`);
    this.name = "UncommittedLimitError";
  }
}

/** ReadLimitError is thrown when a leader already holds the maximum number of pending reads. */
export class ReadLimitError extends RaftError {
  constructor(readonly limit: number) {
    super(`too many pending reads (limit ${limit})`);
    this.name = "ReadLimitError";
  }
}

/** ConfChangeRejectedError is thrown when a membership change cannot be proposed now, or is invalid. */
export class ConfChangeRejectedError extends RaftError {
  constructor(readonly reason: string) {
    super(`membership change rejected: ${reason}`);
    this.name = "ConfChangeRejectedError";
  }
}

/** TransferRejectedError is thrown when a leadership transfer target is not a voter. */
export class TransferRejectedError extends RaftError {
  constructor(readonly reason: string) {
    super(`leadership transfer rejected: ${reason}`);
    this.name = "TransferRejectedError";
  }
}

/** SnapshotRejectedError is thrown when the host hands in a snapshot the core cannot take. */
export class SnapshotRejectedError extends RaftError {
  constructor(readonly reason: string) {
    super(`snapshot rejected: ${reason}`);
    this.name = "SnapshotRejectedError";
  }
}

/**
 * ImpossibleMessageError is thrown by step() for a message no correct peer sends in this node's
 * state (the DESIGN note "Impossible peer messages" in raft.ts lists them): the fault is the
 * sender's, the core's state is untouched, and the host drops the message, closes that peer's
 * stream, logs the sender and counts it. It never means that this node must stop.
 */
export class ImpossibleMessageError extends RaftError {
  constructor(
    readonly from: NodeId,
    readonly type: MessageType,
    readonly reason: string,
  ) {
    super(`impossible ${type} message from ${from}: ${reason}`);
    this.name = "ImpossibleMessageError";
  }
}

/** InvariantError reports a broken invariant: a bug. The host must crash, never carry on. */
export class InvariantError extends Error {
  constructor(message: string) {
    super(`raft invariant violated: ${message}`);
    this.name = "InvariantError";
  }
}

/**
 * DamagedStateError is an InvariantError whose cause is this node's own durable state, not a bug in
 * the code: a correct peer's message shows that this node lost data it had acknowledged. The host
 * stops, as for any InvariantError; the message says what to look at.
 */
export class DamagedStateError extends InvariantError {
  constructor(message: string) {
    super(message);
    this.name = "DamagedStateError";
  }
}

/** invariant throws InvariantError when cond is false. */
export function invariant(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new InvariantError(typeof message === "string" ? message : message());
}
