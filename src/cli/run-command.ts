/**
 * `raftmesh run --service web --id web-1 --port 8080 [--address h] [--ttl ms] [--node h:p,...]
 *  [--log-dir d] [--grace-ms n] [--user u] [--cwd d] [--crash-loop-restarts n] [--crash-loop-window-ms n] -- command args...`: supervise one process
 * (src/local/supervisor.ts) and keep its instance registered (run-instance.ts). Prints one JSON
 * line per event. SIGTERM or SIGINT stops the process (grace period), deregisters, and exits 0.
 */
import { join } from "node:path";
import { RaftmeshClient } from "../client/index.js";
import { SupervisorError } from "../local/errors.js";
import { CRASH_LOOP_RESTARTS, CRASH_LOOP_WINDOW_MS } from "../local/restart-policy.js";
import { Supervisor } from "../local/supervisor.js";
import { clientTls, endpointsOf, parse, UsageError } from "./args.js";
import { SupervisedInstance } from "./run-instance.js";

/** RUN_TTL_MS_DEFAULT: the registry's default lease (README: "default 5 s"). */
const RUN_TTL_MS_DEFAULT = 5_000;

export const RUN_USAGE =
  "usage: raftmesh run --service s --id i [--port n] [--address h] [--ttl ms] [--node host:port,...] [--log-dir dir] [--grace-ms n] [--user u] [--cwd dir] [--crash-loop-restarts n] [--crash-loop-window-ms n] -- command [args...]";

function whole(name: string, v: string | boolean | undefined, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "string" || !/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`--${name}: must be a whole number from ${min} to ${max}, got "${String(v)}"`);
  return Number(v);
}

/** runCommand parses the command line, starts the process and runs until SIGTERM or SIGINT. */
export async function runCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const dash = argv.indexOf("--");
  if (dash < 0 || dash === argv.length - 1) throw new UsageError(`run: the command to run goes after "--"; ${RUN_USAGE}`);
  const [command, ...args] = argv.slice(dash + 1) as [string, ...string[]];
  const { values, positionals } = parse(argv.slice(0, dash), {
    service: { type: "string" },
    id: { type: "string" },
    port: { type: "string" },
    address: { type: "string" },
    ttl: { type: "string" },
    node: { type: "string" },
    endpoints: { type: "string" },
    "log-dir": { type: "string" },
    "grace-ms": { type: "string" },
    user: { type: "string" },
    cwd: { type: "string" },
    "crash-loop-restarts": { type: "string" },
    "crash-loop-window-ms": { type: "string" },
  });
  if (positionals.length > 0) throw new UsageError(`run: unexpected "${positionals[0]}" before "--"; ${RUN_USAGE}`);
  const service = values.service;
  const id = values.id;
  if (typeof service !== "string" || service === "") throw new UsageError(`run: --service is required; ${RUN_USAGE}`);
  if (typeof id !== "string" || id === "") throw new UsageError(`run: --id is required; ${RUN_USAGE}`);
  const port = whole("port", values.port, 0, 1, 65_535);
  const ttlMs = whole("ttl", values.ttl, RUN_TTL_MS_DEFAULT, 1_000, 3_600_000);
  const gracePeriodMs = whole("grace-ms", values["grace-ms"], 10_000, 0, 3_600_000);
  const crashLoopRestarts = whole("crash-loop-restarts", values["crash-loop-restarts"], CRASH_LOOP_RESTARTS, 0, 1_000_000);
  const crashLoopWindowMs = whole("crash-loop-window-ms", values["crash-loop-window-ms"], CRASH_LOOP_WINDOW_MS, 1, 86_400_000);
  const address = typeof values.address === "string" ? values.address : "127.0.0.1";
  const endpoints = endpointsOf(values.node ?? values.endpoints, process.env);
  const logDir = typeof values["log-dir"] === "string" ? values["log-dir"] : join("logs", service);
  let supervisor: Supervisor;
  try {
    supervisor = new Supervisor(`${service}-${id}`, {
      command,
      args,
      gracePeriodMs,
      logDir,
      ...(typeof values.user === "string" ? { user: values.user } : {}),
      ...(typeof values.cwd === "string" ? { cwd: values.cwd } : {}),
    }, { crashLoopRestarts, crashLoopWindowMs });
  } catch (err) {
    if (err instanceof SupervisorError) throw new UsageError(`run: --${err.message}`);
    throw err;
  }
  const client = new RaftmeshClient(endpoints, { ...clientTls(), deadlineMs: ttlMs });
  const instance = new SupervisedInstance({ client, supervisor, service, id, address, port, ttlMs, report: (r) => out(JSON.stringify(r)) });
  instance.start();
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  try {
    await instance.stop();
  } finally {
    client.close();
  }
  return 0;
}
