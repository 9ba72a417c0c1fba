/** Errors of the local agent's supervised processes. */

/** SupervisorError is a process the supervisor cannot start as asked (bad user, not root); the message names the field. */
export class SupervisorError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SupervisorError";
  }
}

/**
 * DefinitionError: a service definition is malformed. It names the file and the field (a JSON
 * path such as `services[1].checks[0].intervalMs`), so an operator can fix it from the log line.
 */
export class DefinitionError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${file}: ${field === "" ? "" : `${field} `}${reason}`);
    this.name = "DefinitionError";
  }
}

/** ProcessUnavailableError: a definition names a process, but this node was built without a process supervisor. */
export class ProcessUnavailableError extends Error {
  constructor(readonly key: string) {
    super(`${key}: a definition names a process, but this node has no process supervisor`);
    this.name = "ProcessUnavailableError";
  }
}
