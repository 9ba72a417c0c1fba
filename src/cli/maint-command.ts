import { RaftmeshClient } from "../client/index.js";
import { clientTls, endpointsOf, parse, UsageError } from "./args.js";

const USAGE = "usage: raftmesh maint <service> <id> on|off [--reason text]";

/**
 * maint <service> <id> on|off [--reason text]: drains an instance (balancers send it no new
 * requests, in-flight ones finish, failover does not choose it) or returns it to rotation. The
 * instance keeps running and heartbeating; the flag is replicated, so every node's balancer sees it.
 */
export async function maintCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, { endpoints: { type: "string" }, reason: { type: "string" } });
  const [service, id, mode, ...rest] = positionals;
  if (!service || !id || (mode !== "on" && mode !== "off") || rest.length > 0) throw new UsageError(USAGE);
  if (mode === "off" && typeof values.reason === "string") throw new UsageError("--reason: only with on");
  const client = new RaftmeshClient(endpointsOf(values.endpoints, process.env), clientTls());
  try {
    const res = await client.setMaintenance(service, id, mode === "on", typeof values.reason === "string" ? values.reason : "");
    out(`${service}/${id}: maintenance ${mode} (index ${res.index})`);
    return 0;
  } finally {
    client.close();
  }
}
