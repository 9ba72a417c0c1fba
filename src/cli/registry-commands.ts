import { servicesRegisterCommand } from "./local-commands.js";
import type { EventMsg, InstanceMsg } from "../common/messages.js";
import { RaftmeshClient, type RegisterOptions } from "../client/index.js";
import { clientTls, endpointsOf, parse, UsageError } from "./args.js";
import { table } from "./table.js";

/** WATCH_RESUME_PAUSE_MS: a broken watch resumes from its last index after this pause. */
const WATCH_RESUME_PAUSE_MS = 500;

function intFlag(name: string, v: string | boolean | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "string" || !/^\d+$/.test(v)) throw new UsageError(`--${name}: must be a whole number, got "${String(v)}"`);
  return Number(v);
}

/** register <service> <id> --address h --port p [--tag t]... [--meta k=v]... [--weight n] [--priority n] [--zone z] [--ttl ms] [--health h [--note text]] */
export async function registerCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, {
    endpoints: { type: "string" },
    address: { type: "string" },
    port: { type: "string" },
    tags: { type: "string" },
    meta: { type: "string" },
    weight: { type: "string" },
    priority: { type: "string" },
    zone: { type: "string" },
    ttl: { type: "string" },
    "deregister-after": { type: "string" },
    health: { type: "string" },
    note: { type: "string" },
  });
  const [service, id, ...rest] = positionals;
  if (!service || !id || rest.length > 0) {
    throw new UsageError("usage: raftmesh register <service> <id> --address host --port n [--tags a,b] [--meta k=v,k2=v2] [--weight n] [--priority n] [--zone z] [--ttl ms] [--deregister-after ms] [--health passing|warning|critical] [--note text]");
  }
  if (typeof values.address !== "string") throw new UsageError("register: --address is required");
  const metadata: Record<string, string> = {};
  for (const kv of typeof values.meta === "string" && values.meta ? values.meta.split(",") : []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new UsageError(`--meta: "${kv}" is not key=value`);
    metadata[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const instance: Partial<InstanceMsg> & { id: string; service: string; address: string; port: number } = {
    id,
    service,
    address: values.address,
    port: intFlag("port", values.port, 0),
    tags: typeof values.tags === "string" && values.tags ? values.tags.split(",") : [],
    metadata,
    weight: intFlag("weight", values.weight, 0),
    priority: intFlag("priority", values.priority, 0),
    zone: typeof values.zone === "string" ? values.zone : "",
    ttlMs: intFlag("ttl", values.ttl, 0),
    deregisterCriticalAfterMs: intFlag("deregister-after", values["deregister-after"], 0),
  };
  const client = new RaftmeshClient(endpointsOf(values.endpoints, process.env), clientTls());
  try {
    const res = await client.register(instance, initialHealth(values.health, values.note));
    out(`registered ${service}/${id} (index ${res.index})`);
    return 0;
  } finally {
    client.close();
  }
}

/** initialHealth reads --health and --note: the health a registration starts with (the server checks both, as a heartbeat's). */
function initialHealth(health: unknown, note: unknown): Pick<RegisterOptions, "health" | "note"> {
  if (health === undefined) {
    if (note !== undefined) throw new UsageError("register: --note goes with --health");
    return {};
  }
  // Any word goes to the server, which names the field when it is not a health.
  return { health: String(health) as RegisterOptions["health"], note: typeof note === "string" ? note : "" };
}

/** deregister <service> <id> */
export async function deregisterCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, { endpoints: { type: "string" } });
  const [service, id, ...rest] = positionals;
  if (!service || !id || rest.length > 0) throw new UsageError("usage: raftmesh deregister <service> <id>");
  const client = new RaftmeshClient(endpointsOf(values.endpoints, process.env), clientTls());
  try {
    const res = await client.deregister(service, id);
    out(`deregistered ${service}/${id} (index ${res.index})`);
    return 0;
  } finally {
    client.close();
  }
}

/** services [--json] [--stale] */
export async function servicesCommand(argv: string[], out: (s: string) => void): Promise<number> {
  if (argv[0] === "register") return servicesRegisterCommand(argv.slice(1), out);
  const { values, positionals } = parse(argv, { endpoints: { type: "string" }, json: { type: "boolean" }, stale: { type: "boolean" } });
  if (positionals.length > 0) throw new UsageError("usage: raftmesh services [--json] [--stale]");
  const client = new RaftmeshClient(endpointsOf(values.endpoints, process.env), clientTls());
  try {
    const res = await client.listServices({ stale: values.stale === true });
    if (values.json) out(JSON.stringify(res, null, 2));
    else {
      out(
        table(
          ["SERVICE", "INSTANCES", "PASSING", "WARNING", "CRITICAL", "POLICY", "MODE"],
          res.services.map((s) => [s.name, String(s.instances), String(s.passing), String(s.warning), String(s.critical), s.config?.policy ?? "", s.config?.mode ?? ""]),
        ),
      );
      out(`index: ${res.index}`);
    }
    return 0;
  } finally {
    client.close();
  }
}

