/**
 * How a failed client call is recorded: `fail` only when the call certainly did not take effect,
 * `info` (indeterminate) otherwise. Getting this wrong either way breaks the checkers: a `fail`
 * that did happen makes a correct system look broken, an `info` that did not happen only costs
 * search time.
 */
import { status } from "@grpc/grpc-js";
import { RaftmeshError } from "../../../src/client/index.js";

/** DEFINITE_FAILURE_CODES are statuses the server returns only for requests it did not apply. */
const DEFINITE_FAILURE_CODES: ReadonlySet<number> = new Set([status.ABORTED, status.FAILED_PRECONDITION, status.INVALID_ARGUMENT, status.NOT_FOUND]);

/**
 * NOT_SENT_PREFIX starts the details grpc-js gives a call it failed before writing it to any
 * transport (the channel had no connection: the node is down or refusing). Such a request never
 * left this process, so it cannot have taken effect. Without this, every write to a killed node
 * would be indeterminate and the linearizability search would drown in them.
 */
const NOT_SENT_PREFIX = "No connection established";

/** errorOutcome classifies a failed write: fail if it surely did not happen, else info. */
export function errorOutcome(err: unknown): "fail" | "info" {
  if (!(err instanceof RaftmeshError)) return "info";
  if (err.notApplied || DEFINITE_FAILURE_CODES.has(err.code)) return "fail";
  if (err.code === status.UNAVAILABLE && err.details.startsWith(NOT_SENT_PREFIX)) return "fail";
  return "info";
}

/** errorText is a short description of an error for the history. */
export function errorText(err: unknown): string {
  if (err instanceof RaftmeshError) return `${status[err.code] ?? err.code}${err.notApplied ? " (not applied)" : ""}: ${err.details}`.slice(0, 200);
  return String((err as Error)?.message ?? err).slice(0, 200);
}
