import { parseArgs } from "node:util";
import { type ClientTlsOptions, TlsError, tlsFromEnv } from "../client/index.js";
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

/** TLS_FLAGS are the client TLS flags every client command takes; main() moves them into the environment. */
export const TLS_FLAGS: Readonly<Record<string, string>> = {
  "--ca": "RAFTMESH_CA",
  "--cert": "RAFTMESH_CERT",
  "--key": "RAFTMESH_KEY",
  "--tls-server-name": "RAFTMESH_TLS_SERVER_NAME",
};

/** TOKEN_FLAGS: the access token every client command takes (RAFTMESH_TOKEN), moved into the environment like the TLS flags. */
export const TOKEN_FLAGS: Readonly<Record<string, string>> = { "--token": "RAFTMESH_TOKEN" };

/**
 * takeTlsFlags removes --ca, --cert, --key, --tls-server-name and --token (as "--f v" or "--f=v")
 * from argv and sets their environment variables, so each command's own parser never sees them and
 * every client the command makes dials the same way. Arguments after "--" are left alone.
 */
export function takeTlsFlags(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const [flag, inline] = a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
    const name = TLS_FLAGS[flag] ?? TOKEN_FLAGS[flag];
    if (!name) {
      out.push(a);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || value === "") throw new UsageError(`${flag} needs a value`);
    env[name] = value;
  }
  return out;
}

/**
 * clientTls is the SDK's connection options from the environment (flags were moved there by
 * takeTlsFlags): TLS ({} means plaintext) and the access token of RAFTMESH_TOKEN, if any.
 */
export function clientTls(env: NodeJS.ProcessEnv = process.env): { tls?: ClientTlsOptions; serverName?: string; token?: string } {
  let tls: ClientTlsOptions | undefined;
  try {
    tls = tlsFromEnv(env);
  } catch (err) {
    if (err instanceof TlsError) throw new UsageError(err.message.replace("RAFTMESH_CA", "--ca (RAFTMESH_CA)"));
    throw err;
  }
  const serverName = env.RAFTMESH_TLS_SERVER_NAME || undefined;
  const token = env.RAFTMESH_TOKEN || undefined;
  return { ...(tls ? { tls, serverName } : {}), ...(token ? { token } : {}) };
}
