/**
 * Pure validators of registry requests. The API calls them before proposing (to answer
 * INVALID_ARGUMENT naming the field); apply() calls them again, defensively, because the log is
 * the only thing every node agrees on and a bad command must be refused the same way everywhere.
 * Each throws ValidationError(field, reason) on the first field out of its limits.
 */
import { echo } from "../common/echo.js";
import { ValidationError } from "./errors.js";
import { type Check, CONFIG_FIELDS, SPEC_FIELDS } from "./fields.js";
import {
  CLIENT_ID_BYTES_MAX,
  CONTROL_CHARS,
  HEALTH_CHANGES_MAX,
  KV_KEY_BYTES_MAX,
  KV_VALUE_BYTES_MAX,
  METADATA_ENTRIES_MAX,
  METADATA_KEY_BYTES_MAX,
  METADATA_VALUE_BYTES_MAX,
  NAME_BYTES_MAX,
  NAME_PATTERN,
  NOTE_BYTES_MAX,
  REPLICATION_POSITION_MAX,
  TAG_BYTES_MAX,
  TAGS_MAX,
  TXN_OPS_MAX,
} from "./limits.js";
import {
  HEALTH_VALUES,
  type HealthChange,
  type InstanceSpec,
  type KvCompare,
  type KvOp,
  type PositionReport,
  type ServiceConfig,
  type Session,
} from "./types.js";

const encoder = new TextEncoder();

/** byteLength is the UTF-8 size of a string. */
export function byteLength(s: string): number {
  // Most names are ASCII: a string no longer than the limit in UTF-16 units needs no encoding when all are ASCII.
  let ascii = true;
  for (let i = 0; i < s.length && ascii; i++) if (s.charCodeAt(i) > 0x7f) ascii = false;
  return ascii ? s.length : encoder.encode(s).length;
}

function str(field: string, v: unknown): string {
  if (typeof v !== "string") throw new ValidationError(field, "must be a string");
  return v;
}

function maxBytes(field: string, v: unknown, max: number): string {
  const s = str(field, v);
  const n = byteLength(s);
  if (n > max) throw new ValidationError(field, `is ${n} bytes, more than the limit of ${max}`);
  return s;
}

function intIn(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new ValidationError(field, "must be an integer");
  if (v < min || v > max) throw new ValidationError(field, `must be in [${min}, ${max}], got ${v}`);
  return v;
}

function oneOf<T extends string>(field: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
    throw new ValidationError(field, `must be one of ${allowed.join(", ")}`);
  }
  return v as T;
}

/** validateName checks a service name or instance id: NAME_PATTERN, at most NAME_BYTES_MAX bytes. */
export function validateName(name: unknown, field: string): void {
  const s = maxBytes(field, name, NAME_BYTES_MAX);
  if (s.length === 0) throw new ValidationError(field, "must not be empty");
  if (!NAME_PATTERN.test(s)) throw new ValidationError(field, "must be letters, digits, '.', '_' or '-', starting with a letter or digit");
}

/** validateServiceName checks a service name. */
export function validateServiceName(name: unknown, field = "service"): void {
  validateName(name, field);
}

/**
 * InputRules says which rules a value is held to. "request": everything a client sends now, the
 * strictest rules. "log": a command already in the Raft log, held to the rules in force when such
 * commands were first accepted (no address pattern, empty or control-character tags and control
 * characters in KV keys allowed). Applying an entry must give the same result on every node and at
 * every replay, whatever build applies it: a node that restores a snapshot taken after an older
 * build applied such an entry, and a node that replays the entry itself, must agree. New rules
 * therefore apply to requests only, and entries already written keep the rules they were written
 * under (a later change of the log format may retire them).
 */
export type InputRules = "request" | "log";

/** checkField validates one value by its row's check (fields.ts). */
export function checkField(check: Check, v: unknown, field: string, rules: InputRules = "request"): void {
  switch (check.k) {
    case "name":
      validateName(v, field);
      return;
    case "name-or-empty":
      if (str(field, v) !== "") validateName(v, field);
      return;
    case "bytes": {
      const s = maxBytes(field, v, check.max);
      if (check.nonEmpty && s.length === 0) throw new ValidationError(field, "must not be empty");
      if (check.pattern && s !== "" && (rules === "request" || check.requestOnly !== true) && !check.pattern.test(s)) throw new ValidationError(field, check.patternText ?? `must match ${check.pattern}`);
      return;
    }
    case "int": {
      const n = intIn(field, v, check.min, check.max);
      if (check.minNonZero !== undefined && n !== 0 && n < check.minNonZero) {
        throw new ValidationError(field, `must be 0 (never) or at least ${check.minNonZero}, got ${n}`);
      }
      return;
    }
    case "one-of":
      oneOf(field, v, check.values);
      return;
    case "bool":
      if (typeof v !== "boolean") throw new ValidationError(field, "must be a boolean");
      return;
    case "tags":
      validateTags(v, field, rules);
      return;
    case "metadata":
      validateMetadata(v, field);
      return;
    case "none":
      return;
  }
}

