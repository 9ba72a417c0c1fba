/**
 * Service definitions: JSON files in the node's services directory. A file holds one definition
 * (an object) or several (`{ "services": [ ... ] }`). Every field is checked here, and a bad one
 * is refused with a DefinitionError naming the file and the field's path; the registry checks the
 * instance again when it is registered (its limits are the last word), so this layer catches
 * shapes and obvious ranges without importing the server.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { DefinitionError } from "./errors.js";
import {
  CHECK_INTERVAL_MS_DEFAULT,
  CHECK_INTERVAL_MS_RANGE,
  CHECK_TIMEOUT_MS_DEFAULT,
  CHECK_TIMEOUT_MS_RANGE,
  CHECKS_PER_INSTANCE_MAX,
  DEFINITION_FILE_BYTES_MAX,
  DEFINITION_FILES_MAX,
  FALL_DEFAULT,
  JITTER_MS_MAX,
  LOCAL_INSTANCES_MAX,
  RISE_DEFAULT,
  RISE_FALL_RANGE,
} from "./limits.js";
import { type CheckSpec, type Definition, definitionKey, type InstanceDef, type Probe, type ProcessSpec } from "./types.js";

/** NAME_PATTERN is the registry's pattern for service names and instance ids. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** TTL_MS_DEFAULT is the registry's default lease (DEFAULT_TTL_MS); the local agent heartbeats every third of it. */
const TTL_MS_DEFAULT = 5_000;
/** The registry's ranges (src/registry/limits.ts), repeated for early, file-named errors. */
const PORT_RANGE = [1, 65_535] as const;
const WEIGHT_RANGE = [0, 10_000] as const;
const PRIORITY_RANGE = [0, 1_000_000] as const;
const TTL_MS_RANGE = [1_000, 3_600_000] as const;
const GRACE_PERIOD_MS_RANGE = [0, 600_000] as const;

/** ParseContext carries the file name and the defaults that depend on the node (where process logs go). */
export interface ParseContext {
  readonly file: string;
  /** logDir is the default directory of a process's logs; the definition's key is appended. */
  readonly logDir: string;
}

type Obj = Record<string, unknown>;

class Reader {
  constructor(
    readonly file: string,
    readonly path: string,
    readonly o: Obj,
  ) {}

  fail(key: string, reason: string): never {
    throw new DefinitionError(this.file, this.at(key), reason);
  }
  at(key: string): string {
    if (key === "") return this.path;
    return this.path === "" ? key : `${this.path}.${key}`;
  }
  known(keys: readonly string[]): void {
    for (const k of Object.keys(this.o)) if (!keys.includes(k)) this.fail(k, `is not a known field (known: ${keys.join(", ")})`);
  }
  str(key: string, dflt?: string, pattern?: RegExp): string {
    const v = this.o[key];
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== "string") this.fail(key, v === undefined ? "is required" : "must be a string");
    if (pattern && !pattern.test(v)) this.fail(key, `must match ${pattern}`);
    return v;
  }
  int(key: string, range: readonly [number, number], dflt?: number): number {
    const v = this.o[key];
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== "number" || !Number.isSafeInteger(v)) this.fail(key, v === undefined ? "is required" : "must be an integer");
    if (v < range[0] || v > range[1]) this.fail(key, `must be within [${range[0]}, ${range[1]}], got ${v}`);
    return v;
  }
  strings(key: string, nonEmpty = false): string[] {
    const v = this.o[key] ?? [];
    if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) this.fail(key, "must be an array of strings");
    if (nonEmpty && v.length === 0) this.fail(key, "must not be empty");
    return v as string[];
  }
  strmap(key: string): Record<string, string> {
    const v = this.o[key] ?? {};
    if (!isObj(v) || Object.values(v).some((s) => typeof s !== "string")) this.fail(key, "must be an object of strings");
    return { ...(v as Record<string, string>) };
  }
  obj(key: string): Reader | undefined {
    const v = this.o[key];
    if (v === undefined) return undefined;
    if (!isObj(v)) this.fail(key, "must be an object");
    return new Reader(this.file, this.at(key), v);
  }
}

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const DEFINITION_KEYS = ["service", "id", "address", "port", "tags", "metadata", "weight", "priority", "zone", "ttlMs", "checks", "process"] as const;
const CHECK_KEYS = ["name", "http", "method", "headers", "body", "tcp", "grpc", "grpcService", "args", "intervalMs", "timeoutMs", "rise", "fall", "jitterMs"] as const;
const PROCESS_KEYS = ["command", "args", "env", "cwd", "user", "gracePeriodMs", "logDir"] as const;

