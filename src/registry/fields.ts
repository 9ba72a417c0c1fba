/**
 * The field tables of Instance and ServiceConfig: ONE row per field (domain name, wire name, type,
 * default, how an absent wire value reads, validation). The log codec (codec.ts), the snapshot rows
 * (state-machine-snapshot.ts), the proto conversion (src/api/convert.ts) and the validators
 * (validate.ts) all walk these rows, so adding a field touches this table, the domain type (the
 * compile-time check below fails until the row exists) and the proto — nothing else.
 */
import {
  ADDRESS_BYTES_MAX,
  ADDRESS_PATTERN,
  CIRCUIT_MAX_RANGE,
  DEREGISTER_CRITICAL_AFTER_MS_MIN,
  DEREGISTER_CRITICAL_AFTER_MS_RANGE,
  FAILBACK_HOLD_DOWN_MS_RANGE,
  FALLBACK_BODY_BYTES_MAX,
  FALLBACK_STATUS_RANGE,
  HASH_ON_BYTES_MAX,
  NOTE_BYTES_MAX,
  OUTLIER_BASE_EJECTION_MS_RANGE,
  OUTLIER_CONSECUTIVE_FAILURES_MAX,
  PER_TRY_TIMEOUT_MS_MAX,
  PERCENT_RANGE,
  PRIORITY_RANGE,
  REPLICATION_POSITION_MAX,
  RETRY_BUDGET_PERCENT_MAX,
  SERVICE_RETRIES_MAX,
  TLS_SERVER_NAME_BYTES_MAX,
  TTL_MS_RANGE,
  WEIGHT_RANGE,
  ZONE_BYTES_MAX,
} from "./limits.js";
import { BALANCE_POLICIES, DEFAULT_SERVICE_CONFIG, HASH_METHODS, HEALTH_VALUES, type Instance, SERVICE_MODES, type ServiceConfig } from "./types.js";

/** DEFAULT_TTL_MS is the lease of an instance registered without one (DESIGN.md: 5 s, heartbeats every TTL/3). */
export const DEFAULT_TTL_MS = 5_000;
/** DEFAULT_WEIGHT is the weight of an instance registered without one (proto3 cannot tell 0 from unset). */
export const DEFAULT_WEIGHT = 1;

/** FieldType is a field's JSON shape (log and snapshot) and JS type. "int" is a safe integer; "number" any finite number. */
export type FieldType = "string" | "int" | "number" | "bool" | "strings" | "strmap";

/**
 * WireAbsent says what an absent or zero wire value means on the way in (proto3 sends no presence
 * for plain fields): "value" — a zero is the value; "zero-is-default" — 0 or "" stands for the
 * default (weight 0 from an older client means unset, not drained); "optional" — the field is
 * proto3 `optional`, so only an absent field takes the default and a zero is a zero.
 */
export type WireAbsent = "value" | "zero-is-default" | "optional";

/** Check is a field's validation, interpreted by validate.ts (data, so this table imports no validator). */
export type Check =
  | { readonly k: "name" }
  | { readonly k: "name-or-empty" }
  | {
      readonly k: "bytes";
      readonly max: number;
      readonly nonEmpty?: boolean;
      readonly pattern?: RegExp;
      readonly patternText?: string;
      /** requestOnly: the pattern holds for requests, not for commands already in the log (validate.ts InputRules). */
      readonly requestOnly?: boolean;
    }
  | { readonly k: "int"; readonly min: number; readonly max: number; readonly minNonZero?: number }
  | { readonly k: "one-of"; readonly values: readonly string[] }
  | { readonly k: "bool" }
  | { readonly k: "tags" }
  | { readonly k: "metadata" }
  | { readonly k: "none" };

/** FieldDef is one row of a table. */
export interface FieldDef<T> {
  readonly name: keyof T & string;
  /** wire is the proto message key as the proto loader presents it (camelCase of the proto name). */
  readonly wire: string;
  readonly type: FieldType;
  readonly dflt: unknown;
  readonly wireAbsent: WireAbsent;
  readonly check: Check;
  /**
   * added: the field came after the first log and snapshot formats, so an entry or snapshot without
   * it was written before it existed and reads as its default. A field without `added` is required.
   * Every new row sets it.
   */
  readonly added?: boolean;
  /** part (instances only): "spec" fields come with a registration; "state" ones the registry keeps (output only on the wire). */
  readonly part?: "spec" | "state";
}

