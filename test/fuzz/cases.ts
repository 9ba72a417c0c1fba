/**
 * The fuzzer's cases: for every client API method, valid requests, edge values (at the limits),
 * invalid values (past them, wrong patterns, control characters) and raw malformed protobuf bytes
 * (random, truncated, bit-flipped, invalid UTF-8, bad wire types). Drawn with fast-check from one
 * seed, so a run is reproduced by its seed.
 */
import fc from "fast-check";
import { KV_KEY_BYTES_MAX, NAME_BYTES_MAX, TAG_BYTES_MAX, TAGS_MAX } from "../../src/registry/limits.js";
import { encode, lenField, varint } from "../integration/harness/raw-grpc.js";

export type ServiceName = "KV" | "Registry" | "Cluster" | "Internal" | "Events" | "Acl";
export type CaseKind = "valid" | "edge" | "invalid" | "raw";
export type Shape = "unary" | "server-stream" | "bidi";

/** Case is one request: where it goes, what it is, and its bytes. */
export interface Case {
  readonly service: ServiceName;
  readonly method: string;
  readonly shape: Shape;
  readonly kind: CaseKind;
  readonly body: Buffer;
}

/** Method is one API method and how the fuzzer may call it. */
interface Method {
  readonly service: ServiceName;
  readonly method: string;
  readonly shape: Shape;
  /** mutates: a well-formed request may change the cluster (membership, leadership): only bytes the wire check must refuse go there. */
  readonly dangerous?: boolean;
}

/** METHODS: every method of the client API. */
export const METHODS: readonly Method[] = [
  { service: "KV", method: "Get", shape: "unary" },
  { service: "KV", method: "Put", shape: "unary" },
  { service: "KV", method: "Delete", shape: "unary" },
  { service: "KV", method: "List", shape: "unary" },
  { service: "KV", method: "Txn", shape: "unary" },
  { service: "Registry", method: "Register", shape: "unary" },
  { service: "Registry", method: "Deregister", shape: "unary" },
  { service: "Registry", method: "Heartbeat", shape: "unary" },
  { service: "Registry", method: "KeepAlive", shape: "bidi" },
  { service: "Registry", method: "PutService", shape: "unary" },
  { service: "Registry", method: "DeleteService", shape: "unary" },
  { service: "Registry", method: "GetService", shape: "unary" },
  { service: "Registry", method: "ListServices", shape: "unary" },
  { service: "Registry", method: "Watch", shape: "server-stream" },
  { service: "Registry", method: "Failover", shape: "unary" },
  { service: "Registry", method: "SetMaintenance", shape: "unary" },
  { service: "Cluster", method: "Status", shape: "unary" },
  { service: "Cluster", method: "Members", shape: "unary" },
  { service: "Cluster", method: "AddMember", shape: "unary", dangerous: true },
  { service: "Cluster", method: "PromoteMember", shape: "unary", dangerous: true },
  { service: "Cluster", method: "RemoveMember", shape: "unary", dangerous: true },
  { service: "Cluster", method: "TransferLeader", shape: "unary", dangerous: true },
  { service: "Internal", method: "RenewLeases", shape: "unary", dangerous: true },
  { service: "Events", method: "Watch", shape: "server-stream" },
  // Access control is off in the fuzzed cluster, where Acl answers FAILED_PRECONDITION; on, a token
  // minted by the fuzzer would be state the replay check cannot see: only refused bytes go there.
  { service: "Acl", method: "Bootstrap", shape: "unary", dangerous: true },
  { service: "Acl", method: "CreateToken", shape: "unary", dangerous: true },
  { service: "Acl", method: "ListTokens", shape: "unary", dangerous: true },
  { service: "Acl", method: "DeleteToken", shape: "unary", dangerous: true },
];

// ---------------------------------------------------------------- values

/** The fuzzer's own names: few, so requests meet each other (a put then its delete, a register then its deregister). */
const svcName = fc.constantFrom("fz-a", "fz-b", "fz-c");
const instId = fc.constantFrom("i1", "i2", "i3");
const key = fc.oneof(fc.constantFrom("fz/a", "fz/b", "fz/c/d", "fz/ключ"), fc.stringMatching(/^fz\/[a-z0-9/]{1,12}$/));
const value = fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u));
const clientId = fc.constantFrom("fz-c1", "fz-c2");
/** seq: small, so sessions meet: the same seq again is a retry (or, for another request, a reuse to refuse). */
const session = fc.option(fc.record({ clientId, seq: fc.integer({ min: 1, max: 40 }) }), { nil: undefined });