/**
 * SPEC_PATHS_MAX bounds the cache of spec field paths by prefix ("instance", "instance" of a
 * nested request...): a handful in practice; past it paths are built per call as before.
 */
const SPEC_PATHS_MAX = 16;
const specPaths = new Map<string, readonly string[]>();

/** specPathsOf is `${prefix}.${name}` for every spec row, built once per prefix (a registration checked 15 fields, twice). */
function specPathsOf(prefix: string): readonly string[] {
  let paths = specPaths.get(prefix);
  if (paths === undefined) {
    paths = SPEC_FIELDS.map((f) => `${prefix}.${f.name}`);
    if (specPaths.size < SPEC_PATHS_MAX) specPaths.set(prefix, paths);
  }
  return paths;
}

/** validateInstanceSpec checks every field of a registration (the spec rows of INSTANCE_FIELDS). */
export function validateInstanceSpec(spec: InstanceSpec, field = "instance", rules: InputRules = "request"): void {
  if (typeof spec !== "object" || spec === null) throw new ValidationError(field, "must be an object");
  const paths = specPathsOf(field);
  for (let k = 0; k < SPEC_FIELDS.length; k++) {
    const f = SPEC_FIELDS[k]!;
    checkField(f.check, (spec as unknown as Record<string, unknown>)[f.name], paths[k]!, rules);
  }
}

// The tag and metadata checks below name an element (`tags[2]`, `metadata["k"]`) only when it is
// refused: building each name up front cost a registration ~1 KB of strings, on the node that
// received it and again on every node applying it.

function validateTags(tags: unknown, field: string, rules: InputRules): void {
  if (!Array.isArray(tags)) throw new ValidationError(field, "must be a list of strings");
  if (tags.length > TAGS_MAX) throw new ValidationError(field, `must have at most ${TAGS_MAX} tags, got ${tags.length}`);
  for (let i = 0; i < tags.length; i++) {
    const t: unknown = tags[i];
    if (typeof t !== "string" || byteLength(t) > TAG_BYTES_MAX) maxBytes(`${field}[${i}]`, t, TAG_BYTES_MAX);
    if (rules === "log") continue;
    const s = t as string;
    if (s.length === 0) throw new ValidationError(`${field}[${i}]`, "must not be empty");
    if (CONTROL_CHARS.test(s)) throw new ValidationError(`${field}[${i}]`, "must not contain control characters (CR, LF, NUL, ...)");
  }
}

function validateMetadata(md: unknown, field: string): void {
  if (typeof md !== "object" || md === null || Array.isArray(md)) throw new ValidationError(field, "must be a map of strings");
  const keys = Object.keys(md);
  if (keys.length > METADATA_ENTRIES_MAX) throw new ValidationError(field, `must have at most ${METADATA_ENTRIES_MAX} entries, got ${keys.length}`);
  const at = (k: string) => `${field}[${JSON.stringify(echo(k))}]`;
  for (const k of keys) {
    if (k.length === 0) throw new ValidationError(at(k), "key must not be empty");
    if (byteLength(k) > METADATA_KEY_BYTES_MAX) throw new ValidationError(at(k), `key must be at most ${METADATA_KEY_BYTES_MAX} bytes`);
    const v = (md as Record<string, unknown>)[k];
    if (typeof v !== "string" || byteLength(v) > METADATA_VALUE_BYTES_MAX) maxBytes(at(k), v, METADATA_VALUE_BYTES_MAX);
  }
}

/** validateServiceConfig checks a service's config (CONFIG_FIELDS, then the rules between fields); `name`, when given, is the service's own (a service is not its own fallback). */
export function validateServiceConfig(config: ServiceConfig, name?: string, field = "config"): void {
  if (typeof config !== "object" || config === null) throw new ValidationError(field, "must be an object");
  for (const f of CONFIG_FIELDS) checkField(f.check, config[f.name], `${field}.${f.name}`);
  if (config.fallback !== "" && config.fallback === name) throw new ValidationError(`${field}.fallback`, "must not be the service itself");
  if (config.policy === "hash" && config.hashOn === "") throw new ValidationError(`${field}.hashOn`, "must be set with policy hash");
}

