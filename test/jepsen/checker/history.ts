/**
 * History types for the linearizability checker.
 *
 * A history is a set of operations, each an interval [call, return] on one monotonic clock. The
 * checker never looks at clientId for ordering (only real time matters); it is kept for reports
 * and so that parsers and recorders can pair invocations with completions.
 */

/**
 * OpStatus is how an operation ended, as the client saw it.
 *
 * - `ok`: it completed and `output` is what it observed.
 * - `fail`: it definitely did not take effect. Two kinds, told apart by `output` (see classifyOp).
 * - `info`: the client does not know whether it took effect (timeout, lost connection, crash).
 */
export type OpStatus = "ok" | "fail" | "info";

/** Operation is one client request in a history. */
export interface Operation<Input, Output> {
  /** clientId names the client (Jepsen "process") that issued the operation. */
  readonly clientId: number;
  /** input is what was asked, e.g. `{ f: "write", value: 3 }`. */
  readonly input: Input;
  /**
   * output is what the client observed, or undefined when nothing was observed: always for an
   * indeterminate operation, for a `fail` that was never executed, and allowed for an `ok` write
   * whose reply carries no information.
   */
  readonly output: Output | undefined;
  /** call is the monotonic time at which the operation was invoked. */
  readonly call: number;
  /** return is the monotonic time of completion; Infinity when the operation never completed. */
  readonly return: number;
  /** status is how the operation ended (see OpStatus). */
  readonly status: OpStatus;
}

/** History is an unordered list of operations; the checker sorts by time itself. */
export type History<Input, Output> = readonly Operation<Input, Output>[];

/**
 * OpKind is how the checker treats an operation.
 *
 * - `completed`: it took effect exactly once, somewhere inside [call, return], with its observed
 *   output; a linearization must include it.
 * - `indeterminate`: it may have taken effect at any point after its call (with no observed
 *   output), or never; a linearization may include it or leave it out.
 * - `dropped`: it is known not to have taken effect and observed nothing; it constrains nothing.
 */
export type OpKind = "completed" | "indeterminate" | "dropped";

/**
 * classifyOp decides how the checker treats an operation. The rules, and why:
 *
 * - `info`: indeterminate. A finite `return` on an `info` op only says when the client gave up
 *   waiting; the request may still be applied later, so the checker takes its return to be
 *   +Infinity whatever was recorded.
 * - `ok`: completed.
 * - `fail` WITH an output: completed. This is a failure that is itself a result, e.g. a CAS whose
 *   compare failed: it did not change the state, but it did observe that the state was not the
 *   expected value at some point in its interval. Dropping it would lose a real constraint
 *   (Jepsen's `:fail :cas` is of this kind, so the parser records it with output `false`).
 * - `fail` WITHOUT an output: dropped. The request was rejected before it was executed (not the
 *   leader, bad request) or, being a read, has no effect and its answer was lost: either way it
 *   neither changed nor observed anything, as if it had never been sent.
 *
 * A completed operation must have a finite return at or after its call; validateOp checks that.
 */
export function classifyOp<I, O>(op: Operation<I, O>): OpKind {
  if (op.status === "info") return "indeterminate";
  if (op.status === "ok") return "completed";
  return op.output === undefined ? "dropped" : "completed";
}

/**
 * validateOp throws if an operation's times cannot be right: a NaN call or return, a call after
 * the return, or a completed operation without a finite return (its result arrived, so it must
 * have arrived at some time; Infinity is only for indeterminate operations).
 */
export function validateOp<I, O>(op: Operation<I, O>): void {
  if (!Number.isFinite(op.call)) {
    throw new RangeError(`operation of client ${op.clientId}: call time ${op.call} is not finite`);
  }
  if (Number.isNaN(op.return) || op.return < op.call) {
    throw new RangeError(
      `operation of client ${op.clientId}: return ${op.return} is before call ${op.call}`,
    );
  }
  if (classifyOp(op) === "completed" && !Number.isFinite(op.return)) {
    throw new RangeError(
      `operation of client ${op.clientId}: status ${op.status} with an infinite return; ` +
        "an operation that never completed must have status info",
    );
  }
}