const address = fc.constantFrom("10.0.0.1", "db-1.internal", "::1", "fe80::1%eth0");
const tag = fc.stringMatching(/^[a-z0-9=:-]{1,16}$/);
const instance = fc.record({
  id: instId,
  service: svcName,
  address,
  port: fc.integer({ min: 1, max: 65_535 }),
  tags: fc.array(tag, { maxLength: 4 }),
  metadata: fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/), fc.string({ maxLength: 16 }), { maxKeys: 3 }),
  weight: fc.integer({ min: 0, max: 10_000 }),
  priority: fc.integer({ min: 0, max: 100 }),
  zone: fc.constantFrom("", "z1", "eu-west-1a"),
  ttlMs: fc.constantFrom(0, 1_000, 30_000, 3_600_000),
  // 0: an instance of the fuzzer is never reaped, so leases cannot change what the state check compares.
  deregisterCriticalAfterMs: fc.constant(0),
});
/** Config of an active-active service: a master-slave one would change masters with heartbeats, outside the log the check replays. */
const config = fc.record({
  policy: fc.constantFrom("round-robin", "least-request", "random"),
  mode: fc.constant("active-active"),
  retries: fc.integer({ min: 0, max: 10 }),
  retryBudgetPercent: fc.integer({ min: 0, max: 100 }),
  perTryTimeoutMs: fc.integer({ min: 0, max: 600_000 }),
  fallback: fc.constantFrom("", "fz-a", "nowhere"),
});
const consistency = fc.constantFrom("CONSISTENCY_LINEARIZABLE", "CONSISTENCY_STALE");
const txnOp = fc.oneof(
  fc.record({ op: fc.constant("put"), key, value }),
  fc.record({ op: fc.constant("get"), key }),
  fc.record({ op: fc.constant("delete"), key, prefix: fc.constant(false) }),
);
const compare = fc.record({ key, target: fc.constantFrom("value", "version", "mod", "create"), op: fc.constantFrom("==", "!=", "<", ">"), value, number: fc.integer({ min: 0, max: 5 }) });

/** VALID: well-formed requests, per method (dangerous methods have none). */
const VALID: Readonly<Record<string, fc.Arbitrary<object>>> = {
  "KV.Get": fc.record({ key, consistency }),
  "KV.Put": fc.record({ key, value, session }),
  "KV.Delete": fc.oneof(fc.record({ key, session }), fc.record({ key: fc.constantFrom("fz/c/", "fz/"), prefix: fc.constant(true), session })),
  "KV.List": fc.record({ prefix: fc.constantFrom("", "fz/", "fz/c"), startAfter: fc.constantFrom("", "fz/a"), limit: fc.integer({ min: 0, max: 100 }), consistency }),
  "KV.Txn": fc.record({ compares: fc.array(compare, { maxLength: 2 }), success: fc.array(txnOp, { maxLength: 3 }), failure: fc.array(txnOp, { maxLength: 2 }), session }),
  "Registry.Register": fc.record({ instance, session }),
  "Registry.Deregister": fc.record({ service: svcName, id: instId, session }),
  "Registry.Heartbeat": fc.record({ service: svcName, id: instId, status: fc.constantFrom("", "passing", "warning"), note: fc.string({ maxLength: 20 }) }),
  "Registry.KeepAlive": fc.record({ service: svcName, id: instId }),
  "Registry.PutService": fc.record({ name: svcName, config, session }),
  "Registry.DeleteService": fc.record({ name: svcName, session }),
  "Registry.GetService": fc.record({ name: svcName, consistency, passingOnly: fc.boolean() }),
  "Registry.ListServices": fc.record({ consistency }),
  "Registry.Watch": fc.record({ fromIndex: fc.constant(0), service: fc.constantFrom("", "fz-a"), kinds: fc.subarray(["service", "instance", "kv", "master"]) }),
  "Registry.Failover": fc.record({ service: svcName, to: fc.constantFrom("", "i1") }),
  "Registry.SetMaintenance": fc.record({ service: svcName, id: instId, on: fc.boolean(), reason: fc.string({ maxLength: 20 }), session }),
  "Cluster.Status": fc.constant({}),
  "Cluster.Members": fc.constant({}),
  "Events.Watch": fc.record({ fromSeq: fc.constant(0), follow: fc.constant(false), kinds: fc.constant([]) }),
};

