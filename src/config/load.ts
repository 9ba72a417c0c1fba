import { readFileSync } from "node:fs";
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
}
