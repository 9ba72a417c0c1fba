import type { Logger } from "../common/logger.js";

/** StorageLogger is the part of the project's Logger (src/common/logger.ts) the store uses. */
export type StorageLogger = Pick<Logger, "warn" | "info">;

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