const name = { k: "name" } as const;
const int = (min: number, max: number, minNonZero?: number): Check => ({ k: "int", min, max, ...(minNonZero ? { minNonZero } : {}) });

/** Row is a FieldDef without its name (the key of the table object holds it). */
type Row<T> = Omit<FieldDef<T>, "name">;
/** Table is keyed by every field of T, so a field of the domain type without a row (or a row without a field) does not compile. */
type Table<T> = { readonly [K in keyof T & string]-?: Row<T> };

function rowsOf<T>(table: Table<T>): readonly FieldDef<T>[] {
  return Object.entries(table).map(([n, row]) => ({ name: n as keyof T & string, ...(row as Row<T>) }));
}

const spec = (type: FieldType, dflt: unknown, check: Check, wireAbsent: WireAbsent = "value"): Row<Instance> => ({ wire: "", type, dflt, wireAbsent, check, part: "spec" });
const state = (type: FieldType, dflt: unknown, check: Check, wire = ""): Row<Instance> => ({ wire, type, dflt, wireAbsent: "value", check, part: "state" });

/** INSTANCE_FIELDS: every field of an Instance, in snapshot column order (wire name = name unless given). */
export const INSTANCE_FIELDS: readonly FieldDef<Instance>[] = withWireNames(
  rowsOf<Instance>({
    id: spec("string", "", name),
    service: spec("string", "", name),
    address: spec("string", "", { k: "bytes", max: ADDRESS_BYTES_MAX, nonEmpty: true, pattern: ADDRESS_PATTERN, requestOnly: true, patternText: "must be a host name or IP address (letters, digits, '.', '-', '_', ':', '%', '[', ']'; no spaces or control characters)" }),
    port: spec("int", 0, int(1, 65_535)),
    tags: spec("strings", [], { k: "tags" }),
    metadata: spec("strmap", {}, { k: "metadata" }),
    weight: spec("int", DEFAULT_WEIGHT, int(...WEIGHT_RANGE), "zero-is-default"),
    priority: spec("int", 0, int(...PRIORITY_RANGE)),
    zone: spec("string", "", { k: "bytes", max: ZONE_BYTES_MAX }),
    ttlMs: spec("int", DEFAULT_TTL_MS, int(...TTL_MS_RANGE), "zero-is-default"),
    deregisterCriticalAfterMs: spec("int", 0, int(...DEREGISTER_CRITICAL_AFTER_MS_RANGE, DEREGISTER_CRITICAL_AFTER_MS_MIN)),
    health: state("string", "passing", { k: "one-of", values: HEALTH_VALUES }),
    note: state("string", "", { k: "bytes", max: NOTE_BYTES_MAX }),
    healthSince: state("number", 0, { k: "none" }, "healthSinceMs"),
    createIndex: state("int", 0, { k: "none" }),
    modIndex: state("int", 0, { k: "none" }),
    replicationPosition: { ...state("int", 0, int(0, REPLICATION_POSITION_MAX)), added: true },
    maintenance: { ...state("bool", false, { k: "bool" }), added: true },
    maintenanceReason: { ...state("string", "", { k: "bytes", max: NOTE_BYTES_MAX }), added: true },
  }),
);

function withWireNames<T>(rows: readonly FieldDef<T>[]): readonly FieldDef<T>[] {
  return rows.map((f) => (f.wire === "" ? { ...f, wire: f.name } : f));
}

/** SPEC_FIELDS are the rows a registration carries (InstanceSpec). */
export const SPEC_FIELDS: readonly FieldDef<Instance>[] = INSTANCE_FIELDS.filter((f) => f.part === "spec");

const D = DEFAULT_SERVICE_CONFIG;
const cfg = (n: keyof ServiceConfig & string, type: FieldType, wireAbsent: WireAbsent, check: Check, wire: string = n): Row<ServiceConfig> => ({
  wire,
  type,
  dflt: D[n],
  wireAbsent,
  check,
  // The six fields before maxLagOnFailover are as old as the formats; the `optional` ones came later.
  ...(wireAbsent === "optional" ? { added: true } : {}),
});