const long = (n: number, ch = "a") => ch.repeat(n);
/** EDGE: values at the limits (still valid). */
const EDGE: Readonly<Record<string, fc.Arbitrary<object>>> = {
  "KV.Put": fc.record({ key: fc.constantFrom(`fz/${long(KV_KEY_BYTES_MAX - 3)}`, `fz/${"é".repeat((KV_KEY_BYTES_MAX - 3) / 2 - 1)}`, "fz/😀"), value: fc.constantFrom(Buffer.alloc(0), Buffer.alloc(4096, 7)) }),
  "KV.Get": fc.record({ key: fc.constantFrom(`fz/${long(KV_KEY_BYTES_MAX - 3)}`, "fz/😀") }),
  "Registry.Register": fc.record({
    instance: instance.map((i) => ({ ...i, port: 65_535, tags: Array.from({ length: TAGS_MAX }, (_, k) => `${k}${long(TAG_BYTES_MAX - 3)}`), weight: 10_000, ttlMs: 3_600_000 })),
  }),
  "Registry.GetService": fc.record({ name: fc.constant(long(NAME_BYTES_MAX)) }),
  "KV.List": fc.record({ prefix: fc.constant(""), limit: fc.constant(10_000) }),
};

/** Values each refused in its place: as a name, a KV key, an address, a tag. */
const bad = fc.constantFrom("", " ", "a b", "\0", "a\r\nb", "\x1b[2J", long(NAME_BYTES_MAX + 1), long(80_000), "-lead", "😀", "../x");
const badKey = fc.constantFrom("", "\0", "a\r\nb", "\x1b[2J", "del\x7f", long(KV_KEY_BYTES_MAX + 1), long(80_000));
const badAddress = fc.constantFrom("", " ", "a b", "\0", "a\r\nb", "😀", "../x", "h:80/x", long(256), long(80_000));
const badTag = fc.constantFrom("", "\0", "a\r\nb", "\t", long(TAG_BYTES_MAX + 1), long(80_000));
/** INVALID: values past a limit or of a wrong form, per method. */
const INVALID: Readonly<Record<string, fc.Arbitrary<object>>> = {
  "KV.Get": fc.record({ key: badKey }),
  "KV.Put": fc.oneof(
    fc.record({ key: badKey, value }),
    fc.record({ key, value: fc.constant(Buffer.alloc(512 * 1024 + 1)) }),
    fc.record({ key, value, session: fc.record({ clientId: fc.constantFrom(long(65), "x"), seq: fc.constantFrom(0, 2 ** 53 + 2) }) }),
  ),
  "KV.Delete": fc.oneof(fc.record({ key: badKey }), fc.record({ key: badKey.filter((k) => k !== ""), prefix: fc.constant(true) })),
  "KV.List": fc.oneof(fc.record({ prefix: badKey.filter((k) => k !== "") }), fc.record({ limit: fc.constantFrom(10_001, 2 ** 32 - 1) })),
  "KV.Txn": fc.oneof(
    fc.record({ success: fc.array(fc.record({ op: fc.constantFrom("put", "nope", ""), key: badKey }), { minLength: 1, maxLength: 2 }) }),
    fc.record({ compares: fc.array(fc.record({ key, target: fc.constantFrom("nope", ""), op: fc.constantFrom("=~", "") }), { minLength: 1, maxLength: 2 }) }),
    fc.record({ success: fc.constant(Array.from({ length: 129 }, () => ({ op: "get", key: "fz/a" }))) }),
  ),
  "Registry.Register": fc.oneof(
    fc.constant({}),
    fc.record({ instance: instance.map((i) => ({ ...i, id: "\0" })) }),
    fc.record({ instance: fc.tuple(instance, badAddress).map(([i, b]) => ({ ...i, address: b })) }),
    fc.record({ instance: fc.tuple(instance, badTag).map(([i, b]) => ({ ...i, tags: [b] })) }),
    fc.record({ instance: instance.map((i) => ({ ...i, port: 70_000 })) }),
    fc.record({ instance: instance.map((i) => ({ ...i, ttlMs: 10 })) }),
    fc.record({ instance: instance.map((i) => ({ ...i, metadata: { [long(80_000)]: "v" } })) }),
  ),
  "Registry.Deregister": fc.record({ service: bad, id: bad }),
  "Registry.Heartbeat": fc.record({ service: svcName, id: bad, status: bad, note: fc.constant(long(2_000)) }),
  "Registry.KeepAlive": fc.record({ service: bad, id: bad }),
  "Registry.PutService": fc.oneof(
    fc.record({ name: bad }),
    fc.record({ name: svcName, config: fc.record({ policy: fc.constantFrom("nope", "hash"), mode: fc.constantFrom("x"), retries: fc.constant(11) }) }),
  ),
  "Registry.DeleteService": fc.record({ name: bad }),
  "Registry.GetService": fc.record({ name: bad }),
  "Registry.Watch": fc.record({ fromIndex: fc.constant(2 ** 53 + 10), kinds: fc.constant(["nope"]) }),
  "Registry.Failover": fc.record({ service: bad, to: bad }),
  "Registry.SetMaintenance": fc.record({ service: svcName, id: bad, reason: fc.constant(long(5_000)) }),
  "Events.Watch": fc.record({ kinds: fc.constant([long(80_000)]) }),
};

