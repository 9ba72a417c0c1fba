/**
 * The one place where typed errors become gRPC statuses: ERROR_TABLE has one row per error class
 * that can reach a handler, with its code and whether the answer carries `x-raftmesh-not-applied`.
 * Handlers throw typed errors; toStatus looks the class up (walking up to its nearest ancestor with a
 * row) and picks the code a client can act on: INVALID_ARGUMENT names the field, UNAVAILABLE carries
 * the leader when known, and an outcome that is unknown says so, so that no client retries a
 * non-idempotent write blindly. not-applied is set only on errors raised before anything was
 * proposed, or on a proposal the core or the state machine refused outright.
 */
import { Metadata, status as Status, type StatusObject } from "@grpc/grpc-js";
import { clipDetails } from "../common/echo.js";
import { InvariantViolationError, TlsError } from "../common/errors.js";
import { METADATA_FINAL, METADATA_LEADER, METADATA_LEADER_API, METADATA_NOT_APPLIED } from "../common/metadata.js";
import { ConfigError } from "../config/index.js";
import {
  NodeError,
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
  DamagedStateError,
  ImpossibleMessageError,
  InvariantError,
  NotLeaderError,
  ProposalDroppedError,
  RaftError,
  ReadLimitError,
  ReadRejectReason,
  SnapshotRejectedError,
  TransferRejectedError,
  UncommittedLimitError,
} from "../raft/index.js";
import {
  BatcherClosedError,
  BatchResultMismatchError,
  CommandRefusedError,
  CompactedError,
  HeartbeatBatcherError,
  HeartbeatNotRecordedError,
  HeartbeatOverloadError,
  MalformedCommandError,
  MalformedSnapshotError,
  NotSliceableSnapshotError,
  NoResultError,
  RowStructureError,
  RefusedExhaustedError,
  RefusedInvalidError,
  RefusedNotFoundError,
  RefusedPreconditionError,
  RegistryError,
  SnapshotVersionError,
  StaleSessionError,
  UnknownInstanceError,
  ValidationError,
  WatchError,
  WatcherLaggingError,
  WatchersLimitError,
  WatchResetError,
  WriteTimeoutError,
} from "../registry/errors.js";

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

