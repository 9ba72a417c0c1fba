/**
 * The one invariant helper of the layers above the Raft core (node, registry, api, agent); the
 * core keeps its own (src/raft/errors.ts) so that it imports nothing. A broken invariant is a bug:
 * the node must crash, never carry on.
 */

/** InvariantViolationError reports a broken invariant above the core, naming the component whose state broke. */
export class InvariantViolationError extends Error {
  constructor(
    readonly component: string,
    message: string,
  ) {
    super(`${component} invariant: ${message}`);
    this.name = "InvariantViolationError";
  }
}

/** invariant throws InvariantViolationError when cond is false; message may be a function, so costly text is built only on failure. */
export function invariant(cond: unknown, component: string, message: string | (() => string)): asserts cond {
  if (!cond) throw new InvariantViolationError(component, typeof message === "string" ? message : message());
}

/** TlsError is TLS material that cannot be used, naming the field (config key or flag) it came from. */
export class TlsError extends Error {
  constructor(
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${field}: ${message}`, options);
    this.name = "TlsError";
  }
}