// ---------------------------------------------------------------- raw bytes

/** Bytes the wire check must refuse whatever the method: a length past the end, invalid UTF-8 in field 1 (a string in every request that has one), a group wire type. */
const refusedBytes = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 15 }), fc.integer({ min: 10, max: 2 ** 20 })).map(([f, len]) => Buffer.concat([varint(f * 8 + 2), varint(len), Buffer.from("ab")])),
  fc.integer({ min: 1, max: 15 }).map((f) => Buffer.from([f * 8 + 3])),
  fc.constant(Buffer.from([0x0a, 0x02, 0xc3, 0x28])),
  fc.constant(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
  fc.constant(Buffer.from([0x00])),
);

/** Any bytes: random, or a well-formed request truncated, bit-flipped or nested too deep. */
function rawBytes(valid: fc.Arbitrary<Buffer> | undefined): fc.Arbitrary<Buffer> {
  const random = fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u));
  const deep = fc.integer({ min: 1, max: 40 }).map((d) => {
    let b: Buffer = Buffer.alloc(0);
    for (let i = 0; i < d; i++) b = lenField(1, b);
    return b;
  });
  if (!valid) return fc.oneof(random, refusedBytes, deep);
  const truncated = fc.tuple(valid, fc.nat()).map(([b, n]) => b.subarray(0, b.length === 0 ? 0 : n % b.length));
  const flipped = fc.tuple(valid, fc.nat(), fc.integer({ min: 0, max: 7 })).map(([b, n, bit]) => {
    const c = Buffer.from(b);
    if (c.length > 0) c[n % c.length]! ^= 1 << bit;
    return c;
  });
  return fc.oneof(random, refusedBytes, deep, truncated, flipped);
}

/** caseArb draws one case of any method and kind. */
export function caseArb(): fc.Arbitrary<Case> {
  return fc.constantFrom(...METHODS).chain((m) => {
    const id = `${m.service}.${m.method}`;
    const toCase = (kind: CaseKind) => (body: Buffer): Case => ({ service: m.service, method: m.method, shape: m.shape, kind, body });
    const enc = (arb: fc.Arbitrary<object>) => arb.map((r) => encode(m.service, m.method, r));
    const options: fc.Arbitrary<Case>[] = [];
    if (m.dangerous) {
      options.push(refusedBytes.map(toCase("raw")));
    } else {
      const valid = VALID[id] ? enc(VALID[id]) : undefined;
      if (valid) options.push(valid.map(toCase("valid")), valid.map(toCase("valid")));
      if (EDGE[id]) options.push(enc(EDGE[id]).map(toCase("edge")));
      if (INVALID[id]) options.push(enc(INVALID[id]).map(toCase("invalid")));
      options.push(rawBytes(valid).map(toCase("raw")));
    }
    return fc.oneof(...options);
  });
}

/** drawCases is n cases from seed (the same seed, the same cases). */
export function drawCases(n: number, seed: number): Case[] {
  return fc.sample(caseArb(), { seed, numRuns: n });
}
