/**
 * TransportLogger is the part of a logger the transport uses: a fields object and a short message,
 * so a pino logger (or a child of one) fits as it is. When `child` exists, each component and each
 * peer logs through its own child, so every line says which side and which peer it is about.
 */
export interface TransportLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  child?(bindings: Record<string, unknown>): TransportLogger;
}

/** childLogger returns logger.child(bindings) when the logger has children, else a logger that adds the bindings itself. */
export function childLogger(logger: TransportLogger, bindings: Record<string, unknown>): TransportLogger {
  if (logger.child) return logger.child(bindings);
  return {
    debug: (fields, message) => logger.debug({ ...bindings, ...fields }, message),
    info: (fields, message) => logger.info({ ...bindings, ...fields }, message),
    warn: (fields, message) => logger.warn({ ...bindings, ...fields }, message),
    error: (fields, message) => logger.error({ ...bindings, ...fields }, message),
  };
}

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