/** HASH_ON_PATTERN: "source", or a header or cookie name (an HTTP token, RFC 9110 §5.6.2). */
const HASH_ON_PATTERN = /^(?:source|(?:header|cookie):[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/;

/** TLS_SERVER_NAME_PATTERN: a DNS name of labels of letters, digits and '-' (RFC 1123), or "" (the instance's address). */
const TLS_SERVER_NAME_PATTERN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)?$/;

/** CONFIG_FIELDS: every field of a ServiceConfig (defaults in DEFAULT_SERVICE_CONFIG); snapshot columns follow this order. */
export const CONFIG_FIELDS: readonly FieldDef<ServiceConfig>[] = rowsOf<ServiceConfig>({
  policy: cfg("policy", "string", "zero-is-default", { k: "one-of", values: BALANCE_POLICIES }),
  mode: cfg("mode", "string", "zero-is-default", { k: "one-of", values: SERVICE_MODES }),
  retries: cfg("retries", "int", "value", int(0, SERVICE_RETRIES_MAX)),
  retryBudgetPercent: cfg("retryBudgetPercent", "int", "value", int(0, RETRY_BUDGET_PERCENT_MAX)),
  perTryTimeoutMs: cfg("perTryTimeoutMs", "int", "value", int(0, PER_TRY_TIMEOUT_MS_MAX)),
  fallback: cfg("fallback", "string", "value", { k: "name-or-empty" }),
  maxLagOnFailover: cfg("maxLagOnFailover", "int", "optional", int(0, REPLICATION_POSITION_MAX)),
  failback: cfg("failback", "string", "optional", { k: "name-or-empty" }),
  failbackHoldDownMs: cfg("failbackHoldDownMs", "int", "optional", int(...FAILBACK_HOLD_DOWN_MS_RANGE)),
  hashOn: cfg("hashOn", "string", "optional", {
    k: "bytes",
    max: HASH_ON_BYTES_MAX,
    pattern: HASH_ON_PATTERN,
    patternText: 'must be "header:<name>", "cookie:<name>" or "source"',
  }),
  hashMethod: cfg("hashMethod", "string", "optional", { k: "one-of", values: HASH_METHODS }),
  // The proto loader's camelCase keeps the underscore before a digit: retry_on_5xx is retryOn_5xx.
  retryOn5xx: cfg("retryOn5xx", "bool", "optional", { k: "bool" }, "retryOn_5xx"),
  fallbackStatus: cfg("fallbackStatus", "int", "optional", int(...FALLBACK_STATUS_RANGE)),
  fallbackBody: cfg("fallbackBody", "string", "optional", { k: "bytes", max: FALLBACK_BODY_BYTES_MAX }),
  outlierConsecutiveFailures: cfg("outlierConsecutiveFailures", "int", "optional", int(0, OUTLIER_CONSECUTIVE_FAILURES_MAX)),
  outlierBaseEjectionMs: cfg("outlierBaseEjectionMs", "int", "optional", int(...OUTLIER_BASE_EJECTION_MS_RANGE)),
  outlierMaxEjectionPercent: cfg("outlierMaxEjectionPercent", "int", "optional", int(...PERCENT_RANGE)),
  panicThresholdPercent: cfg("panicThresholdPercent", "int", "optional", int(...PERCENT_RANGE)),
  maxConnections: cfg("maxConnections", "int", "optional", int(...CIRCUIT_MAX_RANGE)),
  maxPendingRequests: cfg("maxPendingRequests", "int", "optional", int(...CIRCUIT_MAX_RANGE)),
  maxRequests: cfg("maxRequests", "int", "optional", int(...CIRCUIT_MAX_RANGE)),
  zoneMinHealthyPercent: cfg("zoneMinHealthyPercent", "int", "optional", int(...PERCENT_RANGE)),
  upstreamTls: cfg("upstreamTls", "bool", "optional", { k: "bool" }),
  upstreamTlsServerName: cfg("upstreamTlsServerName", "string", "optional", {
    k: "bytes",
    max: TLS_SERVER_NAME_BYTES_MAX,
    pattern: TLS_SERVER_NAME_PATTERN,
    patternText: "must be a DNS name (letters, digits, '-', '.') or empty for the instance's address",
  }),
  upstreamTlsVerify: cfg("upstreamTlsVerify", "bool", "optional", { k: "bool" }),
});

/**
 * readField reads one field's JSON value by its type (log entries and snapshot rows); `fail` makes
 * the caller's error (MalformedCommandError or MalformedSnapshotError). An absent field of a row
 * marked `added` reads as the default (log entries and snapshots written before it existed meant
 * that); any other absent field is malformed.
 */
export function readField<T>(f: FieldDef<T>, v: unknown, what: string, fail: (reason: string) => Error): unknown {
  if (v === undefined) {
    if (f.added) return copyValue(f.dflt);
    throw fail(`${what} is missing`);
  }
  switch (f.type) {
    case "string":
      if (typeof v !== "string") throw fail(`${what} is not a string`);
      return v;
    case "int":
      if (!Number.isSafeInteger(v)) throw fail(`${what} is not an integer`);
      return v;
    case "number":
      if (typeof v !== "number" || !Number.isFinite(v)) throw fail(`${what} is not a number`);
      return v;
    case "bool":
      if (typeof v !== "boolean") throw fail(`${what} is not a boolean`);
      return v;
    case "strings":
      if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw fail(`${what} is not a list of strings`);
      return [...v];
    case "strmap": {
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw fail(`${what} is not an object`);
      return strmap(v as Record<string, unknown>, what, fail);
    }
  }
}

/**
 * sortedKeys is Object.keys(m) in sort() order, sorted only when it is not already: a map decoded
 * from the log or a snapshot comes in key order, and sorting even a sorted three-key array cost
 * ~0.8 KB of allocation, three times per registration on every node.
 */
export function sortedKeys(m: object): string[] {
  const keys = Object.keys(m);
  for (let k = 1; k < keys.length; k++) {
    if ((keys[k - 1] as string) > (keys[k] as string)) return keys.sort();
  }
  return keys;
}

/** strmap copies a map of strings in key order into a null-prototype object ("__proto__" stays an ordinary key). */
function strmap(m: Record<string, unknown>, what: string, fail: (reason: string) => Error): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const k of sortedKeys(m)) {
    const x = m[k];
    if (typeof x !== "string") throw fail(`${what} value is not a string`);
    out[k] = x;
  }
  return out;
}

