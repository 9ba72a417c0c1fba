/**
 * The one place where typed errors become gRPC statuses. Handlers throw typed errors; toStatus
 * picks the code a client can act on: INVALID_ARGUMENT names the field, UNAVAILABLE carries the
 * leader when known, and an outcome that is unknown says so, so that no client retries a
 * non-idempotent write blindly.
 */
import { Metadata, status as Status, type StatusObject } from "@grpc/grpc-js";
import { METADATA_LEADER, METADATA_LEADER_API, METADATA_NOT_APPLIED } from "../common/metadata.js";
import { ValidationError } from "../registry/errors.js";
import { HeartbeatOverloadError } from "../registry/heartbeat-batcher.js";
import {
  NodeStoppedError,
  ProposalLostError,
  ProposalOutcomeUnknownError,
  ReadCancelledError,
  ReadRejectedError,
  ReadTimeoutError,
  RemovedFromClusterError,
} from "../node/errors.js";
import {
  ConfChangeRejectedError,
  NotLeaderError,
  ProposalDroppedError,
  ReadLimitError,
  ReadRejectReason,
  TransferRejectedError,
  UncommittedLimitError,
} from "../raft/index.js";

/** ApiError is the base of errors the API layer raises itself. */
export class ApiError extends Error {
  constructor(
    readonly code: Status,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** InvalidArgumentError names the request field that is wrong. */
export class InvalidArgumentError extends ApiError {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(Status.INVALID_ARGUMENT, `${field}: ${reason}`);
    this.name = "InvalidArgumentError";
  }
}

/** NotFoundError: the named thing does not exist. */
export class NotFoundError extends ApiError {
  constructor(message: string) {
    super(Status.NOT_FOUND, message);
    this.name = "NotFoundError";
  }
}

/** PreconditionError: the request is well-formed but the cluster is not in a state to do it. */
export class PreconditionError extends ApiError {
  constructor(message: string) {
    super(Status.FAILED_PRECONDITION, message);
    this.name = "PreconditionError";
  }
}

/** NoLeaderError: no leader is known, or the leader could not be reached; the request did not run. */
export class NoLeaderError extends ApiError {
  constructor(
    message: string,
    readonly leader = "",
    readonly leaderApi = "",
  ) {
    super(Status.UNAVAILABLE, message);
    this.name = "NoLeaderError";
  }
}

/** OutcomeUnknownError: the write may or may not have taken effect (the wait ended first). */
export class OutcomeUnknownError extends ApiError {
  constructor(message: string) {
    super(Status.DEADLINE_EXCEEDED, `${message}; the outcome is unknown: read before retrying`);
    this.name = "OutcomeUnknownError";
  }
}

/** toStatus maps any error a handler throws to the status the client receives. */
export function toStatus(err: unknown): Partial<StatusObject> {
  const st = statusOf(err);
  if (notApplied(err) && st.metadata) st.metadata.set(METADATA_NOT_APPLIED, "1");
  return st;
}

/** notApplied: errors raised before anything was proposed, or a proposal the core refused outright. */
function notApplied(err: unknown): boolean {
  return (
    err instanceof NoLeaderError ||
    err instanceof ValidationError ||
    err instanceof HeartbeatOverloadError ||
    err instanceof InvalidArgumentError ||
    err instanceof NotFoundError ||
    err instanceof PreconditionError ||
    err instanceof NotLeaderError ||
    err instanceof ProposalDroppedError ||
    err instanceof UncommittedLimitError ||
    err instanceof ReadLimitError ||
    err instanceof ReadRejectedError ||
    err instanceof ConfChangeRejectedError ||
    err instanceof TransferRejectedError
  );
}

function statusOf(err: unknown): Partial<StatusObject> {
  const metadata = new Metadata();
  if (err instanceof NoLeaderError) {
    if (err.leader) metadata.set(METADATA_LEADER, err.leader);
    if (err.leaderApi) metadata.set(METADATA_LEADER_API, err.leaderApi);
    return { code: err.code, details: err.message, metadata };
  }
  if (err instanceof ApiError) return { code: err.code, details: err.message, metadata };
  if (err instanceof ValidationError) return { code: Status.INVALID_ARGUMENT, details: `${err.field}: ${err.reason}`, metadata };
  if (err instanceof HeartbeatOverloadError) return { code: Status.RESOURCE_EXHAUSTED, details: err.message, metadata };
  if (isStatusLike(err)) return { code: err.code, details: err.details, metadata: err.metadata ?? metadata };
  if (err instanceof NotLeaderError) {
    if (err.leader) metadata.set(METADATA_LEADER, err.leader);
    return { code: Status.UNAVAILABLE, details: err.message, metadata };
  }
  if (err instanceof ProposalLostError) return { code: Status.ABORTED, details: err.message, metadata };
  if (err instanceof ProposalOutcomeUnknownError) {
    return { code: Status.DEADLINE_EXCEEDED, details: `${err.message}: read before retrying`, metadata };
  }
  if (err instanceof ProposalDroppedError) return { code: Status.UNAVAILABLE, details: err.message, metadata };
  if (err instanceof NodeStoppedError || err instanceof RemovedFromClusterError) return { code: Status.UNAVAILABLE, details: err.message, metadata };
  if (err instanceof ReadTimeoutError) return { code: Status.UNAVAILABLE, details: err.message, metadata };
  if (err instanceof ReadRejectedError) {
    if (err.reason === ReadRejectReason.Limit) return { code: Status.RESOURCE_EXHAUSTED, details: err.message, metadata };
    if (err.leader) metadata.set(METADATA_LEADER, err.leader);
    return { code: Status.UNAVAILABLE, details: err.message, metadata };
  }
  if (err instanceof ReadCancelledError) return { code: Status.CANCELLED, details: err.message, metadata };
  if (err instanceof UncommittedLimitError || err instanceof ReadLimitError) {
    return { code: Status.RESOURCE_EXHAUSTED, details: err.message, metadata };
  }
  if (err instanceof ConfChangeRejectedError || err instanceof TransferRejectedError) {
    return { code: Status.FAILED_PRECONDITION, details: err.message, metadata };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: Status.INTERNAL, details: `internal error: ${message}`, metadata };
}

/** A status that came back from a forwarded call passes through unchanged. */
function isStatusLike(err: unknown): err is { code: Status; details: string; metadata?: Metadata } {
  return (
    typeof err === "object" &&
    err !== null &&
    typeof (err as { code?: unknown }).code === "number" &&
    typeof (err as { details?: unknown }).details === "string"
  );
}