/** BusyError: the node's queue of client calls waiting for a later event-loop turn is full (turn-budget.ts). */
export class BusyError extends ApiError {
  constructor(readonly limit: number) {
    super(Status.RESOURCE_EXHAUSTED, `node busy: ${limit} client calls already wait to start; retry later`);
    this.name = "BusyError";
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

/** MalformedRequestError: a request's protobuf bytes are not a well-formed message (truncated, invalid UTF-8 in a string; wire-check.ts). */
export class MalformedRequestError extends ApiError {
  constructor(readonly problem: string) {
    super(Status.INVALID_ARGUMENT, `malformed request: ${problem}`);
    this.name = "MalformedRequestError";
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

/** UnauthenticatedError: access control is on and the call carries no token, or one no node knows (never names the secret). */
export class UnauthenticatedError extends ApiError {
  constructor(message: string) {
    super(Status.UNAUTHENTICATED, message);
    this.name = "UnauthenticatedError";
  }
}

/** PermissionDeniedError: the token is known but its rules do not allow the call; the message names the method and the missing role and scope. */
export class PermissionDeniedError extends ApiError {
  constructor(message: string) {
    super(Status.PERMISSION_DENIED, message);
    this.name = "PermissionDeniedError";
  }
}

/** ErrorClass is any error constructor (abstract bases included). */
// biome-ignore lint/suspicious/noExplicitAny: constructors of every shape are keys of the table.
export type ErrorClass = abstract new (...args: any[]) => Error;

/** ErrorRow is how one class of error answers a client. */
export interface ErrorRow {
  /** code is the gRPC status code, or how to pick it from the error. */
  readonly code: Status | ((err: Error) => Status);
  /** notApplied: the request certainly took no effect, so the client may send it again. */
  readonly notApplied: boolean;
  /** details is the message the client reads (default: the error's message). */
  readonly details?: (err: Error) => string;
  /** leader names the leader (and its client API address) in the answer's metadata, when known. */
  readonly leader?: (err: Error) => { leader: string; api?: string };
  /** final: the same request sent again gets the same answer (METADATA_FINAL), so a client stops. */
  readonly final?: boolean;
}

const internal = (err: Error) => `internal error: ${err.message}`;
/** A base class or a bug: never expected at a handler, answered as INTERNAL like any unknown error. */
const INTERNAL_ROW: ErrorRow = { code: Status.INTERNAL, notApplied: false, details: internal };

/**
 * ERROR_TABLE: class → code → not-applied, for every error class a handler can meet. Errors of
 * storage, transport, agent, cli and client never reach a handler (the API may not import them);
 * test/unit/api/error-table.test.ts checks that every other exported class has its row here.
 */
export const ERROR_TABLE: ReadonlyMap<ErrorClass, ErrorRow> = new Map<ErrorClass, ErrorRow>([
  // The API's own: raised before anything was proposed, except OutcomeUnknownError.
  [ApiError, { code: (e) => (e as ApiError).code, notApplied: false }],
  [BusyError, { code: Status.RESOURCE_EXHAUSTED, notApplied: true }],
  [InvalidArgumentError, { code: Status.INVALID_ARGUMENT, notApplied: true }],
  [MalformedRequestError, { code: Status.INVALID_ARGUMENT, notApplied: true }],
  [NotFoundError, { code: Status.NOT_FOUND, notApplied: true }],
  [PreconditionError, { code: Status.FAILED_PRECONDITION, notApplied: true }],
  [NoLeaderError, { code: Status.UNAVAILABLE, notApplied: true, leader: (e) => ({ leader: (e as NoLeaderError).leader, api: (e as NoLeaderError).leaderApi }) }],
  [OutcomeUnknownError, { code: Status.DEADLINE_EXCEEDED, notApplied: false }],
  [UnauthenticatedError, { code: Status.UNAUTHENTICATED, notApplied: true }],
  [PermissionDeniedError, { code: Status.PERMISSION_DENIED, notApplied: true }],
  // The Raft core: it refused the proposal outright, or found a bug.
  [RaftError, INTERNAL_ROW],
  [NotLeaderError, { code: Status.UNAVAILABLE, notApplied: true, leader: (e) => ({ leader: (e as NotLeaderError).leader }) }],
  [ProposalDroppedError, { code: Status.UNAVAILABLE, notApplied: true }],
  [UncommittedLimitError, { code: Status.RESOURCE_EXHAUSTED, notApplied: true }],
  [ReadLimitError, { code: Status.RESOURCE_EXHAUSTED, notApplied: true }],
  [ConfChangeRejectedError, { code: Status.FAILED_PRECONDITION, notApplied: true }],
  [TransferRejectedError, { code: Status.FAILED_PRECONDITION, notApplied: true }],
  [SnapshotRejectedError, INTERNAL_ROW],
  [InvariantError, INTERNAL_ROW],
  // Peer-message outcomes (Raft.step): never raised by a client call, listed so every class has a row.
  [ImpossibleMessageError, INTERNAL_ROW],
  [DamagedStateError, INTERNAL_ROW],
  // The node: after a proposal entered the log, its outcome is unknown unless it was overwritten.
  [NodeError, INTERNAL_ROW],
  // A different entry was applied at the proposal's index: it can never commit, so it did not run.
  [ProposalLostError, { code: Status.ABORTED, notApplied: true }],
  [ProposalOutcomeUnknownError, { code: Status.DEADLINE_EXCEEDED, notApplied: false, details: (e) => `${e.message}: read before retrying` }],
  [NodeStoppedError, { code: Status.UNAVAILABLE, notApplied: false }],
  [RemovedFromClusterError, { code: Status.UNAVAILABLE, notApplied: false }],
  [ReadTimeoutError, { code: Status.UNAVAILABLE, notApplied: false }],
  [
    ReadRejectedError,
    {
      code: (e) => ((e as ReadRejectedError).reason === ReadRejectReason.Limit ? Status.RESOURCE_EXHAUSTED : Status.UNAVAILABLE),
      notApplied: true,
      leader: (e) => ({ leader: (e as ReadRejectedError).reason === ReadRejectReason.Limit ? "" : (e as ReadRejectedError).leader }),
    },
  ],
  [ReadCancelledError, { code: Status.CANCELLED, notApplied: false }],
  // The registry: validation before proposing, and the results apply() refused.
  [RegistryError, INTERNAL_ROW],
  [ValidationError, { code: Status.INVALID_ARGUMENT, notApplied: true, details: (e) => `${(e as ValidationError).field}: ${(e as ValidationError).reason}` }],
  [MalformedCommandError, INTERNAL_ROW],
  [SnapshotVersionError, INTERNAL_ROW],
  [MalformedSnapshotError, INTERNAL_ROW],
  [NotSliceableSnapshotError, INTERNAL_ROW],
  [RowStructureError, INTERNAL_ROW],
  [CommandRefusedError, INTERNAL_ROW],
  [RefusedNotFoundError, { code: Status.NOT_FOUND, notApplied: true }],
  [RefusedPreconditionError, { code: Status.FAILED_PRECONDITION, notApplied: true }],
  [RefusedInvalidError, { code: Status.INVALID_ARGUMENT, notApplied: true }],
  // A limit apply() enforces: refused, yet answered without not-applied, as it always was.
  [RefusedExhaustedError, { code: Status.RESOURCE_EXHAUSTED, notApplied: false }],
  [StaleSessionError, { code: Status.DEADLINE_EXCEEDED, notApplied: false, final: true }],
  [NoResultError, INTERNAL_ROW],
  [WriteTimeoutError, { code: Status.DEADLINE_EXCEEDED, notApplied: false }],
  [UnknownInstanceError, { code: Status.NOT_FOUND, notApplied: true }],
  [HeartbeatNotRecordedError, { code: Status.UNAVAILABLE, notApplied: true }],
  [HeartbeatBatcherError, INTERNAL_ROW],
  [HeartbeatOverloadError, { code: Status.RESOURCE_EXHAUSTED, notApplied: true }],
  [BatchResultMismatchError, INTERNAL_ROW],
  [BatcherClosedError, INTERNAL_ROW],
  // Watches end with these; a watch is a read, so not-applied does not arise.
  [WatchError, INTERNAL_ROW],
  [CompactedError, { code: Status.OUT_OF_RANGE, notApplied: false }],
  [WatchResetError, { code: Status.OUT_OF_RANGE, notApplied: false }],
  [WatcherLaggingError, { code: Status.ABORTED, notApplied: false }],
  [WatchersLimitError, { code: Status.RESOURCE_EXHAUSTED, notApplied: false }],
  // Configuration is checked at start; an address in a request is checked by the API (InvalidArgumentError).
  [ConfigError, INTERNAL_ROW],
  [InvariantViolationError, INTERNAL_ROW],
  // TLS material is read at start and on file change, never in a request.
  [TlsError, INTERNAL_ROW],
]);

/** rowOf is the row of err's class, or of its nearest ancestor that has one. */
export function rowOf(err: Error): ErrorRow | undefined {
  for (let c: unknown = err.constructor; typeof c === "function" && c !== Error; c = Object.getPrototypeOf(c)) {
    const row = ERROR_TABLE.get(c as ErrorClass);
    if (row) return row;
  }
  return undefined;
}

/** toStatus maps any error a handler throws to the status the client receives. */
export function toStatus(err: unknown): Partial<StatusObject> {
  const metadata = new Metadata();
  const row = err instanceof Error ? rowOf(err) : undefined;
  if (row && err instanceof Error) {
    const who = row.leader?.(err);
    if (who?.leader) metadata.set(METADATA_LEADER, who.leader);
    if (who?.api) metadata.set(METADATA_LEADER_API, who.api);
    if (row.notApplied) metadata.set(METADATA_NOT_APPLIED, "1");
    if (row.final) metadata.set(METADATA_FINAL, "1");
    const code = typeof row.code === "function" ? row.code(err) : row.code;
    return { code, details: clipDetails(row.details ? row.details(err) : err.message), metadata };
  }
  if (isStatusLike(err)) return { code: err.code, details: clipDetails(err.details), metadata: err.metadata ?? metadata };
  const message = err instanceof Error ? err.message : String(err);
  return { code: Status.INTERNAL, details: clipDetails(`internal error: ${message}`), metadata };
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
