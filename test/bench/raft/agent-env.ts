/**
 * parseAgentEnv reads a bench's --agent-env: NAME=VALUE pairs separated by commas, added to the
 * agents' environment only (not the load generator's), so a glibc or V8 setting is compared side
 * by side. Shared by bench:raft and agent-memory.ts.
 */
export function parseAgentEnv(raw: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of raw.split(",").filter((p) => p !== "")) {
    const eq = pair.indexOf("=");
    if (eq < 1) throw new Error(`--agent-env: "${pair}" is not NAME=VALUE`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}