/** instances <service> [--passing] [--json] [--stale] */
export async function instancesCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, {
    endpoints: { type: "string" },
    json: { type: "boolean" },
    stale: { type: "boolean" },
    passing: { type: "boolean" },
  });
  const [service, ...rest] = positionals;
  if (!service || rest.length > 0) throw new UsageError("usage: raftmesh instances <service> [--passing] [--json] [--stale]");
  const client = new RaftmeshClient(endpointsOf(values.endpoints, process.env), clientTls());
  try {
    const res = await client.getService(service, { stale: values.stale === true, passingOnly: values.passing === true });
    if (values.json) out(JSON.stringify(res, null, 2));
    else {
      out(
        table(
          ["ID", "ADDRESS", "HEALTH", "WEIGHT", "PRIORITY", "ZONE", "TAGS", "NOTE"],
          res.instances.map((i) => [i.id, `${i.address}:${i.port}`, i.health, String(i.weight), String(i.priority), i.zone, i.tags.join(","), i.note]),
        ),
      );
      out(`index: ${res.index}`);
    }
    return 0;
  } finally {
    client.close();
  }
}

function describe(e: EventMsg): string {
  if (e.kind === "kv") return `${e.index} kv ${e.type} ${e.key}${e.kv ? ` = ${e.kv.value.toString("utf8")}` : ""}`;
  if (e.kind === "instance") return `${e.index} instance ${e.type} ${e.name}/${e.id}${e.instance ? ` ${e.instance.address}:${e.instance.port} ${e.instance.health}` : ""}`;
  if (e.kind === "master" && e.master) {
    const m = e.master;
    return `${e.index} master ${m.reason} ${m.service}: ${m.master || "(none)"} epoch ${m.epoch}${m.previous ? ` (was ${m.previous})` : ""}`;
  }
  return `${e.index} service ${e.type} ${e.name}`;
}

/** watch [--service s] [--prefix p] [--from n] [--json]: prints changes until Ctrl-C, resuming after breaks. */
export async function watchCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, {
    endpoints: { type: "string" },
    service: { type: "string" },
    prefix: { type: "string" },
    from: { type: "string" },
    json: { type: "boolean" },
  });
  if (positionals.length > 0) throw new UsageError("usage: raftmesh watch [--service name] [--prefix key-prefix] [--from index] [--json]");
  const client = new RaftmeshClient(endpointsOf(values.endpoints, process.env), clientTls());
  let from = intFlag("from", values.from, 0);
  return new Promise<number>((resolve) => {
    const start = () =>
      client.watch(
        { fromIndex: from, service: typeof values.service === "string" ? values.service : "", keyPrefix: typeof values.prefix === "string" ? values.prefix : "" },
        {
          onMessage: (m) => {
            for (const e of m.events) out(values.json ? JSON.stringify(e) : describe(e));
            from = Math.max(from, m.index);
          },
          onEnd: (err) => {
            if (err && (err.code === 11 /* OUT_OF_RANGE */ || err.code === 3)) {
              process.stderr.write(`raftmesh: ${err.message}\n`);
              client.close();
              resolve(1);
              return;
            }
            // A broken stream (node restart, leader change) resumes from the last index seen.
            setTimeout(start, WATCH_RESUME_PAUSE_MS);
          },
        },
      );
    start();
  });
}

/** heartbeat <service> <id> [--status s] [--note n] [--position n]: renew a lease once (for scripts and checks). */
export async function heartbeatCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, { endpoints: { type: "string" }, status: { type: "string" }, note: { type: "string" }, position: { type: "string" } });
  const [service, id, ...rest] = positionals;
  if (!service || !id || rest.length > 0) {
    throw new UsageError("usage: raftmesh heartbeat <service> <id> [--status passing|warning|critical] [--note text] [--position n]");
  }
  const replicationPosition = intFlag("position", values.position, 0);
  if (!Number.isSafeInteger(replicationPosition)) throw new UsageError(`--position: must be below 2^53, got "${String(values.position)}"`);
  const client = new RaftmeshClient(endpointsOf(values.endpoints, process.env), clientTls());
  try {
    const status = typeof values.status === "string" ? values.status : "";
    const res = await client.heartbeat(service, id, status, typeof values.note === "string" ? values.note : "", { replicationPosition });
    out(`${service}/${id}: ${res.health}, lease ${res.ttlMs} ms${res.role ? `, ${res.role} at epoch ${res.epoch}` : ""}`);
    return 0;
  } finally {
    client.close();
  }
}

/** failover <service> [--to id]: switch a master-slave service's master over in one entry. */
export async function failoverCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, { endpoints: { type: "string" }, to: { type: "string" } });
  const [service, ...rest] = positionals;
  if (!service || rest.length > 0) throw new UsageError("usage: raftmesh failover <service> [--to instance-id]");
  const client = new RaftmeshClient(endpointsOf(values.endpoints, process.env), clientTls());
  try {
    const res = await client.failover(service, { to: typeof values.to === "string" ? values.to : "" });
    out(`${service}: master ${res.master} at epoch ${res.epoch}`);
    return 0;
  } finally {
    client.close();
  }
}
