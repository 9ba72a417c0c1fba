import { CONTROL_CHARS } from "../../../src/registry/limits.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { configFromMsg, configToMsg, instanceToMsg, specFromMsg } from "../../../src/api/convert.js";
import type { InstanceMsg, ServiceConfigMsg } from "../../../src/common/messages.js";
import { clientApi } from "../../../src/common/proto.js";
import { decodeCommand, encodeCommand } from "../../../src/registry/codec.js";
import { MalformedSnapshotError } from "../../../src/registry/errors.js";
import { CONFIG_FIELDS, type FieldDef, INSTANCE_FIELDS, SPEC_FIELDS, sortedKeys } from "../../../src/registry/fields.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import { decodeSnapshot, encodeSnapshot, type SnapshotState } from "../../../src/registry/state-machine-snapshot.js";
import { DEFAULT_SERVICE_CONFIG, type Instance, type InstanceSpec, NO_MASTER, type ServiceConfig } from "../../../src/registry/types.js";
import { validateInstanceSpec, validateServiceConfig } from "../../../src/registry/validate.js";
import { Harness, jsonSnapshot, legacySnapshot, spec } from "./registry-harness.js";

/** MethodCodec is a method's (de)serializers as the proto loader builds them. */
interface MethodCodec {
  requestSerialize(o: object): Buffer;
  requestDeserialize(b: Buffer): Record<string, unknown>;
  responseSerialize(o: object): Buffer;
  responseDeserialize(b: Buffer): Record<string, unknown>;
}
const registryMethods = () => (clientApi().Registry as unknown as { service: Record<string, MethodCodec> }).service;

const nameArb = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,10}$/);

/** valueArb draws a valid value of a row, from its check (and its type where the check says nothing). */
function valueArb<T>(f: FieldDef<T>): fc.Arbitrary<unknown> {
  const c = f.check;
  switch (c.k) {
    case "name":
      return nameArb;
    case "name-or-empty":
      return fc.oneof(fc.constant(""), nameArb);
    case "bytes":
      if (c.pattern && f.name === "address") return fc.constantFrom("10.0.0.1", "db-1.internal", "::1", "fe80::1%eth0");
      if (c.pattern && f.name === "upstreamTlsServerName") return fc.constantFrom("", "db.internal", "orders-1", "a.b-c.example");
      if (c.pattern) return fc.constantFrom("", "source", "header:x-user", "cookie:sid");
      return c.nonEmpty ? fc.string({ minLength: 1, maxLength: 20 }) : fc.string({ maxLength: 20 });
    case "int":
      return c.minNonZero ? fc.oneof(fc.constant(0), fc.integer({ min: c.minNonZero, max: c.max })) : fc.integer({ min: c.min, max: c.max });
    case "one-of":
      return fc.constantFrom(...c.values);
    case "bool":
      return fc.boolean();
    case "tags":
      return fc.array(fc.string({ minLength: 1, maxLength: 10 }).filter((t) => !CONTROL_CHARS.test(t)), { maxLength: 4 });
    case "metadata":
      return fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 4 });
    case "none":
      return fc.integer({ min: 0, max: 1_000_000_000 });
  }
}

function recordArb<T>(rows: readonly FieldDef<T>[]): fc.Arbitrary<T> {
  return fc.record(Object.fromEntries(rows.map((f) => [f.name, valueArb(f)]))) as unknown as fc.Arbitrary<T>;
}

/** configArb draws valid configs (policy hash comes with a hash key). */
const configArb = recordArb(CONFIG_FIELDS).filter((c) => c.policy !== "hash" || c.hashOn !== "");
const specArb = recordArb(SPEC_FIELDS) as unknown as fc.Arbitrary<InstanceSpec>;
const instanceArb = recordArb(INSTANCE_FIELDS);

/** plain turns null-prototype maps into ordinary objects, so equality compares content only. */
const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v));

