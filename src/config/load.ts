import { readFileSync } from "node:fs";
import { TlsError } from "../common/errors.js";
import { readTlsMaterial } from "../common/tls.js";
import { ConfigError } from "./errors.js";
import { type AgentConfig, FIELDS } from "./schema.js";

/** ConfigSources are the three places settings come from; later ones win: file < environment < flags. */
export interface ConfigSources {
  readonly file?: string;
  readonly env: Record<string, string | undefined>;
  readonly flags: Record<string, string | boolean | undefined>;
}

/**
 * loadConfig merges file, environment and flags through one schema and validates the result;
 * any bad or unknown field raises ConfigError naming the field and where it came from.
 */
export function loadConfig(src: ConfigSources): AgentConfig {
  const fileValues = src.file ? readConfigFile(src.file) : {};
  const known = new Set(FIELDS.map((f) => f.flag));
  for (const flag of Object.keys(src.flags)) {
    if (flag !== "config" && !known.has(flag)) throw new ConfigError(flag, "flags", "unknown flag");
  }
  const fileKeys = new Set<string>(FIELDS.map((f) => f.key));
  for (const key of Object.keys(fileValues)) {
    if (!fileKeys.has(key)) throw new ConfigError(key, `file ${src.file}`, "unknown field");
  }
  const out: Record<string, unknown> = {};
  for (const f of FIELDS) {
    const flag = src.flags[f.flag];
    const env = src.env[f.env];
    const file = fileValues[f.key];
    if (flag !== undefined) out[f.key] = f.parse(flag, `--${f.flag}`);
    else if (env !== undefined && env !== "") out[f.key] = f.parse(env, f.env);
    else if (file !== undefined) out[f.key] = f.parse(file, `file ${src.file}`);
    else if (f.fallback !== undefined) out[f.key] = f.fallback;
    else throw new ConfigError(f.key, "all sources", `is required (set --${f.flag} or ${f.env})`);
  }
  const cfg = out as unknown as AgentConfig;
  checkCrossFields(cfg);
  return cfg;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError("config", "--config", `cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError("config", "--config", `${path} is not a JSON object: ${(err as Error).message}`);
  }
}

function checkCrossFields(cfg: AgentConfig): void {
  if (cfg.electionTicks <= cfg.heartbeatTicks) {
    throw new ConfigError("electionTicks", "merged", `must exceed heartbeatTicks (${cfg.heartbeatTicks}), got ${cfg.electionTicks}`);
  }
  if (cfg.bootstrap && !cfg.members.some((m) => m.id === cfg.nodeId)) {
    throw new ConfigError("members", "merged", `must include this node (${cfg.nodeId}) to bootstrap a new cluster`);
  }
  checkTls(cfg);
  checkBalancerTls(cfg);
}

/** checkBalancerTls: HTTPS on the endpoint needs a certificate (its own pair, or the node's); each file is read now so a bad one names its field. */
function checkBalancerTls(cfg: AgentConfig): void {
  const own = cfg.balancerTlsCert !== "" || cfg.balancerTlsKey !== "";
  if (own && (cfg.balancerTlsCert === "" || cfg.balancerTlsKey === "")) {
    throw new ConfigError(cfg.balancerTlsCert === "" ? "balancerTlsCert" : "balancerTlsKey", "merged", "is needed with the other of balancerTlsCert and balancerTlsKey");
  }
  if (own && !cfg.balancerTls) throw new ConfigError("balancerTls", "merged", "must be true when balancerTlsCert and balancerTlsKey are set");
  if (cfg.balancerTls && !own && cfg.tlsCert === "") throw new ConfigError("balancerTls", "merged", "needs balancerTlsCert and balancerTlsKey, or the node's TLS (tlsCa, tlsCert, tlsKey)");
  try {
    if (own) readTlsMaterial({ ca: "", cert: cfg.balancerTlsCert, key: cfg.balancerTlsKey }, { ca: "balancerUpstreamCa", cert: "balancerTlsCert", key: "balancerTlsKey" });
    if (cfg.balancerUpstreamCa !== "") readTlsMaterial({ ca: cfg.balancerUpstreamCa }, { ca: "balancerUpstreamCa", cert: "tlsCert", key: "tlsKey" });
  } catch (err) {
    if (err instanceof TlsError) throw new ConfigError(err.field, "merged", err.message.slice(err.field.length + 2));
    throw err;
  }
}

/** checkTls insists on all three TLS files or none, and reads them now so a bad file is a configuration error naming its field. */
function checkTls(cfg: AgentConfig): void {
  const set = { tlsCa: cfg.tlsCa, tlsCert: cfg.tlsCert, tlsKey: cfg.tlsKey };
  const given = Object.entries(set).filter(([, v]) => v !== "");
  if (given.length === 0) {
    if (cfg.tlsClientAuth) throw new ConfigError("tlsClientAuth", "merged", "needs tlsCa, tlsCert and tlsKey");
    return;
  }
  const missing = Object.entries(set).find(([, v]) => v === "");
  if (missing) throw new ConfigError(missing[0], "merged", `is needed with ${given.map(([k]) => k).join(" and ")} (TLS takes all three)`);
  let members: readonly string[];
  try {
    members = readTlsMaterial({ ca: cfg.tlsCa, cert: cfg.tlsCert, key: cfg.tlsKey }, { ca: "tlsCa", cert: "tlsCert", key: "tlsKey" }).members;
  } catch (err) {
    if (err instanceof TlsError) throw new ConfigError(err.field, "merged", err.message.slice(err.field.length + 2));
    throw err;
  }
  if (!members.includes(cfg.nodeId)) {
    const named = members.length ? members.map((m) => `"${m}"`).join(", ") : "no member";
    throw new ConfigError("tlsCert", "merged", `${cfg.tlsCert} names ${named} (SAN URI raftmesh://member/<id>), not this node "${cfg.nodeId}"`);
  }
}