/** validateKvKey checks a key: not empty, at most KV_KEY_BYTES_MAX bytes. */
export function validateKvKey(key: unknown, field = "key", rules: InputRules = "request"): void {
  const s = maxBytes(field, key, KV_KEY_BYTES_MAX);
  if (s.length === 0) throw new ValidationError(field, "must not be empty");
  if (rules === "request") noControl(field, s);
}

/** noControl refuses C0 control characters and DEL (CONTROL_CHARS). */
function noControl(field: string, s: string): void {
  if (CONTROL_CHARS.test(s)) throw new ValidationError(field, "must not contain control characters (NUL, CR, LF, ESC, ...)");
}

/** validateKvPrefix checks a prefix (of a list or a prefix delete): may be empty (everything), at most KV_KEY_BYTES_MAX bytes. */
export function validateKvPrefix(prefix: unknown, field = "prefix", rules: InputRules = "request"): void {
  const s = maxBytes(field, prefix, KV_KEY_BYTES_MAX);
  if (rules === "request") noControl(field, s);
}

/**
 * BASE64_ALPHABET marks the character codes of base64's 64 letters (RFC 4648 §4, "+" and "/").
 * base64Bytes scans with it instead of a pattern: the pattern it replaced,
 * /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, took 4.0 ms for a 500 KB
 * value here, the scan 1.1 ms, and every node runs it on every kv.put it applies. Both accept
 * exactly the same strings (validate.test.ts compares them), as they must: a node that accepted
 * what another refused would apply the same entry differently.
 */
const BASE64_ALPHABET = (() => {
  const table = new Uint8Array(128);
  for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") table[c.charCodeAt(0)] = 1;
  return table;
})();

/** PAD is "=", base64's padding. */
const PAD = 0x3d;

/**
 * lastCanonical is the last string base64Bytes found canonical, and its size: requestDigest and
 * the state machine's check look at the same value of a kv.put back to back, and one scan serves
 * both (a string compares equal to itself without a scan).
 */
let lastCanonical: { readonly b64: string; readonly bytes: number } = { b64: "", bytes: 0 };

/**
 * base64Bytes is the decoded size of base64 in whole groups of four letters, padded with at most
 * two "=" (what Buffer#toString("base64") writes, though the unused bits of a padded group are not
 * checked), or -1 if it is not that.
 */
export function base64Bytes(b64: string): number {
  if (b64 === lastCanonical.b64) return lastCanonical.bytes;
  const n = b64.length;
  if (n % 4 !== 0) return -1;
  const pad = n === 0 ? 0 : b64.charCodeAt(n - 1) !== PAD ? 0 : b64.charCodeAt(n - 2) !== PAD ? 1 : 2;
  for (let i = 0; i < n - pad; i++) {
    const c = b64.charCodeAt(i);
    if (c > 127 || BASE64_ALPHABET[c] === 0) return -1;
  }
  const bytes = (n / 4) * 3 - pad;
  lastCanonical = { b64, bytes };
  return bytes;
}

/** validateKvValue checks a value: canonical base64 of at most KV_VALUE_BYTES_MAX bytes. */
export function validateKvValue(value: unknown, field = "value"): void {
  const s = str(field, value);
  // The request size limit of the API bounds how long a string can reach this scan.
  const n = base64Bytes(s);
  if (n < 0) throw new ValidationError(field, "must be base64");
  validateKvValueSize(n, field);
}

/** validateKvValueSize checks a value's size in bytes: what the API checks of the bytes a client sent, before it encodes them. */
export function validateKvValueSize(bytes: number, field = "value"): void {
  if (bytes > KV_VALUE_BYTES_MAX) throw new ValidationError(field, `is ${bytes} bytes, more than the limit of ${KV_VALUE_BYTES_MAX}`);
}

/** Txn is the part of a kv.txn command validateTxn checks. */
export interface Txn {
  readonly compares: readonly KvCompare[];
  readonly success: readonly KvOp[];
  readonly failure: readonly KvOp[];
}

const COMPARE_TARGETS = ["value", "mod", "create", "version"] as const;
const COMPARE_OPS = ["==", "!=", "<", ">"] as const;

