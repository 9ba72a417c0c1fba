/**
 * Expected failures of the registry module. The API maps them to gRPC status codes in one place;
 * tests assert the class and its fields, not message strings.
 */

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
