/** UsageError is a command line the CLI cannot run; the message says what is wrong. Exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