/** validateTxn checks a transaction: at most TXN_OPS_MAX compares plus operations, each key and value valid. */
export function validateTxn(txn: Txn, field = "txn", rules: InputRules = "request"): void {
  const { compares, success, failure } = txn;
  if (!Array.isArray(compares) || !Array.isArray(success) || !Array.isArray(failure)) {
    throw new ValidationError(field, "must have lists compares, success and failure");
  }
  const total = compares.length + success.length + failure.length;
  if (total > TXN_OPS_MAX) throw new ValidationError(field, `must have at most ${TXN_OPS_MAX} compares and operations, got ${total}`);
  compares.forEach((c, i) => {
    const at = `${field}.compares[${i}]`;
    validateKvKey(c.key, `${at}.key`, rules);
    const target = oneOf(`${at}.target`, c.target, COMPARE_TARGETS);
    oneOf(`${at}.op`, c.op, COMPARE_OPS);
    if (target === "value" && c.value !== undefined) validateKvValue(c.value, `${at}.value`);
    if (target !== "value" && c.number !== undefined) intIn(`${at}.number`, c.number, 0, Number.MAX_SAFE_INTEGER);
  });
  for (const [i, op] of success.entries()) validateKvOp(op, `${field}.success[${i}]`, rules);
  for (const [i, op] of failure.entries()) validateKvOp(op, `${field}.failure[${i}]`, rules);
}

function validateKvOp(op: KvOp, field: string, rules: InputRules): void {
  const kind = oneOf(`${field}.op`, op.op, ["put", "delete", "get"] as const);
  if (kind === "delete" && op.op === "delete" && op.prefix === true) validateKvPrefix(op.key, `${field}.key`, rules);
  else validateKvKey(op.key, `${field}.key`, rules);
  if (op.op === "put") validateKvValue(op.value, `${field}.value`);
}

/** validateHealthChanges checks the changes of a health.set command. */
export function validateHealthChanges(changes: readonly HealthChange[], field = "changes"): void {
  if (!Array.isArray(changes)) throw new ValidationError(field, "must be a list");
  if (changes.length > HEALTH_CHANGES_MAX) throw new ValidationError(field, `must have at most ${HEALTH_CHANGES_MAX} changes, got ${changes.length}`);
  changes.forEach((c, i) => {
    const at = `${field}[${i}]`;
    validateName(c.service, `${at}.service`);
    validateName(c.id, `${at}.id`);
    oneOf(`${at}.health`, c.health, HEALTH_VALUES);
    maxBytes(`${at}.note`, c.note, NOTE_BYTES_MAX);
    intIn(`${at}.ifModIndex`, c.ifModIndex, 0, Number.MAX_SAFE_INTEGER);
  });
}

/**
 * validateInitialHealth checks the health an instance registers with (see instance.register in
 * types.ts): one of the health values, and a note of at most NOTE_BYTES_MAX bytes.
 */
export function validateInitialHealth(health: unknown, note: unknown, fields = { health: "health", note: "note" }): void {
  oneOf(fields.health, health, HEALTH_VALUES);
  maxBytes(fields.note, note, NOTE_BYTES_MAX);
}

/** validateMaintenanceReason checks a maintenance reason: a note, so at most NOTE_BYTES_MAX bytes. */
export function validateMaintenanceReason(reason: unknown, field = "reason"): void {
  maxBytes(field, reason, NOTE_BYTES_MAX);
}

/** validatePositions checks the replication positions a health.set or failover command carries. */
export function validatePositions(positions: readonly PositionReport[] | undefined, field = "positions"): void {
  if (positions === undefined) return;
  if (!Array.isArray(positions)) throw new ValidationError(field, "must be a list");
  if (positions.length > HEALTH_CHANGES_MAX) throw new ValidationError(field, `must have at most ${HEALTH_CHANGES_MAX} entries, got ${positions.length}`);
  positions.forEach((p, i) => {
    validateName(p.service, `${field}[${i}].service`);
    validateName(p.id, `${field}[${i}].id`);
    intIn(`${field}[${i}].position`, p.position, 0, REPLICATION_POSITION_MAX);
  });
}

/** validateSession checks a write session: a client id of 1 to CLIENT_ID_BYTES_MAX bytes and a sequence number of 1 or more. */
export function validateSession(session: Session, field = "session"): void {
  if (typeof session !== "object" || session === null) throw new ValidationError(field, "must be an object");
  const client = maxBytes(`${field}.client`, session.client, CLIENT_ID_BYTES_MAX);
  if (client.length === 0) throw new ValidationError(`${field}.client`, "must not be empty");
  intIn(`${field}.seq`, session.seq, 1, Number.MAX_SAFE_INTEGER);
}
