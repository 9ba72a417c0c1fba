import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../../src/registry/errors.js";
import * as L from "../../../src/registry/limits.js";
import { DEFAULT_SERVICE_CONFIG, type InstanceSpec, type KvOp, type ServiceConfig } from "../../../src/registry/types.js";
import {
  base64Bytes,
  validateHealthChanges,
  validateInstanceSpec,
  validateKvKey,
  validateKvValue,
  validateServiceConfig,
  validateServiceName,
  validateSession,
  validateTxn,
} from "../../../src/registry/validate.js";
import { spec } from "./registry-harness.js";

/** fieldOf runs a validator and returns the field it refused, or null if it passed. */
function fieldOf(fn: () => void): string | null {
  try {
    fn();
    return null;
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).field;
  }
}

const inst = (over: Partial<InstanceSpec>) => () => validateInstanceSpec(spec("i1", over));
const cfg = (over: Partial<ServiceConfig>) => () => validateServiceConfig({ ...DEFAULT_SERVICE_CONFIG, ...over }, "web");

describe("registry validate", () => {
  it("validate: names follow NAME_PATTERN and NAME_BYTES_MAX", () => {
    expect(fieldOf(() => validateServiceName("a".repeat(L.NAME_BYTES_MAX)))).toBeNull();
    expect(fieldOf(() => validateServiceName("a".repeat(L.NAME_BYTES_MAX + 1)))).toBe("service");
    expect(fieldOf(() => validateServiceName("web.v2_x-1"))).toBeNull();
    for (const bad of ["", "-web", "we b", "wéb", "a/b"]) expect(fieldOf(() => validateServiceName(bad))).toBe("service");
    expect(fieldOf(inst({ id: "x".repeat(L.NAME_BYTES_MAX + 1) }))).toBe("instance.id");
    expect(fieldOf(inst({ service: ".x" }))).toBe("instance.service");
  });

  it("validate: an instance's address, port, zone", () => {
    expect(fieldOf(inst({}))).toBeNull();
    expect(fieldOf(inst({ address: "" }))).toBe("instance.address");
    expect(fieldOf(inst({ address: "a".repeat(L.ADDRESS_BYTES_MAX) }))).toBeNull();
    expect(fieldOf(inst({ address: "a".repeat(L.ADDRESS_BYTES_MAX + 1) }))).toBe("instance.address");
    expect(fieldOf(inst({ port: 1 }))).toBeNull();
    expect(fieldOf(inst({ port: 65_535 }))).toBeNull();
    expect(fieldOf(inst({ port: 0 }))).toBe("instance.port");
    expect(fieldOf(inst({ port: 65_536 }))).toBe("instance.port");
    expect(fieldOf(inst({ port: 80.5 }))).toBe("instance.port");
    expect(fieldOf(inst({ zone: "z".repeat(L.ZONE_BYTES_MAX) }))).toBeNull();
    expect(fieldOf(inst({ zone: "z".repeat(L.ZONE_BYTES_MAX + 1) }))).toBe("instance.zone");
    // Bytes, not characters: 33 two-byte characters are 66 bytes.
    expect(fieldOf(inst({ zone: "é".repeat(33) }))).toBe("instance.zone");
  });

  it("validate: tags and metadata limits name the entry", () => {
    expect(fieldOf(inst({ tags: Array(L.TAGS_MAX).fill("t") }))).toBeNull();
    expect(fieldOf(inst({ tags: Array(L.TAGS_MAX + 1).fill("t") }))).toBe("instance.tags");
    expect(fieldOf(inst({ tags: ["ok", "t".repeat(L.TAG_BYTES_MAX)] }))).toBeNull();
    expect(fieldOf(inst({ tags: ["ok", "t".repeat(L.TAG_BYTES_MAX + 1)] }))).toBe("instance.tags[1]");
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, "v"]));
    expect(fieldOf(inst({ metadata: many(L.METADATA_ENTRIES_MAX) }))).toBeNull();
    expect(fieldOf(inst({ metadata: many(L.METADATA_ENTRIES_MAX + 1) }))).toBe("instance.metadata");
    expect(fieldOf(inst({ metadata: { ["k".repeat(L.METADATA_KEY_BYTES_MAX)]: "v" } }))).toBeNull();
    const longKey = "k".repeat(L.METADATA_KEY_BYTES_MAX + 1);
    expect(fieldOf(inst({ metadata: { [longKey]: "v" } }))).toBe(`instance.metadata["${longKey}"]`);
    expect(fieldOf(inst({ metadata: { k: "v".repeat(L.METADATA_VALUE_BYTES_MAX) } }))).toBeNull();
    expect(fieldOf(inst({ metadata: { k: "v".repeat(L.METADATA_VALUE_BYTES_MAX + 1) } }))).toBe('instance.metadata["k"]');
    expect(fieldOf(inst({ metadata: { "": "v" } }))).toBe('instance.metadata[""]');
  });

  it("validate: weight, priority, ttl and deregisterCriticalAfter ranges", () => {
    const edges: [keyof InstanceSpec, readonly [number, number]][] = [
      ["weight", L.WEIGHT_RANGE],
      ["priority", L.PRIORITY_RANGE],
      ["ttlMs", L.TTL_MS_RANGE],
      ["deregisterCriticalAfterMs", [0, L.DEREGISTER_CRITICAL_AFTER_MS_RANGE[1]]],
    ];
    for (const [f, [min, max]] of edges) {
      expect(fieldOf(inst({ [f]: min })), f).toBeNull();
      expect(fieldOf(inst({ [f]: max })), f).toBeNull();
      expect(fieldOf(inst({ [f]: min - 1 })), f).toBe(`instance.${f}`);
      expect(fieldOf(inst({ [f]: max + 1 })), f).toBe(`instance.${f}`);
    }
    expect(fieldOf(inst({ deregisterCriticalAfterMs: L.DEREGISTER_CRITICAL_AFTER_MS_MIN }))).toBeNull();
    expect(fieldOf(inst({ deregisterCriticalAfterMs: L.DEREGISTER_CRITICAL_AFTER_MS_MIN - 1 }))).toBe("instance.deregisterCriticalAfterMs");
  });

  it("validate: service config", () => {
    expect(fieldOf(cfg({}))).toBeNull();
    expect(fieldOf(cfg({ policy: "fastest" as never }))).toBe("config.policy");
    expect(fieldOf(cfg({ mode: "solo" as never }))).toBe("config.mode");
    expect(fieldOf(cfg({ retries: L.SERVICE_RETRIES_MAX }))).toBeNull();
    expect(fieldOf(cfg({ retries: L.SERVICE_RETRIES_MAX + 1 }))).toBe("config.retries");
    expect(fieldOf(cfg({ retries: -1 }))).toBe("config.retries");
    expect(fieldOf(cfg({ retryBudgetPercent: L.RETRY_BUDGET_PERCENT_MAX }))).toBeNull();
    expect(fieldOf(cfg({ retryBudgetPercent: L.RETRY_BUDGET_PERCENT_MAX + 1 }))).toBe("config.retryBudgetPercent");
    expect(fieldOf(cfg({ perTryTimeoutMs: L.PER_TRY_TIMEOUT_MS_MAX }))).toBeNull();
    expect(fieldOf(cfg({ perTryTimeoutMs: L.PER_TRY_TIMEOUT_MS_MAX + 1 }))).toBe("config.perTryTimeoutMs");
    expect(fieldOf(cfg({ fallback: "web-backup" }))).toBeNull();
    expect(fieldOf(cfg({ fallback: "web" }))).toBe("config.fallback");
    expect(fieldOf(cfg({ fallback: "bad name" }))).toBe("config.fallback");
  });

  it("base64Bytes accepts exactly the strings the pattern it replaced accepted (apply must not change between builds)", () => {
    const PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
    const old = (s: string) => (s.length % 4 !== 0 || !PATTERN.test(s) ? -1 : (s.length / 4) * 3 - (s.endsWith("==") ? 2 : s.endsWith("=") ? 1 : 0));
    const letter = fc.constantFrom(..."ABCZabcz0189+/", "=", "=", "!", "-", "_", " ", "\n", "é", "\u0100", "\ud800", "\u0000");
    const candidates = fc.oneof(
      fc.array(letter, { maxLength: 16 }).map((a) => a.join("")),
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString("base64")),
      // Valid base64 with one character changed: the near misses.
      fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.nat(), letter).map(([b, i, c]) => {
        const s = Buffer.from(b).toString("base64");
        const at = i % s.length;
        return s.slice(0, at) + c + s.slice(at + 1);
      }),
    );
    fc.assert(
      fc.property(candidates, (s) => {
        expect(base64Bytes(s)).toBe(old(s));
        // Twice: the second answer may come from the one-entry cache.
        expect(base64Bytes(s)).toBe(old(s));
      }),
      { numRuns: 5000 },
    );
    for (const s of ["", "====", "A===", "AA==", "AAA=", "AAAA", "=AAA", "A=AA", "AA=A", "AAAA====", "AA==AAAA"]) expect(base64Bytes(s)).toBe(old(s));
  });

  it("validate: KV keys and values (decoded size of canonical base64)", () => {
    expect(fieldOf(() => validateKvKey("k".repeat(L.KV_KEY_BYTES_MAX)))).toBeNull();
    expect(fieldOf(() => validateKvKey("k".repeat(L.KV_KEY_BYTES_MAX + 1)))).toBe("key");
    expect(fieldOf(() => validateKvKey(""))).toBe("key");
    expect(fieldOf(() => validateKvValue(Buffer.alloc(L.KV_VALUE_BYTES_MAX).toString("base64")))).toBeNull();
    expect(fieldOf(() => validateKvValue(Buffer.alloc(L.KV_VALUE_BYTES_MAX + 1).toString("base64")))).toBe("value");
    expect(fieldOf(() => validateKvValue(""))).toBeNull();
    for (const bad of ["abc", "a===", "ab!=", "YQ"]) expect(fieldOf(() => validateKvValue(bad)), bad).toBe("value");
  });

  it("validate: transactions count compares and operations together and name the bad one", () => {
    const puts = (n: number): KvOp[] => Array.from({ length: n }, (_, i) => ({ op: "put", key: `k${i}`, value: "" }));
    expect(fieldOf(() => validateTxn({ compares: [], success: puts(L.TXN_OPS_MAX), failure: [] }))).toBeNull();
    expect(fieldOf(() => validateTxn({ compares: [], success: puts(L.TXN_OPS_MAX - 1), failure: puts(2) }))).toBe("txn");
    expect(fieldOf(() => validateTxn({ compares: [{ key: "", target: "value", op: "==" }], success: [], failure: [] }))).toBe("txn.compares[0].key");
    expect(fieldOf(() => validateTxn({ compares: [{ key: "a", target: "size" as never, op: "==" }], success: [], failure: [] }))).toBe("txn.compares[0].target");
    expect(fieldOf(() => validateTxn({ compares: [], success: [{ op: "get", key: "a" }], failure: [{ op: "put", key: "b", value: "!" }] }))).toBe(
      "txn.failure[0].value",
    );
    expect(fieldOf(() => validateTxn({ compares: [], success: [{ op: "delete", key: "", prefix: true }], failure: [] }))).toBeNull();
    expect(fieldOf(() => validateTxn({ compares: [], success: [{ op: "delete", key: "" }], failure: [] }))).toBe("txn.success[0].key");
  });

  it("validate: health changes and sessions", () => {
    const ch = { service: "web", id: "i1", health: "critical" as const, note: "n".repeat(L.NOTE_BYTES_MAX), ifModIndex: 0 };
    expect(fieldOf(() => validateHealthChanges([ch]))).toBeNull();
    expect(fieldOf(() => validateHealthChanges([ch, { ...ch, note: "n".repeat(L.NOTE_BYTES_MAX + 1) }]))).toBe("changes[1].note");
    expect(fieldOf(() => validateHealthChanges([{ ...ch, health: "dead" as never }]))).toBe("changes[0].health");
    expect(fieldOf(() => validateHealthChanges(Array(L.HEALTH_CHANGES_MAX + 1).fill(ch)))).toBe("changes");
    expect(fieldOf(() => validateSession({ client: "c".repeat(L.CLIENT_ID_BYTES_MAX), seq: 1 }))).toBeNull();
    expect(fieldOf(() => validateSession({ client: "c".repeat(L.CLIENT_ID_BYTES_MAX + 1), seq: 1 }))).toBe("session.client");
    expect(fieldOf(() => validateSession({ client: "", seq: 1 }))).toBe("session.client");
    expect(fieldOf(() => validateSession({ client: "c", seq: 0 }))).toBe("session.seq");
  });

  it("validate: failover fields at their limits", () => {
    expect(fieldOf(cfg({ maxLagOnFailover: L.REPLICATION_POSITION_MAX }))).toBeNull();
    expect(fieldOf(cfg({ maxLagOnFailover: L.REPLICATION_POSITION_MAX + 1 }))).toBe("config.maxLagOnFailover");
    expect(fieldOf(cfg({ maxLagOnFailover: -1 }))).toBe("config.maxLagOnFailover");
    expect(fieldOf(cfg({ failback: "db-1" }))).toBeNull();
    expect(fieldOf(cfg({ failback: "-x" }))).toBe("config.failback");
    expect(fieldOf(cfg({ failbackHoldDownMs: L.FAILBACK_HOLD_DOWN_MS_RANGE[0] }))).toBeNull();
    expect(fieldOf(cfg({ failbackHoldDownMs: L.FAILBACK_HOLD_DOWN_MS_RANGE[1] }))).toBeNull();
    expect(fieldOf(cfg({ failbackHoldDownMs: L.FAILBACK_HOLD_DOWN_MS_RANGE[0] - 1 }))).toBe("config.failbackHoldDownMs");
    expect(fieldOf(cfg({ failbackHoldDownMs: L.FAILBACK_HOLD_DOWN_MS_RANGE[1] + 1 }))).toBe("config.failbackHoldDownMs");
  });

  it("validate: upstream TLS fields: a DNS server name of at most TLS_SERVER_NAME_BYTES_MAX bytes, booleans", () => {
    expect(fieldOf(cfg({ upstreamTls: true, upstreamTlsServerName: "orders.internal", upstreamTlsVerify: false }))).toBeNull();
    // 253 bytes: labels of 63, 63, 63 and 61 letters joined by dots.
    const longest = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".");
    expect(longest.length).toBe(L.TLS_SERVER_NAME_BYTES_MAX);
    expect(fieldOf(cfg({ upstreamTlsServerName: longest }))).toBeNull();
    expect(fieldOf(cfg({ upstreamTlsServerName: `${longest}e` }))).toBe("config.upstreamTlsServerName");
    for (const bad of ["a b", "-x.example", "x..example", "x_y", "10.0.0.1:443", "name\u0000"]) expect(fieldOf(cfg({ upstreamTlsServerName: bad }))).toBe("config.upstreamTlsServerName");
    expect(fieldOf(cfg({ upstreamTls: "yes" as never }))).toBe("config.upstreamTls");
    expect(fieldOf(cfg({ upstreamTlsVerify: 0 as never }))).toBe("config.upstreamTlsVerify");
  });

  it("validate: balancer fields at their limits, defaults valid", () => {
    expect(fieldOf(cfg({}))).toBeNull();
    expect(fieldOf(cfg({ policy: "hash" }))).toBe("config.hashOn");
    for (const on of ["source", "header:x-user", "cookie:sid"]) expect(fieldOf(cfg({ policy: "hash", hashOn: on }))).toBeNull();
    for (const on of ["header:", "query:x", "cookie:a b", "Source"]) expect(fieldOf(cfg({ policy: "hash", hashOn: on }))).toBe("config.hashOn");
    expect(fieldOf(cfg({ hashOn: `header:${"h".repeat(L.HASH_ON_BYTES_MAX - 7)}` }))).toBeNull();
    expect(fieldOf(cfg({ hashOn: `header:${"h".repeat(L.HASH_ON_BYTES_MAX - 6)}` }))).toBe("config.hashOn");
    expect(fieldOf(cfg({ hashMethod: "maglev" }))).toBeNull();
    expect(fieldOf(cfg({ hashMethod: "rendezvous" as never }))).toBe("config.hashMethod");
    expect(fieldOf(cfg({ retryOn5xx: 1 as never }))).toBe("config.retryOn5xx");
    expect(fieldOf(cfg({ fallbackStatus: L.FALLBACK_STATUS_RANGE[0] }))).toBeNull();
    expect(fieldOf(cfg({ fallbackStatus: L.FALLBACK_STATUS_RANGE[1] }))).toBeNull();
    expect(fieldOf(cfg({ fallbackStatus: 199 }))).toBe("config.fallbackStatus");
    expect(fieldOf(cfg({ fallbackStatus: 600 }))).toBe("config.fallbackStatus");
    expect(fieldOf(cfg({ fallbackBody: "b".repeat(L.FALLBACK_BODY_BYTES_MAX) }))).toBeNull();
    expect(fieldOf(cfg({ fallbackBody: "b".repeat(L.FALLBACK_BODY_BYTES_MAX + 1) }))).toBe("config.fallbackBody");
    expect(fieldOf(cfg({ outlierConsecutiveFailures: 0 }))).toBeNull();
    expect(fieldOf(cfg({ outlierConsecutiveFailures: L.OUTLIER_CONSECUTIVE_FAILURES_MAX }))).toBeNull();
    expect(fieldOf(cfg({ outlierConsecutiveFailures: L.OUTLIER_CONSECUTIVE_FAILURES_MAX + 1 }))).toBe("config.outlierConsecutiveFailures");
    expect(fieldOf(cfg({ outlierBaseEjectionMs: L.OUTLIER_BASE_EJECTION_MS_RANGE[0] - 1 }))).toBe("config.outlierBaseEjectionMs");
    expect(fieldOf(cfg({ outlierBaseEjectionMs: L.OUTLIER_BASE_EJECTION_MS_RANGE[1] + 1 }))).toBe("config.outlierBaseEjectionMs");
    for (const f of ["outlierMaxEjectionPercent", "panicThresholdPercent", "zoneMinHealthyPercent"] as const) {
      expect(fieldOf(cfg({ [f]: 0 }))).toBeNull();
      expect(fieldOf(cfg({ [f]: 100 }))).toBeNull();
      expect(fieldOf(cfg({ [f]: 101 }))).toBe(`config.${f}`);
    }
    for (const f of ["maxConnections", "maxPendingRequests", "maxRequests"] as const) {
      expect(fieldOf(cfg({ [f]: L.CIRCUIT_MAX_RANGE[0] }))).toBeNull();
      expect(fieldOf(cfg({ [f]: L.CIRCUIT_MAX_RANGE[1] }))).toBeNull();
      expect(fieldOf(cfg({ [f]: 0 }))).toBe(`config.${f}`);
      expect(fieldOf(cfg({ [f]: L.CIRCUIT_MAX_RANGE[1] + 1 }))).toBe(`config.${f}`);
    }
  });
});
