/** Errors of the local agent's supervised processes. */

/** SupervisorError is a process the supervisor cannot start as asked (bad user, not root); the message names the field. */
export class SupervisorError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SupervisorError";
  }
}
