import pino, { type Logger } from "pino";

/** createLogger makes the agent's root logger: JSON lines on stdout, or pino-pretty for a terminal. */
export function createLogger(opts: { level: string; format: "auto" | "json" | "pretty"; nodeId: string }): Logger {
  const base = { node: opts.nodeId };
  const pretty = opts.format === "pretty" || (opts.format === "auto" && process.stdout.isTTY === true);
  if (pretty) {
    return pino({ level: opts.level, base }, pino.transport({ target: "pino-pretty", options: { colorize: true, translateTime: "HH:MM:ss.l" } }));
  }
  return pino({ level: opts.level, base });
}