describe("field table", () => {
  it("fields: every generated config and registration passes validation (the generators follow the table)", () => {
    fc.assert(
      fc.property(configArb, specArb, (c, s) => {
        validateServiceConfig(c, "svc-self-never-generated-as-fallback!");
        validateInstanceSpec(s);
      }),
      { numRuns: 300 },
    );
  });

  it("fields: log codec round trip of service.put and instance.register", () => {
    fc.assert(
      fc.property(configArb, specArb, fc.integer({ min: 0, max: 2 ** 50 }), (config, s, at) => {
        const put = decodeCommand(encodeCommand({ v: 1, at, cmd: { op: "service.put", name: "svc", config } }));
        expect(put).toEqual({ v: 1, at, cmd: { op: "service.put", name: "svc", config } });
        const reg = decodeCommand(encodeCommand({ v: 1, at, cmd: { op: "instance.register", instance: s } }));
        expect(plain(reg)).toEqual(plain({ v: 1, at, cmd: { op: "instance.register", instance: s } }));
      }),
      { numRuns: 300 },
    );
  });

  it("fields: a log entry written before a field existed reads it as the default; a field as old as the format must be there", () => {
    const oldConfig = { policy: "p2c", mode: "master-slave", retries: 1, retryBudgetPercent: 10, perTryTimeoutMs: 100, fallback: "" };
    const env = decodeCommand(new TextEncoder().encode(JSON.stringify({ v: 1, at: 5, cmd: { op: "service.put", name: "db", config: oldConfig } })));
    expect(env.cmd).toEqual({ op: "service.put", name: "db", config: { ...DEFAULT_SERVICE_CONFIG, ...oldConfig } });
    const { retries: _, ...missing } = oldConfig;
    expect(() => decodeCommand(new TextEncoder().encode(JSON.stringify({ v: 1, at: 5, cmd: { op: "service.put", name: "db", config: missing } })))).toThrow(
      /config.retries is missing/,
    );
  });

  it("fields: snapshot round trip of services with masters and instances; the same state gives the same bytes", () => {
    const stateArb = fc
      .uniqueArray(fc.record({ name: nameArb, config: configArb, master: fc.option(fc.tuple(nameArb, fc.nat(), fc.nat()), { nil: undefined }) }), {
        selector: (s) => s.name,
        maxLength: 4,
      })
      .chain((svcs) =>
        fc.tuple(
          fc.constant(svcs),
          fc.array(fc.tuple(fc.nat({ max: Math.max(0, svcs.length - 1) }), instanceArb), { maxLength: svcs.length === 0 ? 0 : 6 }),
          fc.integer({ min: 0, max: 2 ** 40 }),
        ),
      )
      .map(([svcs, insts, applied]): SnapshotState => {
        const services = svcs.map((s, k) => ({
          service: { name: s.name, config: s.config, createIndex: k + 1, modIndex: k + 2 },
          master: s.master ? { master: s.master[0], epoch: s.master[1], since: s.master[2] } : NO_MASTER,
          instances: [] as Instance[],
        }));
        const seen = new Set<string>();
        for (const [k, i] of insts) {
          const svc = services[k]!;
          if (seen.has(`${svc.service.name}/${i.id}`)) continue;
          seen.add(`${svc.service.name}/${i.id}`);
          // The machine stores metadata in key order (makeInstance); so does this state.
          const metadata = Object.fromEntries(Object.entries(i.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
          svc.instances.push({ ...i, metadata, service: svc.service.name });
        }
        for (const s of services) s.instances.sort((a, b) => (a.id < b.id ? -1 : 1));
        services.sort((a, b) => (a.service.name < b.service.name ? -1 : 1));
        return { applied, clusterTime: applied * 2, services, kv: [], sessions: [] };
      });
    fc.assert(
      fc.property(stateArb, (state) => {
        const bytes = encodeSnapshot(state);
        const back = decodeSnapshot(bytes);
        expect(plain(back)).toEqual(plain(state));
        expect(Buffer.from(encodeSnapshot(back)).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("fields: proto conversion round trip through the real proto loader (config and instance)", () => {
    const reg = registryMethods();
    fc.assert(
      fc.property(configArb, instanceArb, (config, inst) => {
        const wire = reg.PutService!.requestDeserialize(reg.PutService!.requestSerialize({ name: "svc", config: configToMsg(config) }));
        expect(configFromMsg(wire.config as ServiceConfigMsg)).toEqual(config);
        const got = reg.GetService!.responseDeserialize(reg.GetService!.responseSerialize({ instances: [instanceToMsg(inst, "standby")], index: 1 }));
        const msg = (got.instances as InstanceMsg[])[0] as InstanceMsg;
        expect(msg.role).toBe("standby");
        // Registration fields come back as they were, but where the wire cannot tell 0 from unset (weight, ttlMs take defaults).
        const back = specFromMsg(msg);
        for (const f of SPEC_FIELDS) {
          const v = inst[f.name];
          const want = f.wireAbsent === "zero-is-default" && v === 0 ? f.dflt : v;
          expect(plain(back[f.name as keyof InstanceSpec]), f.name).toEqual(plain(want));
        }
        for (const f of INSTANCE_FIELDS) if (f.part === "state") expect((msg as unknown as Record<string, unknown>)[f.wire], f.name).toEqual(inst[f.name]);
      }),
      { numRuns: 200 },
    );
  });

  it("fields: an absent optional config field takes its default; a present zero stays zero", () => {
    const reg = registryMethods();
    const read = (config: object) => configFromMsg(reg.PutService!.requestDeserialize(reg.PutService!.requestSerialize({ name: "svc", config })).config as ServiceConfigMsg);
    const optional = Object.fromEntries(CONFIG_FIELDS.filter((f) => f.wireAbsent === "optional").map((f) => [f.name, f.dflt]));
    expect(Object.keys(optional).length).toBe(19);
    expect(read({})).toMatchObject(optional);
    // upstreamTlsVerify defaults to true: an absent field must not read as false (unchecked TLS).
    expect(read({}).upstreamTlsVerify).toBe(true);
    expect(read({ upstreamTls: true, upstreamTlsVerify: false })).toMatchObject({ upstreamTls: true, upstreamTlsVerify: false });
    expect(read({ panicThresholdPercent: 0, outlierConsecutiveFailures: 0 })).toMatchObject({ panicThresholdPercent: 0, outlierConsecutiveFailures: 0 });
    expect(read({ retryOn_5xx: true, hashMethod: "maglev" })).toMatchObject({ retryOn5xx: true, hashMethod: "maglev" });
  });
});

describe("snapshot formats", () => {
  it("snapshot: a version-3 snapshot (fixed columns, no masters) still loads, with defaults for the newer fields; masters settle on the next change", () => {
    const h = new Harness();
    h.ok({ op: "service.put", name: "db", config: { ...DEFAULT_SERVICE_CONFIG, mode: "master-slave", retries: 3 } });
    for (const id of ["a", "b"]) h.ok({ op: "instance.register", instance: spec(id, { service: "db" }) });
    const v3 = legacySnapshot(h.sm.snapshot(), 3);
    expect(JSON.parse(new TextDecoder().decode(v3))).toMatchObject({ version: 3, services: [["db", "round-robin", "master-slave", 3, 20, 0, "", 1, 1]] });
    const old = new RegistryStateMachine();
    old.restore(v3);
    expect(old.getService("db")?.service.config).toEqual({ ...DEFAULT_SERVICE_CONFIG, mode: "master-slave", retries: 3 });
    expect(old.instance("db", "a")).toMatchObject({ replicationPosition: 0, health: "passing" });
    expect(old.masterOf("db")).toEqual(NO_MASTER);
    old.apply({
      term: 1,
      index: h.index + 1,
      kind: 0,
      data: encodeCommand({ v: 1, at: h.at, cmd: { op: "health.set", changes: [{ service: "db", id: "b", health: "warning", note: "", ifModIndex: 0 }] } }),
    });
    expect(old.masterOf("db")).toMatchObject({ master: "a", epoch: h.index + 1 });
  });

  it("snapshot: a column this build does not know, or a required one missing, is refused", () => {
    const h = new Harness();
    h.ok({ op: "instance.register", instance: spec("a") });
    const json = JSON.parse(new TextDecoder().decode(jsonSnapshot(h.sm.snapshot())));
    const enc = (o: object) => new TextEncoder().encode(JSON.stringify(o));
    const unknown = { ...json, instanceColumns: [...json.instanceColumns.slice(0, -1), "fromTheFuture"] };
    expect(() => h.sm.restore(enc(unknown))).toThrow(MalformedSnapshotError);
    const idx = json.instanceColumns.indexOf("port");
    const noPort = { ...json, instanceColumns: json.instanceColumns.filter((c: string) => c !== "port"), instances: json.instances.map((r: unknown[]) => r.filter((_, i) => i !== idx)) };
    expect(() => h.sm.restore(enc(noPort))).toThrow(/instance port is missing/);
    // A column the writer did not have that came later reads as its default.
    const pIdx = json.instanceColumns.indexOf("replicationPosition");
    const noPos = {
      ...json,
      instanceColumns: json.instanceColumns.filter((c: string) => c !== "replicationPosition"),
      instances: json.instances.map((r: unknown[]) => r.filter((_, i) => i !== pIdx)),
    };
    const sm = new RegistryStateMachine();
    sm.restore(enc(noPos));
    expect(sm.instance("web", "a")?.replicationPosition).toBe(0);
  });

  it("fields: the domain defaults are the table's defaults", () => {
    for (const f of CONFIG_FIELDS) expect(f.dflt, f.name).toEqual(DEFAULT_SERVICE_CONFIG[f.name as keyof ServiceConfig]);
    expect(CONFIG_FIELDS.map((f) => f.name).sort()).toEqual(Object.keys(DEFAULT_SERVICE_CONFIG).sort());
  });

  it("sortedKeys: property — the keys in sort() order, sorted or not, numeric-looking keys included", () => {
    const key = fc.oneof(fc.string({ maxLength: 4 }), fc.nat({ max: 200 }).map(String), fc.constant("__proto__"));
    fc.assert(
      fc.property(fc.array(fc.tuple(key, fc.string({ maxLength: 3 })), { maxLength: 12 }), (pairs) => {
        const m: Record<string, string> = Object.create(null);
        for (const [k, v] of pairs) m[k] = v;
        expect(sortedKeys(m)).toEqual(Object.keys(m).sort());
      }),
      { numRuns: 1000 },
    );
  });
});
