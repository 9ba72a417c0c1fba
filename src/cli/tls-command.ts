/**
 * `raftmesh tls init`: a development CA and one certificate per node (and one client certificate
 * for the CLI), written as PEM files. Node certificates name their member by the SAN URI
 * raftmesh://member/<id> (what peers check), and carry DNS and IP names for clients that check
 * host names. An existing CA in the directory is kept, so nodes can be added later.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { join } from "node:path";
import { memberUri } from "../common/tls.js";
import { NODE_ID_PATTERN } from "../config/index.js";
import { parse, UsageError } from "./args.js";
import { type Issuer, issueCertificate, newKeyPair, toPem } from "./x509.js";

/** CERT_DAYS_RANGE: at least a day; at most ten years, past which a development CA is a liability. */
export const CERT_DAYS_RANGE = [1, 3650] as const;
/** CERT_DAYS_DEFAULT: node certificates for a year (the expiry metric and alert say when to renew). */
export const CERT_DAYS_DEFAULT = 365;
/** CA_DAYS: the development CA outlives every certificate it may sign. */
const CA_DAYS = 3650;
/** BACKDATE_MS: certificates start an hour early so machines whose clocks lag a little accept them. */
const BACKDATE_MS = 3_600_000;
/** ORGANIZATION names the issuer of the development CA. */
const ORGANIZATION = "raftmesh development";
/** HOSTNAME_PATTERN: a DNS name (labels of letters, digits, -). */
const HOSTNAME_PATTERN = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
/** DEFAULT_HOSTS: every node certificate works on loopback. */
const DEFAULT_HOSTS = ["localhost", "127.0.0.1", "::1"];

export const TLS_HELP = `raftmesh tls init --dir <d> --nodes n1,n2,n3 [--hosts h,...] [--days n] [--client name]

Writes a development CA (ca.pem, ca-key.pem; an existing one in <d> is kept) and, for each node,
<id>.pem and <id>-key.pem: SAN URI raftmesh://member/<id> (what peers check), DNS <id>, localhost,
127.0.0.1, ::1 and each --hosts entry. Also <client>.pem and <client>-key.pem (default "client"),
a client certificate for the CLI and SDK (--cert/--key) that names no member.`;

/** TlsInitOptions are what `tls init` is asked for. */
export interface TlsInitOptions {
  readonly dir: string;
  readonly nodes: readonly string[];
  readonly hosts?: readonly string[];
  readonly days?: number;
  readonly client?: string;
  readonly now?: Date;
}

/** TlsInitResult lists the files written. */
export interface TlsInitResult {
  readonly ca: string;
  readonly caKept: boolean;
  readonly files: string[];
}

/** tlsInit writes the CA (unless present) and the node and client certificates into dir. */
export function tlsInit(opts: TlsInitOptions): TlsInitResult {
  const now = opts.now ?? new Date();
  const days = opts.days ?? CERT_DAYS_DEFAULT;
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const caPath = join(opts.dir, "ca.pem");
  const caKeyPath = join(opts.dir, "ca-key.pem");
  const files: string[] = [];
  let issuer: Issuer;
  const caKept = existsSync(caPath) && existsSync(caKeyPath);
  if (caKept) {
    const caCert = new X509Certificate(readFileSync(caPath));
    const privateKey = createPrivateKey(readFileSync(caKeyPath));
    const cn = /CN=([^\n]+)/.exec(caCert.subject)?.[1] ?? "raftmesh development CA";
    const org = /O=([^\n]+)/.exec(caCert.subject)?.[1] ?? ORGANIZATION;
    issuer = { commonName: cn, organization: org, privateKey, publicKey: createPublicKey(privateKey) };
  } else {
    const keys = newKeyPair();
    issuer = { commonName: "raftmesh development CA", organization: ORGANIZATION, ...keys };
    const der = issueCertificate(
      { commonName: issuer.commonName, organization: ORGANIZATION, notBefore: new Date(now.getTime() - BACKDATE_MS), notAfter: addDays(now, CA_DAYS), publicKey: keys.publicKey, ca: true },
      issuer,
    );
    writeKey(caKeyPath, keys.privateKey);
    writeFileSync(caPath, toPem(der));
    files.push(caPath, caKeyPath);
  }
  const hosts = [...DEFAULT_HOSTS, ...(opts.hosts ?? [])];
  for (const id of opts.nodes) {
    const names = [id, ...hosts];
    files.push(...issueLeaf(opts.dir, id, { uris: [memberUri(id)], dns: unique(names.filter((h) => isIP(h) === 0)), ips: unique(names.filter((h) => isIP(h) !== 0)) }, issuer, now, days));
  }
  const client = opts.client ?? "client";
  files.push(...issueLeaf(opts.dir, client, { uris: [`raftmesh://client/${client}`] }, issuer, now, days));
  return { ca: caPath, caKept, files };
}

