import { parseArgs } from "node:util";
import { UsageError } from "./errors.js";

export { UsageError };

/** ENDPOINTS_DEFAULT are the client API addresses of the local cluster `npm start` runs (and the compose file publishes). */
export const ENDPOINTS_DEFAULT = "127.0.0.1:7201,127.0.0.1:7202,127.0.0.1:7203";

/** parse parses argv strictly: an unknown flag or a missing value is a UsageError naming it. */
export function parse(
  argv: string[],
  options: Record<string, { type: "string" | "boolean"; short?: string }>,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** endpointsOf reads --endpoints, then RAFTMESH_ENDPOINTS, then the local default. */
export function endpointsOf(flag: string | boolean | undefined, env: NodeJS.ProcessEnv): string[] {
  const raw = typeof flag === "string" ? flag : env.RAFTMESH_ENDPOINTS || ENDPOINTS_DEFAULT;
  const list = raw.split(",").map((s) => s.trim()).filter(Boolean);
  for (const e of list) {
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(e)) throw new UsageError(`--endpoints: "${e}" is not host:port`);
  }
  if (list.length === 0) throw new UsageError("--endpoints: at least one host:port is needed");
  return list;
}
