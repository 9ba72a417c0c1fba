/** UsageError is a command line the CLI cannot run; the message says what is wrong. Exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** AdminError is a refusal or failure answered by a node's admin endpoint (a bad definition names its field). Exit status 1. */
export class AdminError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "AdminError";
  }
}