function issueLeaf(dir: string, name: string, altNames: { uris: string[]; dns?: string[]; ips?: string[] }, issuer: Issuer, now: Date, days: number): string[] {
  const keys = newKeyPair();
  const der = issueCertificate(
    { commonName: name, organization: ORGANIZATION, notBefore: new Date(now.getTime() - BACKDATE_MS), notAfter: addDays(now, days), publicKey: keys.publicKey, ca: false, altNames },
    issuer,
  );
  const certPath = join(dir, `${name}.pem`);
  const keyPath = join(dir, `${name}-key.pem`);
  writeKey(keyPath, keys.privateKey);
  writeFileSync(certPath, toPem(der));
  return [certPath, keyPath];
}

function writeKey(path: string, key: KeyObject): void {
  writeFileSync(path, key.export({ type: "pkcs8", format: "pem" }) as string, { mode: 0o600 });
}

function addDays(d: Date, days: number): Date {
  return new Date(d.getTime() + days * 86_400_000);
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** tlsCommand runs `raftmesh tls <subcommand>`. */
export function tlsCommand(argv: string[], out: (s: string) => void): number {
  const [sub, ...rest] = argv;
  if (sub !== "init") throw new UsageError(`tls: unknown subcommand "${sub ?? ""}"; usage:\n${TLS_HELP}`);
  const { values, positionals } = parse(rest, { dir: { type: "string" }, nodes: { type: "string" }, hosts: { type: "string" }, days: { type: "string" }, client: { type: "string" } });
  if (positionals.length > 0) throw new UsageError(`tls init: unexpected argument "${positionals[0]}"`);
  if (typeof values.dir !== "string" || values.dir === "") throw new UsageError("tls init: --dir is needed");
  if (typeof values.nodes !== "string") throw new UsageError("tls init: --nodes is needed (n1,n2,...)");
  const nodes = values.nodes.split(",").map((s) => s.trim()).filter(Boolean);
  if (nodes.length === 0) throw new UsageError("tls init: --nodes lists no node");
  for (const n of nodes) if (!NODE_ID_PATTERN.test(n)) throw new UsageError(`tls init: --nodes: "${n}" is not a node id (lower-case letters, digits, -)`);
  const hosts = typeof values.hosts === "string" ? values.hosts.split(",").map((s) => s.trim()).filter(Boolean) : [];
  for (const h of hosts) if (isIP(h) === 0 && !HOSTNAME_PATTERN.test(h)) throw new UsageError(`tls init: --hosts: "${h}" is neither an IP address nor a DNS name`);
  let days = CERT_DAYS_DEFAULT;
  if (values.days !== undefined) {
    days = Number(values.days);
    if (!/^\d+$/.test(String(values.days)) || days < CERT_DAYS_RANGE[0] || days > CERT_DAYS_RANGE[1]) {
      throw new UsageError(`tls init: --days must be an integer from ${CERT_DAYS_RANGE[0]} to ${CERT_DAYS_RANGE[1]}, got "${values.days}"`);
    }
  }
  const client = typeof values.client === "string" ? values.client : "client";
  if (!NODE_ID_PATTERN.test(client) || nodes.includes(client)) throw new UsageError(`tls init: --client: "${client}" must be a name like a node id and not one of the nodes`);
  const result = tlsInit({ dir: values.dir, nodes, hosts, days, client });
  out(result.caKept ? `kept the CA in ${result.ca}` : `wrote a new CA: ${result.ca}`);
  for (const f of result.files) out(`wrote ${f}`);
  return 0;
}