/** parseDefinitions reads one file's JSON text into its definitions, or throws a DefinitionError. */
export function parseDefinitions(text: string, ctx: ParseContext): Definition[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DefinitionError(ctx.file, "", `is not JSON: ${(err as Error).message}`);
  }
  if (!isObj(json)) throw new DefinitionError(ctx.file, "", "must hold a JSON object (one definition, or { \"services\": [ ... ] })");
  if (!("services" in json)) return [parseOne(new Reader(ctx.file, "", json), ctx)];
  const list = json.services;
  if (Object.keys(json).length !== 1) throw new DefinitionError(ctx.file, "", 'with "services" must have no other field');
  if (!Array.isArray(list)) throw new DefinitionError(ctx.file, "services", "must be an array");
  const out = list.map((item, i) => {
    if (!isObj(item)) throw new DefinitionError(ctx.file, `services[${i}]`, "must be an object");
    return parseOne(new Reader(ctx.file, `services[${i}]`, item), ctx);
  });
  const seen = new Set<string>();
  out.forEach((d, i) => {
    const key = definitionKey(d);
    if (seen.has(key)) throw new DefinitionError(ctx.file, `services[${i}]`, `defines ${key} a second time`);
    seen.add(key);
  });
  return out;
}

function parseOne(r: Reader, ctx: ParseContext): Definition {
  r.known(DEFINITION_KEYS);
  const instance: InstanceDef = {
    service: r.str("service", undefined, NAME_PATTERN),
    id: r.str("id", undefined, NAME_PATTERN),
    address: r.str("address", "127.0.0.1"),
    port: r.int("port", PORT_RANGE),
    tags: r.strings("tags"),
    metadata: r.strmap("metadata"),
    weight: r.int("weight", WEIGHT_RANGE, 1),
    priority: r.int("priority", PRIORITY_RANGE, 0),
    zone: r.str("zone", ""),
    ttlMs: r.int("ttlMs", TTL_MS_RANGE, TTL_MS_DEFAULT),
  };
  if (instance.address === "") r.fail("address", "must not be empty");
  const checksRaw = r.o.checks ?? [];
  if (!Array.isArray(checksRaw)) r.fail("checks", "must be an array");
  if (checksRaw.length > CHECKS_PER_INSTANCE_MAX) r.fail("checks", `has ${checksRaw.length} checks; at most ${CHECKS_PER_INSTANCE_MAX} (CHECKS_PER_INSTANCE_MAX)`);
  const checks = checksRaw.map((c, i) => {
    if (!isObj(c)) r.fail(`checks[${i}]`, "must be an object");
    return parseCheck(new Reader(r.file, r.at(`checks[${i}]`), c), i);
  });
  const names = new Set<string>();
  checks.forEach((c, i) => {
    if (names.has(c.name)) r.fail(`checks[${i}].name`, `"${c.name}" is used by another check of this instance`);
    names.add(c.name);
  });
  const p = r.obj("process");
  const key = `${instance.service}-${instance.id}`;
  return { file: ctx.file, instance, checks, ...(p ? { process: parseProcess(p, join(ctx.logDir, key)) } : {}) };
}

function parseCheck(r: Reader, index: number): CheckSpec {
  r.known(CHECK_KEYS);
  const kinds = (["http", "tcp", "grpc", "args"] as const).filter((k) => r.o[k] !== undefined);
  if (kinds.length !== 1) r.fail("", `must have exactly one of http, tcp, grpc, args (has ${kinds.length === 0 ? "none" : kinds.join(", ")})`);
  const kind = kinds[0] as (typeof kinds)[number];
  if (kind !== "http") for (const k of ["method", "headers", "body"]) if (r.o[k] !== undefined) r.fail(k, "applies to http checks only");
  if (kind !== "grpc" && r.o.grpcService !== undefined) r.fail("grpcService", "applies to grpc checks only");
  const probe = parseProbe(r, kind);
  const intervalMs = r.int("intervalMs", CHECK_INTERVAL_MS_RANGE, CHECK_INTERVAL_MS_DEFAULT);
  const timeoutMs = r.int("timeoutMs", CHECK_TIMEOUT_MS_RANGE, Math.min(CHECK_TIMEOUT_MS_DEFAULT, intervalMs));
  const timing = {
    intervalMs,
    timeoutMs,
    rise: r.int("rise", RISE_FALL_RANGE, RISE_DEFAULT),
    fall: r.int("fall", RISE_FALL_RANGE, FALL_DEFAULT),
    jitterMs: r.int("jitterMs", [0, JITTER_MS_MAX], Math.floor(intervalMs / 10)),
  };
  const name = r.str("name", `${probe.kind}-${index}`, NAME_PATTERN);
  return { name, probe, timing };
}

