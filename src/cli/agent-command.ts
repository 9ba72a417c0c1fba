import { Agent } from "../agent/agent.js";
import { applyHeapGrowth } from "../agent/heap.js";
import { startIdleHeap } from "../agent/idle-heap.js";
import { createLogger } from "../agent/logger.js";
import { FIELDS, loadConfig } from "../config/index.js";
import { parse, UsageError } from "./args.js";

/** AGENT_STOP_TIMEOUT_MS: a clean stop that takes longer than this is abandoned and the process exits non-zero. */
const AGENT_STOP_TIMEOUT_MS = 10_000;

/** agentHelp lists every setting with its flag and environment variable. */
export function agentHelp(): string {
  const rows = FIELDS.map((f) => `  --${f.flag.padEnd(18)} ${f.env.padEnd(26)} ${f.help}${f.fallback !== undefined ? ` (default ${f.fallback})` : ""}`);
  return ["usage: raftmesh agent [--config file.json] [flags]", "", "Every setting: flag, environment variable, meaning:", ...rows].join("\n");
}

/** runAgent starts a node and keeps it running until SIGINT or SIGTERM. */
export async function runAgent(argv: string[]): Promise<void> {
  const options: Record<string, { type: "string" }> = { config: { type: "string" } };
  for (const f of FIELDS) options[f.flag] = { type: "string" };
  const { values, positionals } = parse(argv, options);
  if (positionals.length > 0) throw new UsageError(`agent takes no positional arguments, got "${positionals.join(" ")}"`);
  const { config: file, ...flags } = values;
  const config = loadConfig({ file: typeof file === "string" ? file : undefined, env: process.env, flags });
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, nodeId: config.nodeId });
  // Process-wide, so here and not in Agent (tests run several agents in one process).
  applyHeapGrowth(config.heapGrowthPercent);
  if (config.idleHeapShrink) startIdleHeap({ logger });
  // The signal handlers go in before the node starts: a SIGTERM that arrives while it is still
  // starting (its API may already answer while the balancer's workers are being spawned, and an
  // empty node may wait without bound for its peers to say whether the cluster exists) must end the
  // process with status 0, not by the signal's default action. There is nothing to stop cleanly yet,
  // and the start may never finish, so the process exits at once: as a crash would, which loses
  // nothing (every write is synced before anyone is told it happened).
  let agent: Agent | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const started = agent;
    if (started === undefined) {
      logger.info({ signal }, "stopping while still starting: exiting now");
      process.exit(0);
    }
    logger.info({ signal }, "stopping");
    setTimeout(() => {
      logger.error({ timeoutMs: AGENT_STOP_TIMEOUT_MS }, "clean stop took too long; exiting");
      process.exit(1);
    }, AGENT_STOP_TIMEOUT_MS).unref();
    started.stop().then(
      () => process.exit(process.exitCode ?? 0),
      (err: unknown) => {
        logger.error({ err }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
  // SIGHUP reloads the service definitions (the node's other settings are read once, at start);
  // while starting there is nothing to reload: the definitions are read as the start finishes.
  process.on("SIGHUP", () => {
    if (agent === undefined) {
      logger.info({ signal: "SIGHUP" }, "still starting: service definitions are read as the start finishes");
      return;
    }
    logger.info({ signal: "SIGHUP" }, "reloading service definitions");
    agent.reloadServices().catch((err: unknown) => logger.error({ err }, "reload failed"));
  });
  agent = await Agent.start(config, logger, (err) => {
    logger.fatal({ err }, "node failed; exiting so a supervisor can restart it");
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 100).unref();
  });
}
