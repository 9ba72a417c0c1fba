import type { Logger } from "../common/logger.js";

/** TransportLogger is the project's Logger (src/common/logger.ts), all levels: each side and each peer logs through its own child. */
export type TransportLogger = Logger;

/** childLogger is the shared one (src/common/logger.ts). */
export { childLogger } from "../common/logger.js";

/**
 * STDERR_LOGGER is the fallback when the host passes no logger. Warnings and errors go to stderr
 * because a refused peer or a corrupt snapshot must never pass silently; info and debug are
 * dropped to keep tools and tests quiet.
 */
export const STDERR_LOGGER: TransportLogger = {
  debug() {},
  info() {},
  warn(fields, message) {
    writeLine("warn", fields, message);
  },
  error(fields, message) {
    writeLine("error", fields, message);
  },
};

function writeLine(level: string, fields: object, message: string): void {
  const plain = Object.fromEntries(
    Object.entries(fields).map(([k, v]) => [k, v instanceof Error ? { name: v.name, message: v.message } : v]),
  );
  process.stderr.write(`${JSON.stringify({ level, component: "transport", msg: message, ...plain })}\n`);
}