function parseProbe(r: Reader, kind: "http" | "tcp" | "grpc" | "args"): Probe {
  switch (kind) {
    case "http": {
      const url = r.str("http");
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        r.fail("http", `must be a URL, got "${url}"`);
      }
      if (parsed.protocol !== "http:") r.fail("http", "must be an http:// URL (https checks are not supported yet)");
      const method = r.str("method", "GET", /^[A-Z]+$/);
      return { kind: "http", url, method, headers: r.strmap("headers"), body: r.str("body", "") };
    }
    case "tcp":
      return { kind: "tcp", ...hostPort(r, "tcp", r.str("tcp")) };
    case "grpc":
      return { kind: "grpc", ...hostPort(r, "grpc", r.str("grpc")), service: r.str("grpcService", "") };
    case "args":
      return { kind: "script", args: r.strings("args", true) };
  }
}

function hostPort(r: Reader, key: string, v: string): { host: string; port: number } {
  const cut = v.lastIndexOf(":");
  const host = v.slice(0, cut).replace(/^\[|\]$/g, "");
  const port = Number(v.slice(cut + 1));
  if (cut <= 0 || host === "" || !Number.isInteger(port) || port < PORT_RANGE[0] || port > PORT_RANGE[1]) r.fail(key, `must be host:port, got "${v}"`);
  return { host, port };
}

function parseProcess(r: Reader, logDir: string): ProcessSpec {
  r.known(PROCESS_KEYS);
  const command = r.str("command");
  if (command === "") r.fail("command", "must not be empty");
  const user = r.str("user", "");
  const cwd = r.str("cwd", "");
  return {
    command,
    args: r.strings("args"),
    env: r.strmap("env"),
    ...(cwd !== "" ? { cwd } : {}),
    ...(user !== "" ? { user } : {}),
    // Without one, the supervisor's own default applies.
    ...(r.o.gracePeriodMs !== undefined ? { gracePeriodMs: r.int("gracePeriodMs", GRACE_PERIOD_MS_RANGE) } : {}),
    logDir: r.str("logDir", logDir),
  };
}

/** FileOutcome is one file's load: its definitions, or the error that refused it. */
export type FileOutcome = { readonly file: string; readonly definitions: readonly Definition[] } | { readonly file: string; readonly error: DefinitionError };

/**
 * readDefinitionsDir reads every `*.json` file of dir, in name order, each on its own: a bad file
 * is reported and does not stop the others. A missing directory reads as empty.
 */
export async function readDefinitionsDir(dir: string, logDir: string): Promise<FileOutcome[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith(".json") && !n.startsWith(".")).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  if (names.length > DEFINITION_FILES_MAX) names = names.slice(0, DEFINITION_FILES_MAX);
  const out: FileOutcome[] = [];
  for (const name of names) {
    const file = join(dir, name);
    try {
      const st = await stat(file);
      if (st.size > DEFINITION_FILE_BYTES_MAX) throw new DefinitionError(file, "", `is ${st.size} bytes; at most ${DEFINITION_FILE_BYTES_MAX} (DEFINITION_FILE_BYTES_MAX)`);
      out.push({ file, definitions: parseDefinitions(await readFile(file, "utf8"), { file, logDir }) });
    } catch (err) {
      if (err instanceof DefinitionError) out.push({ file, error: err });
      else if ((err as NodeJS.ErrnoException).code === "ENOENT") continue; // removed while reading: it is gone
      else out.push({ file, error: new DefinitionError(file, "", `cannot be read: ${(err as Error).message}`) });
    }
  }
  return out;
}

/**
 * mergeOutcomes turns file outcomes into the definitions in force: a good file's definitions; for
 * a bad file, the last good version of that file (lastGood), or nothing if it never was good. A
 * definition defined by two files is kept from the first file (in name order) and the second is
 * reported. At most LOCAL_INSTANCES_MAX definitions are kept; the rest are reported.
 */
export function mergeOutcomes(
  outcomes: readonly FileOutcome[],
  lastGood: ReadonlyMap<string, readonly Definition[]>,
): { definitions: Map<string, Definition>; good: Map<string, readonly Definition[]>; errors: DefinitionError[] } {
  const definitions = new Map<string, Definition>();
  const good = new Map<string, readonly Definition[]>();
  const errors: DefinitionError[] = [];
  for (const o of outcomes) {
    let defs: readonly Definition[];
    if ("error" in o) {
      errors.push(o.error);
      defs = lastGood.get(o.file) ?? [];
    } else {
      defs = o.definitions;
    }
    if (defs.length > 0) good.set(o.file, defs);
    for (const d of defs) {
      const key = definitionKey(d);
      const other = definitions.get(key);
      if (other) errors.push(new DefinitionError(o.file, "id", `${key} is already defined in ${other.file}; this one is ignored`));
      else if (definitions.size >= LOCAL_INSTANCES_MAX) errors.push(new DefinitionError(o.file, "", `${key} is past LOCAL_INSTANCES_MAX (${LOCAL_INSTANCES_MAX}); ignored`));
      else definitions.set(key, d);
    }
  }
  return { definitions, good, errors };
}
