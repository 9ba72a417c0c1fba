/**
 * Logger is the one logger type of raftmesh: every component logs a fields object and a short
 * message (pino's calling convention, so the agent's pino logger, or a child of one, fits as it
 * is). A component takes the levels it uses (Pick<Logger, ...>), so a test can hand it a small fake.
 * When `child` exists, each component logs through its own child, so every line says what it is about.
 */
export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  child?(bindings: Record<string, unknown>): Logger;
}

/** childLogger returns logger.child(bindings) when the logger has children, else a logger that adds the bindings itself. */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  if (logger.child) return logger.child(bindings);
  return {
    debug: (fields, message) => logger.debug({ ...bindings, ...fields }, message),
    info: (fields, message) => logger.info({ ...bindings, ...fields }, message),
    warn: (fields, message) => logger.warn({ ...bindings, ...fields }, message),
    error: (fields, message) => logger.error({ ...bindings, ...fields }, message),
  };
}