/** copyValue copies a field value so no two records share a list or map. */
export function copyValue(v: unknown): unknown {
  if (Array.isArray(v)) return [...v];
  if (typeof v === "object" && v !== null) return strmap(v as Record<string, unknown>, "map", (r) => new Error(r));
  return v;
}

/** readRecord builds a record from a JSON object by the rows (absent fields take their defaults). */
export function readRecord<T>(rows: readonly FieldDef<T>[], o: Record<string, unknown>, prefix: string, fail: (reason: string) => Error): T {
  const out: Record<string, unknown> = {};
  for (const f of rows) out[f.name] = readField(f, o[f.name], `${prefix}.${f.name}`, fail);
  return out as T;
}

/** copyRecord copies the rows' fields of a record, in table order (equal records give equal JSON). */
export function copyRecord<T>(rows: readonly FieldDef<T>[], r: T): T {
  const out: Record<string, unknown> = {};
  for (const f of rows) out[f.name] = copyValue(r[f.name]);
  return out as T;
}

/** fromWire reads a record from a proto message by the rows' wire names and absent-value rules. */
export function fromWire<T>(rows: readonly FieldDef<T>[], m: Readonly<Record<string, unknown>>): T {
  const out: Record<string, unknown> = {};
  for (const f of rows) {
    const v = m[f.wire];
    const absent = v === undefined || v === null || (f.wireAbsent === "zero-is-default" && (v === 0 || v === ""));
    out[f.name] = absent && f.wireAbsent !== "value" ? copyValue(f.dflt) : v === undefined || v === null ? copyValue(f.dflt) : copyValue(v);
  }
  return out as T;
}

/** toWire writes a record's fields under their wire names. */
export function toWire<T>(rows: readonly FieldDef<T>[], r: T): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of rows) out[f.wire] = f.type === "strmap" ? { ...(r[f.name] as object) } : copyValue(r[f.name]);
  return out;
}
