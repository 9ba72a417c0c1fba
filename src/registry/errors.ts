/**
 * Expected failures of the registry module. The API maps them to gRPC status codes in one place;
 * tests assert the class and its fields, not message strings.
 */
import type { CommandResult } from "./types.js";

/** RegistryError is the base of every expected failure of the registry module. */
export class RegistryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RegistryError";
  }
}

/**
 * ValidationError is thrown by the validators (validate.ts) when a request field is out of its
 * limits; `field` is the path of the field (e.g. "instance.port", 'instance.metadata["k"]').
 * The API answers INVALID_ARGUMENT with it; apply() turns it into an "invalid-argument" result.
 */
export class ValidationError extends RegistryError {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field} ${reason}`);
    this.name = "ValidationError";
  }
}

/** MalformedCommandError is thrown by decodeCommand for entry data that no encoder wrote. */
export class MalformedCommandError extends RegistryError {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`malformed registry command: ${reason}`, options);
    this.name = "MalformedCommandError";
  }
}

/** SnapshotVersionError is thrown by restore() for a snapshot of a format version this code does not know. */
export class SnapshotVersionError extends RegistryError {
  constructor(readonly version: unknown) {
    super(`registry snapshot version ${String(version)} is not supported`);
    this.name = "SnapshotVersionError";
  }
}

/** MalformedSnapshotError is thrown by restore() for snapshot data that does not decode to a registry state. */
export class MalformedSnapshotError extends RegistryError {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`malformed registry snapshot: ${reason}`, options);
    this.name = "MalformedSnapshotError";
  }
}

/** HeartbeatBatcherError is the base of the batcher's expected failures. */
export class HeartbeatBatcherError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "HeartbeatBatcherError";
  }
}

/** HeartbeatOverloadError is thrown (as a rejection) by renew when HEARTBEAT_QUEUE_MAX heartbeats are already waiting or in flight. */
export class HeartbeatOverloadError extends HeartbeatBatcherError {
  constructor(readonly limit: number) {
    super(`too many heartbeats waiting for the leader (limit ${limit})`);
    this.name = "HeartbeatOverloadError";
  }
}

/** BatchResultMismatchError rejects every caller of a batch whose send resolved with a different number of results than items. */
export class BatchResultMismatchError extends HeartbeatBatcherError {
  constructor(
    readonly items: number,
    readonly results: number,
  ) {
    super(`leader answered ${results} results for ${items} heartbeats`);
    this.name = "BatchResultMismatchError";
  }
}

/** BatcherClosedError rejects heartbeats given to, or still waiting in, a closed batcher. */
export class BatcherClosedError extends HeartbeatBatcherError {
  constructor() {
    super("heartbeat batcher is closed");
    this.name = "BatcherClosedError";
  }
}

/** WatchError is the base of the reasons a watch ends or is refused. */
export class WatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WatchError";
  }
}

/** CompactedError ends a watch whose fromIndex is older than the retained history; re-list (at currentIndex or later) and watch from the list's index. */
export class CompactedError extends WatchError {
  constructor(
    readonly fromIndex: number,
    readonly oldestIndex: number,
    readonly currentIndex: number,
  ) {
    super(`watch from index ${fromIndex}: history compacted (oldest ${oldestIndex}), re-list at index ${currentIndex}`);
    this.name = "CompactedError";
  }
}

/** WatcherLaggingError ends a watcher whose sink fell behind (WATCHER_QUEUE_EVENTS_MAX events, WATCHER_QUEUE_BYTES_MAX or WATCH_QUEUE_BYTES_MAX bytes); every change up to lastDeliveredIndex was delivered, so watch again from it. */
export class WatcherLaggingError extends WatchError {
  constructor(readonly lastDeliveredIndex: number) {
    super(`watcher too slow; resume from index ${lastDeliveredIndex}`);
    this.name = "WatcherLaggingError";
  }
}

/** WatchResetError ends every watch when the node's state was replaced by a snapshot; re-list at index (or later). */
export class WatchResetError extends WatchError {
  constructor(readonly index: number) {
    super(`state replaced by a snapshot at index ${index}; re-list at index ${index}`);
    this.name = "WatchResetError";
  }
}

/** WatchersLimitError refuses a watch when the node already has its maximum of watchers. */
export class WatchersLimitError extends WatchError {
  constructor(readonly limit: number) {
    super(`too many watchers on this node (limit ${limit})`);
    this.name = "WatchersLimitError";
  }
}

/**
 * CommandRefusedError is the base of the results apply() refused: the command took no effect
 * (except StaleSessionError, whose outcome is unknown). resultError makes them from a CommandResult.
 */
export class CommandRefusedError extends RegistryError {
  constructor(
    readonly index: number,
    message: string,
  ) {
    super(message);
    this.name = "CommandRefusedError";
  }
}

/** RefusedNotFoundError: the command named a service, instance or session that does not exist. */
export class RefusedNotFoundError extends CommandRefusedError {
  constructor(index: number, message: string) {
    super(index, message);
    this.name = "RefusedNotFoundError";
  }
}

/** RefusedPreconditionError: the command is well-formed but the registry's state does not allow it. */
export class RefusedPreconditionError extends CommandRefusedError {
  constructor(index: number, message: string) {
    super(index, message);
    this.name = "RefusedPreconditionError";
  }
}

/** RefusedExhaustedError: applying the command would take the registry past one of its limits. */
export class RefusedExhaustedError extends CommandRefusedError {
  constructor(index: number, message: string) {
    super(index, message);
    this.name = "RefusedExhaustedError";
  }
}

/** RefusedInvalidError: apply() found the command invalid (a check the API's validators missed). */
export class RefusedInvalidError extends CommandRefusedError {
  constructor(index: number, message: string) {
    super(index, `request: ${message}`);
    this.name = "RefusedInvalidError";
  }
}

/**
 * StaleSessionError: the session seq fell out of the session window, so whether an earlier attempt
 * of it applied is no longer known; the client must read before retrying.
 */
export class StaleSessionError extends CommandRefusedError {
  constructor(index: number, message: string) {
    super(index, `${message}: an earlier attempt of this write may have applied; the outcome is unknown: read before retrying`);
    this.name = "StaleSessionError";
  }
}

/** NoResultError: a proposal applied but the state machine gave no result for it (a bug in the write path). */
export class NoResultError extends RegistryError {
  constructor(readonly op: string) {
    super(`${op} produced no result`);
    this.name = "NoResultError";
  }
}

/** WriteTimeoutError: the write was proposed but not applied here before its deadline; it may still apply. */
export class WriteTimeoutError extends RegistryError {
  constructor(
    readonly op: string,
    readonly waitedMs: number,
  ) {
    super(`${op} was not applied within ${waitedMs} ms; the outcome is unknown: read before retrying`);
    this.name = "WriteTimeoutError";
  }
}

/** UnknownInstanceError: a heartbeat named an instance that is not registered (the leader has no lease for it). */
export class UnknownInstanceError extends RegistryError {
  constructor(
    readonly service: string,
    readonly id: string,
  ) {
    super(`instance ${id} of service ${service} is not registered`);
    this.name = "UnknownInstanceError";
  }
}

/** HeartbeatNotRecordedError: the leader did not record the heartbeat (it could not confirm it still leads, or none is known); send it again. */
export class HeartbeatNotRecordedError extends RegistryError {
  constructor(readonly reason: string) {
    super(`the heartbeat was not recorded (${reason}); send it again`);
    this.name = "HeartbeatNotRecordedError";
  }
}

/** resultError is the typed error of a result apply() refused: the one place where a refusal code becomes a class. */
export function resultError(res: Extract<CommandResult, { ok: false }>): CommandRefusedError {
  switch (res.code) {
    case "not-found":
      return new RefusedNotFoundError(res.index, res.message);
    case "failed-precondition":
      return new RefusedPreconditionError(res.index, res.message);
    case "stale-session":
      return new StaleSessionError(res.index, res.message);
    case "resource-exhausted":
      return new RefusedExhaustedError(res.index, res.message);
    case "invalid-argument":
      return new RefusedInvalidError(res.index, res.message);
  }
}

/** renewError is the typed error of a heartbeat the leader did not acknowledge (code is a RenewResult code other than "ok"). */
export function renewError(code: string | undefined, service: string, id: string): RegistryError {
  if (code === undefined || code === "not-found") return new UnknownInstanceError(service, id);
  return new HeartbeatNotRecordedError(code);
}

/**
 * RowStructureError: bytes of a format-5 snapshot are not instance rows as InstanceRowWriter
 * (snapshot-instance-rows.ts) writes them; the snapshot reader reports it as a MalformedSnapshotError.
 */
export class RowStructureError extends RegistryError {
  constructor(reason: string) {
    super(reason);
    this.name = "RowStructureError";
  }
}

/**
 * NotSliceableSnapshotError: the snapshot's bytes are not laid out as SnapshotWriter writes them, so
 * the sliced reader (state-machine-snapshot.ts) stops and the snapshot is decoded in one go, where
 * a malformed one gets its MalformedSnapshotError. Never reaches a caller.
 */
export class NotSliceableSnapshotError extends RegistryError {
  constructor() {
    super("snapshot not in the sliced layout");
    this.name = "NotSliceableSnapshotError";
  }
}
