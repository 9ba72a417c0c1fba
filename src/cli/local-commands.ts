/**
 * The commands that talk to one node's local agent through its admin endpoint: `reload` and
 * `services register -f file.json`. They act on the node they are pointed at (--admin), as Consul's
 * `consul reload` and `consul services register` act on the local agent.
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { basename } from "node:path";
import { AdminError } from "./errors.js";
import { clientTls, parse, UsageError } from "./args.js";

/** ADMIN_DEFAULT is the admin endpoint of a node on this machine with the default settings. */
export const ADMIN_DEFAULT = "127.0.0.1:7400";
/** ADMIN_CALL_TIMEOUT_MS bounds one admin call: a reload reads a directory and registers over loopback. */
const ADMIN_CALL_TIMEOUT_MS = 30_000;

function adminOf(flag: string | boolean | undefined, env: NodeJS.ProcessEnv): string {
  const raw = typeof flag === "string" ? flag : env.RAFTMESH_ADMIN || ADMIN_DEFAULT;
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(raw)) throw new UsageError(`--admin: "${raw}" is not host:port`);
  return raw;
}

/** AdminAnswer is an admin endpoint's status and body. */
interface AdminAnswer {
  readonly status: number;
  readonly ok: boolean;
  text(): Promise<string>;
}

/** postHttps posts over HTTPS to a node with TLS on (--ca, and --cert/--key when it asks clients for a certificate). */
function postHttps(admin: string, path: string, body: string | undefined, tls: { ca: string; cert?: string; key?: string }, serverName?: string, headers: Record<string, string> = {}): Promise<AdminAnswer> {
  const cut = admin.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: admin.slice(0, cut).replace(/^\[|\]$/g, ""),
        port: Number(admin.slice(cut + 1)),
        path,
        method: "POST",
        headers,
        ca: readFileSync(tls.ca),
        cert: tls.cert ? readFileSync(tls.cert) : undefined,
        key: tls.key ? readFileSync(tls.key) : undefined,
        servername: serverName,
        signal: AbortSignal.timeout(ADMIN_CALL_TIMEOUT_MS),
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          text += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, ok: (res.statusCode ?? 0) < 300, text: async () => text }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function post(admin: string, path: string, body?: string): Promise<unknown> {
  let res: AdminAnswer;
  const { tls, serverName, token } = clientTls();
  // With access control on, the admin port wants the same token as the client API (an admin rule).
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  try {
    res = tls ? await postHttps(admin, path, body, tls, serverName, headers) : await fetch(`http://${admin}${path}`, { method: "POST", body, headers, signal: AbortSignal.timeout(ADMIN_CALL_TIMEOUT_MS) });
  } catch (err) {
    throw new AdminError(0, `cannot reach the admin endpoint ${admin}: ${(err as Error).cause ?? (err as Error).message}`);
  }
  const text = await res.text();
  let json: { error?: string } & Record<string, unknown>;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AdminError(res.status, `admin endpoint ${admin} answered ${res.status}: ${text.slice(0, 200)}`);
  }
  if (!res.ok) throw new AdminError(res.status, json.error ?? `admin endpoint ${admin} answered ${res.status}`);
  return json;
}

/** summary prints a reload report in one line per outcome. */
function summary(r: { added?: string[]; changed?: string[]; removed?: string[]; unchanged?: number; errors?: { file: string; field: string; reason: string }[] }, out: (s: string) => void): number {
  out(`added: ${r.added?.join(", ") || "-"}; changed: ${r.changed?.join(", ") || "-"}; removed: ${r.removed?.join(", ") || "-"}; unchanged: ${r.unchanged ?? 0}`);
  for (const e of r.errors ?? []) out(`error: ${e.file}: ${e.field} ${e.reason}`);
  return (r.errors?.length ?? 0) > 0 ? 1 : 0;
}

/** reload [--admin h:p] [--json]: the node reads its services directory again (as on SIGHUP). Exit 1 when a file was refused. */
export async function reloadCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, { admin: { type: "string" }, json: { type: "boolean" } });
  if (positionals.length > 0) throw new UsageError("usage: raftmesh reload [--admin host:port] [--json]");
  const report = (await post(adminOf(values.admin, process.env), "/reload")) as Parameters<typeof summary>[0];
  if (values.json) {
    out(JSON.stringify(report, null, 2));
    return (report.errors?.length ?? 0) > 0 ? 1 : 0;
  }
  return summary(report, out);
}

/**
 * services register -f file.json [--name n.json] [--admin h:p]: the node validates the definition,
 * writes it into its services directory (so it lives as long as the file, across restarts) and
 * reloads. A bad definition is refused naming the field, and nothing is written.
 */
export async function servicesRegisterCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, { file: { type: "string", short: "f" }, name: { type: "string" }, admin: { type: "string" } });
  if (positionals.length > 0 || typeof values.file !== "string") throw new UsageError("usage: raftmesh services register -f file.json [--name name.json] [--admin host:port]");
  let text: string;
  try {
    text = await readFile(values.file, "utf8");
  } catch (err) {
    throw new UsageError(`-f: cannot read ${values.file}: ${(err as Error).message}`);
  }
  const name = typeof values.name === "string" ? values.name : basename(values.file);
  const report = await post(adminOf(values.admin, process.env), `/services?name=${encodeURIComponent(name)}`, text);
  return summary(report as Parameters<typeof summary>[0], out);
}
