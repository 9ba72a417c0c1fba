/**
 * Pure validators of registry requests. The API calls them before proposing (to answer
 * INVALID_ARGUMENT naming the field); apply() calls them again, defensively, because the log is
 * the only thing every node agrees on and a bad command must be refused the same way everywhere.
 * Each throws ValidationError(field, reason) on the first field out of its limits.
 */
import { ValidationError } from "./errors.js";
import {
  ADDRESS_BYTES_MAX,
  CIRCUIT_MAX_RANGE,
  FAILBACK_HOLD_DOWN_MS_RANGE,
  FALLBACK_BODY_BYTES_MAX,
  FALLBACK_STATUS_RANGE,
  HASH_ON_BYTES_MAX,
  OUTLIER_BASE_EJECTION_MS_RANGE,
  OUTLIER_CONSECUTIVE_FAILURES_MAX,
  PERCENT_RANGE,
  REPLICATION_POSITION_MAX,
  CLIENT_ID_BYTES_MAX,
  DEREGISTER_CRITICAL_AFTER_MS_MIN,
  DEREGISTER_CRITICAL_AFTER_MS_RANGE,
  HEALTH_CHANGES_MAX,
  KV_KEY_BYTES_MAX,
  KV_VALUE_BYTES_MAX,
  METADATA_ENTRIES_MAX,
  METADATA_KEY_BYTES_MAX,
  METADATA_VALUE_BYTES_MAX,
  NAME_BYTES_MAX,
  NAME_PATTERN,
  NOTE_BYTES_MAX,
  PER_TRY_TIMEOUT_MS_MAX,
  PRIORITY_RANGE,
  RETRY_BUDGET_PERCENT_MAX,
  SERVICE_RETRIES_MAX,
  TAG_BYTES_MAX,
  TAGS_MAX,
  TTL_MS_RANGE,
  TXN_OPS_MAX,
  WEIGHT_RANGE,
  ZONE_BYTES_MAX,
} from "./limits.js";
import {
  BALANCE_POLICIES,
  HASH_METHODS,
  HEALTH_VALUES,
  type HealthChange,
  type InstanceSpec,
  type KvCompare,
  type KvOp,
  SERVICE_MODES,
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

/** validateInstanceSpec checks every field of a registration. */
export function validateInstanceSpec(spec: InstanceSpec, field = "instance"): void {
  if (typeof spec !== "object" || spec === null) throw new ValidationError(field, "must be an object");
  validateName(spec.id, `${field}.id`);
  validateName(spec.service, `${field}.service`);
  const address = maxBytes(`${field}.address`, spec.address, ADDRESS_BYTES_MAX);
  if (address.length === 0) throw new ValidationError(`${field}.address`, "must not be empty");
  intIn(`${field}.port`, spec.port, 1, 65_535);
  validateTags(spec.tags, `${field}.tags`);
  validateMetadata(spec.metadata, `${field}.metadata`);
  intIn(`${field}.weight`, spec.weight, WEIGHT_RANGE[0], WEIGHT_RANGE[1]);
  intIn(`${field}.priority`, spec.priority, PRIORITY_RANGE[0], PRIORITY_RANGE[1]);
  maxBytes(`${field}.zone`, spec.zone, ZONE_BYTES_MAX);
  intIn(`${field}.ttlMs`, spec.ttlMs, TTL_MS_RANGE[0], TTL_MS_RANGE[1]);
  const dereg = intIn(`${field}.deregisterCriticalAfterMs`, spec.deregisterCriticalAfterMs, ...DEREGISTER_CRITICAL_AFTER_MS_RANGE);
  if (dereg !== 0 && dereg < DEREGISTER_CRITICAL_AFTER_MS_MIN) {
    throw new ValidationError(`${field}.deregisterCriticalAfterMs`, `must be 0 (never) or at least ${DEREGISTER_CRITICAL_AFTER_MS_MIN}, got ${dereg}`);
  }
}

function validateTags(tags: unknown, field: string): void {
  if (!Array.isArray(tags)) throw new ValidationError(field, "must be a list of strings");
  if (tags.length > TAGS_MAX) throw new ValidationError(field, `must have at most ${TAGS_MAX} tags, got ${tags.length}`);
  tags.forEach((t, i) => {
    maxBytes(`${field}[${i}]`, t, TAG_BYTES_MAX);
  });
}

function validateMetadata(md: unknown, field: string): void {
  if (typeof md !== "object" || md === null || Array.isArray(md)) throw new ValidationError(field, "must be a map of strings");
  const keys = Object.keys(md);
  if (keys.length > METADATA_ENTRIES_MAX) throw new ValidationError(field, `must have at most ${METADATA_ENTRIES_MAX} entries, got ${keys.length}`);
  for (const k of keys) {
    const at = `${field}[${JSON.stringify(k)}]`;
    if (k.length === 0) throw new ValidationError(at, "key must not be empty");
    if (byteLength(k) > METADATA_KEY_BYTES_MAX) throw new ValidationError(at, `key must be at most ${METADATA_KEY_BYTES_MAX} bytes`);
    maxBytes(at, (md as Record<string, unknown>)[k], METADATA_VALUE_BYTES_MAX);
  }
}

/** validateServiceConfig checks a service's config; `name`, when given, is the service's own (a service is not its own fallback). */
export function validateServiceConfig(config: ServiceConfig, name?: string, field = "config"): void {
  if (typeof config !== "object" || config === null) throw new ValidationError(field, "must be an object");
  oneOf(`${field}.policy`, config.policy, BALANCE_POLICIES);
  oneOf(`${field}.mode`, config.mode, SERVICE_MODES);
  intIn(`${field}.retries`, config.retries, 0, SERVICE_RETRIES_MAX);
  intIn(`${field}.retryBudgetPercent`, config.retryBudgetPercent, 0, RETRY_BUDGET_PERCENT_MAX);
  intIn(`${field}.perTryTimeoutMs`, config.perTryTimeoutMs, 0, PER_TRY_TIMEOUT_MS_MAX);
  const fallback = str(`${field}.fallback`, config.fallback);
  if (fallback !== "") {
    validateName(fallback, `${field}.fallback`);
    if (fallback === name) throw new ValidationError(`${field}.fallback`, "must not be the service itself");
  }
  validateFailoverConfig(config, field);
  validateBalancerConfig(config, field);
}

function validateFailoverConfig(config: ServiceConfig, field: string): void {
  intIn(`${field}.maxLagOnFailover`, config.maxLagOnFailover, 0, REPLICATION_POSITION_MAX);
  const failback = str(`${field}.failback`, config.failback);
  if (failback !== "") validateName(failback, `${field}.failback`);
  intIn(`${field}.failbackHoldDownMs`, config.failbackHoldDownMs, ...FAILBACK_HOLD_DOWN_MS_RANGE);
}

/** HASH_ON_PATTERN: "source", or a header or cookie name (an HTTP token, RFC 9110 §5.6.2). */
const HASH_ON_PATTERN = /^(?:source|(?:header|cookie):[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/;

function validateBalancerConfig(config: ServiceConfig, field: string): void {
  const hashOn = maxBytes(`${field}.hashOn`, config.hashOn, HASH_ON_BYTES_MAX);
  if (hashOn !== "" && !HASH_ON_PATTERN.test(hashOn)) throw new ValidationError(`${field}.hashOn`, 'must be "header:<name>", "cookie:<name>" or "source"');
  if (config.policy === "hash" && hashOn === "") throw new ValidationError(`${field}.hashOn`, "must be set with policy hash");
  oneOf(`${field}.hashMethod`, config.hashMethod, HASH_METHODS);
  if (typeof config.retryOn5xx !== "boolean") throw new ValidationError(`${field}.retryOn5xx`, "must be a boolean");
  intIn(`${field}.fallbackStatus`, config.fallbackStatus, ...FALLBACK_STATUS_RANGE);
  maxBytes(`${field}.fallbackBody`, config.fallbackBody, FALLBACK_BODY_BYTES_MAX);
  intIn(`${field}.outlierConsecutiveFailures`, config.outlierConsecutiveFailures, 0, OUTLIER_CONSECUTIVE_FAILURES_MAX);
  intIn(`${field}.outlierBaseEjectionMs`, config.outlierBaseEjectionMs, ...OUTLIER_BASE_EJECTION_MS_RANGE);
  intIn(`${field}.outlierMaxEjectionPercent`, config.outlierMaxEjectionPercent, ...PERCENT_RANGE);
  intIn(`${field}.panicThresholdPercent`, config.panicThresholdPercent, ...PERCENT_RANGE);
  intIn(`${field}.maxConnections`, config.maxConnections, ...CIRCUIT_MAX_RANGE);
  intIn(`${field}.maxPendingRequests`, config.maxPendingRequests, ...CIRCUIT_MAX_RANGE);
  intIn(`${field}.maxRequests`, config.maxRequests, ...CIRCUIT_MAX_RANGE);
  intIn(`${field}.zoneMinHealthyPercent`, config.zoneMinHealthyPercent, ...PERCENT_RANGE);
}

/** validateKvKey checks a key: not empty, at most KV_KEY_BYTES_MAX bytes. */
export function validateKvKey(key: unknown, field = "key"): void {
  const s = maxBytes(field, key, KV_KEY_BYTES_MAX);
  if (s.length === 0) throw new ValidationError(field, "must not be empty");
}

/** validateKvPrefix checks a prefix (of a list or a prefix delete): may be empty (everything), at most KV_KEY_BYTES_MAX bytes. */
export function validateKvPrefix(prefix: unknown, field = "prefix"): void {
  maxBytes(field, prefix, KV_KEY_BYTES_MAX);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** base64Bytes is the decoded size of canonical base64 (what Buffer#toString("base64") writes), or -1 if it is not. */
export function base64Bytes(b64: string): number {
  if (b64.length % 4 !== 0 || !BASE64.test(b64)) return -1;
  const pad = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
  return (b64.length / 4) * 3 - pad;
}

/** validateKvValue checks a value: canonical base64 of at most KV_VALUE_BYTES_MAX bytes. */
export function validateKvValue(value: unknown, field = "value"): void {
  const s = str(field, value);
  // The request size limit of the API bounds how long a string can reach this pattern.
  const n = base64Bytes(s);
  if (n < 0) throw new ValidationError(field, "must be base64");
  if (n > KV_VALUE_BYTES_MAX) throw new ValidationError(field, `is ${n} bytes, more than the limit of ${KV_VALUE_BYTES_MAX}`);
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
export function validateTxn(txn: Txn, field = "txn"): void {
  const { compares, success, failure } = txn;
  if (!Array.isArray(compares) || !Array.isArray(success) || !Array.isArray(failure)) {
    throw new ValidationError(field, "must have lists compares, success and failure");
  }
  const total = compares.length + success.length + failure.length;
  if (total > TXN_OPS_MAX) throw new ValidationError(field, `must have at most ${TXN_OPS_MAX} compares and operations, got ${total}`);
  compares.forEach((c, i) => {
    const at = `${field}.compares[${i}]`;
    validateKvKey(c.key, `${at}.key`);
    const target = oneOf(`${at}.target`, c.target, COMPARE_TARGETS);
    oneOf(`${at}.op`, c.op, COMPARE_OPS);
    if (target === "value" && c.value !== undefined) validateKvValue(c.value, `${at}.value`);
    if (target !== "value" && c.number !== undefined) intIn(`${at}.number`, c.number, 0, Number.MAX_SAFE_INTEGER);
  });
  for (const [i, op] of success.entries()) validateKvOp(op, `${field}.success[${i}]`);
  for (const [i, op] of failure.entries()) validateKvOp(op, `${field}.failure[${i}]`);
}

function validateKvOp(op: KvOp, field: string): void {
  const kind = oneOf(`${field}.op`, op.op, ["put", "delete", "get"] as const);
  if (kind === "delete" && op.op === "delete" && op.prefix === true) validateKvPrefix(op.key, `${field}.key`);
  else validateKvKey(op.key, `${field}.key`);
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

/** validateSession checks a write session: a client id of 1 to CLIENT_ID_BYTES_MAX bytes and a sequence number of 1 or more. */
export function validateSession(session: Session, field = "session"): void {
  if (typeof session !== "object" || session === null) throw new ValidationError(field, "must be an object");
  const client = maxBytes(`${field}.client`, session.client, CLIENT_ID_BYTES_MAX);
  if (client.length === 0) throw new ValidationError(`${field}.client`, "must not be empty");
  intIn(`${field}.seq`, session.seq, 1, Number.MAX_SAFE_INTEGER);
}
