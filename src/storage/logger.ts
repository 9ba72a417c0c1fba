/**
 * StorageLogger is the part of a logger the store uses: a fields object and a short message, so a
 * pino logger (or a child of one) fits as it is.
 */
export interface StorageLogger {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/**
 * STDERR_LOGGER is the fallback when the host passes no logger. Warnings go to stderr because a
 * fallback to an older snapshot must never pass silently; info is dropped to keep tools and tests quiet.
 */
export const STDERR_LOGGER: StorageLogger = {
  warn(fields, message) {
    process.stderr.write(`${JSON.stringify({ level: "warn", component: "storage", msg: message, ...fields })}\n`);
  },
  info() {},
};
