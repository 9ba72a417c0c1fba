/**
 * The role × scope matrix of access control (issue 16): every client API method, called by tokens
 * of each role, unscoped and scoped to a service or a key prefix, on a resource inside and outside
 * the scope; plus the filtering of ListServices and Watch, and the method table's completeness.
 */
import { describe, expect, it } from "vitest";
import { allows, describeNeed, eventVisible, firstDenied, METHOD_POLICIES, policyOf, serviceMatches, serviceVisible } from "../../../src/api/acl-policy.js";
import { authenticate, authorize, bearerOf, hashSecret } from "../../../src/api/auth.js";
import { PermissionDeniedError, UnauthenticatedError } from "../../../src/api/errors.js";
import { clientApi } from "../../../src/common/proto.js";
import type { AclRole, AclRule, AclToken } from "../../../src/registry/acl.js";
import type { RegistryEvent } from "../../../src/registry/types.js";

type Class = "read" | "write" | "admin" | "token" | "open";

/** Each method with a request on service "orders" / key "config/a" (in), the same on "billing" / "secret/a" (out), and its class. */
interface Row {
  readonly method: string;
  readonly cls: Class;
  /** on: "service", "key" or "cluster": what the scope of a scoped rule is tested against. */
  readonly on: "service" | "key" | "cluster" | "none";
  readonly req: (inScope: boolean) => Record<string, unknown>;
}

const svc = (i: boolean) => (i ? "orders" : "billing");
const key = (i: boolean) => (i ? "config/a" : "secret/a");
const ROWS: Row[] = [
  { method: "KV/Get", cls: "read", on: "key", req: (i) => ({ key: key(i) }) },
  { method: "KV/List", cls: "read", on: "key", req: (i) => ({ prefix: i ? "config/" : "" }) },
  { method: "KV/Put", cls: "write", on: "key", req: (i) => ({ key: key(i) }) },
  { method: "KV/Delete", cls: "write", on: "key", req: (i) => ({ key: i ? "config/x/" : "secret/", prefix: true }) },
  { method: "KV/Txn", cls: "write", on: "key", req: (i) => ({ compares: [{ key: "config/c" }], success: [{ op: "put", key: key(i) }], failure: [{ op: "get", key: "config/g" }] }) },
  { method: "Registry/GetService", cls: "read", on: "service", req: (i) => ({ name: svc(i) }) },
  { method: "Registry/ListServices", cls: "token", on: "none", req: () => ({}) },
  { method: "Registry/Watch", cls: "token", on: "none", req: () => ({}) },
  { method: "Registry/Register", cls: "write", on: "service", req: (i) => ({ instance: { service: svc(i), id: "i1" } }) },
  { method: "Registry/Deregister", cls: "write", on: "service", req: (i) => ({ service: svc(i), id: "i1" }) },
  { method: "Registry/Heartbeat", cls: "write", on: "service", req: (i) => ({ service: svc(i), id: "i1" }) },
  { method: "Registry/KeepAlive", cls: "write", on: "service", req: (i) => ({ service: svc(i), id: "i1" }) },
  { method: "Registry/PutService", cls: "write", on: "service", req: (i) => ({ name: svc(i) }) },
  { method: "Registry/DeleteService", cls: "write", on: "service", req: (i) => ({ name: svc(i) }) },
  { method: "Registry/SetMaintenance", cls: "write", on: "service", req: (i) => ({ service: svc(i), id: "i1" }) },
  { method: "Registry/Failover", cls: "admin", on: "service", req: (i) => ({ service: svc(i) }) },
  { method: "Cluster/Status", cls: "token", on: "none", req: () => ({}) },
  { method: "Cluster/Members", cls: "token", on: "none", req: () => ({}) },
  { method: "Cluster/AddMember", cls: "admin", on: "cluster", req: () => ({ id: "n4" }) },
  { method: "Cluster/PromoteMember", cls: "admin", on: "cluster", req: () => ({ id: "n4" }) },
  { method: "Cluster/RemoveMember", cls: "admin", on: "cluster", req: () => ({ id: "n4" }) },
  { method: "Cluster/TransferLeader", cls: "admin", on: "cluster", req: () => ({}) },
  { method: "Events/Watch", cls: "read", on: "cluster", req: () => ({}) },
  { method: "Acl/Bootstrap", cls: "open", on: "none", req: () => ({}) },
  { method: "Acl/CreateToken", cls: "admin", on: "cluster", req: () => ({}) },
  { method: "Acl/ListTokens", cls: "admin", on: "cluster", req: () => ({}) },
  { method: "Acl/DeleteToken", cls: "admin", on: "cluster", req: () => ({}) },
];

const ROLES: AclRole[] = ["read", "write", "admin"];
const RANK: Record<Class, number> = { open: -2, token: -1, read: 0, write: 1, admin: 2 };
/** SCOPES: the same role unscoped, scoped to service "orders", to services "ord*", and to keys under "config/". */
const SCOPES: { name: string; rule: (role: AclRole) => AclRule; covers: (on: Row["on"]) => boolean }[] = [
  { name: "unscoped", rule: (role) => ({ role }), covers: () => true },
  { name: "service=orders", rule: (role) => ({ role, services: "orders" }), covers: (on) => on === "service" },
  { name: "service=ord*", rule: (role) => ({ role, services: "ord*" }), covers: (on) => on === "service" },
  { name: "key=config/", rule: (role) => ({ role, keys: "config/" }), covers: (on) => on === "key" },
];

/** allowed is the call's outcome under the policy: authorize throws PermissionDeniedError, or not. */
function allowed(method: string, rules: AclRule[], req: Record<string, unknown>): boolean {
  try {
    authorize(`/raftmesh.v1.${method}`, { accessor: "0123456789abcdef", name: "t", rules }, req);
    return true;
  } catch (err) {
    expect(err).toBeInstanceOf(PermissionDeniedError);
    return false;
  }
}

describe("access control policy", () => {
  it("acl matrix: every method × role × scope × in or out of scope is allowed exactly when the role suffices and the scope covers it", () => {
    let cases = 0;
    for (const row of ROWS) {
      for (const role of ROLES) {
        for (const scope of SCOPES) {
          for (const inScope of [true, false]) {
            const got = allowed(row.method, [scope.rule(role)], row.req(inScope));
            // Open and token-only methods never refuse a known token; the others need the role, and a scoped rule covers only its own kind of resource, inside it.
            const roleOk = RANK[row.cls] <= ACL_RANK[role];
            const scopeOk = row.on === "none" || (scope.covers(row.on) && (scope.name === "unscoped" || inScope));
            const want = row.cls === "open" || row.cls === "token" || (roleOk && scopeOk);
            expect({ method: row.method, role, scope: scope.name, inScope, allowed: got }).toEqual({ method: row.method, role, scope: scope.name, inScope, allowed: want });
            cases++;
          }
        }
      }
    }
    expect(cases).toBe(ROWS.length * ROLES.length * SCOPES.length * 2);
  });

  it("acl matrix: the table covers every method of the client API, and the test covers every row of the table", () => {
    const api = clientApi();
    const served = (["KV", "Registry", "Cluster", "Events", "Acl"] as const).flatMap((s) => Object.values(api[s].service).map((d) => (d as { path: string }).path));
    expect(Object.keys(METHOD_POLICIES).sort()).toEqual([...served].sort());
    expect(ROWS.map((r) => `/raftmesh.v1.${r.method}`).sort()).toEqual(Object.keys(METHOD_POLICIES).sort());
    // Health and reflection stay open; a method the table does not know needs an unscoped admin rule.
    expect(policyOf("/grpc.health.v1.Health/Check")).toEqual({ kind: "open" });
    expect(policyOf("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")).toEqual({ kind: "open" });
    expect(allowed("Internal/RenewLeases", [{ role: "write" }], {})).toBe(false);
    expect(allowed("Internal/RenewLeases", [{ role: "admin" }], {})).toBe(true);
  });

  it("acl: a transaction must be allowed on every key it touches; a prefix must lie inside the scope", () => {
    const rules: AclRule[] = [{ role: "write", keys: "config/" }];
    expect(allowed("KV/Txn", rules, { compares: [], success: [{ op: "put", key: "config/a" }, { op: "delete", key: "secret/b" }], failure: [] })).toBe(false);
    expect(allowed("KV/Txn", rules, { compares: [{ key: "secret/x" }], success: [{ op: "put", key: "config/a" }], failure: [] })).toBe(false);
    expect(allowed("KV/Txn", rules, { compares: [], success: [{ op: "delete", key: "config/", prefix: true }], failure: [] })).toBe(true);
    expect(allowed("KV/Txn", rules, { compares: [], success: [{ op: "delete", key: "conf", prefix: true }], failure: [] })).toBe(false);
    // read on config/ and write on config/w/: compares and gets need read only.
    const mixed: AclRule[] = [{ role: "read", keys: "config/" }, { role: "write", keys: "config/w/" }];
    expect(allowed("KV/Txn", mixed, { compares: [{ key: "config/c" }], success: [{ op: "put", key: "config/w/a" }], failure: [{ op: "get", key: "config/g" }] })).toBe(true);
    expect(allowed("KV/Txn", mixed, { compares: [], success: [{ op: "put", key: "config/a" }], failure: [] })).toBe(false);
    expect(allowed("KV/List", [{ role: "read", keys: "config/" }], { prefix: "config" })).toBe(false);
  });

  it("acl: service scopes are an exact name or a prefix ending in *; several rules add up", () => {
    expect(serviceMatches("orders", "orders")).toBe(true);
    expect(serviceMatches("orders", "orders-eu")).toBe(false);
    expect(serviceMatches("orders*", "orders-eu")).toBe(true);
    expect(serviceMatches("*", "anything")).toBe(true);
    const rules: AclRule[] = [{ role: "write", services: "orders" }, { role: "read", services: "bill*" }];
    expect(allows(rules, "write", { kind: "service", name: "orders" })).toBe(true);
    expect(allows(rules, "write", { kind: "service", name: "billing" })).toBe(false);
    expect(allows(rules, "read", { kind: "service", name: "billing" })).toBe(true);
    expect(allows(rules, "read", { kind: "cluster" })).toBe(false);
    expect(describeNeed(firstDenied(rules, [{ role: "write", resource: { kind: "service", name: "billing" } }])!)).toBe('write on service "billing"');
  });

  it("acl filtering: ListServices and Watch show only what the token may read", () => {
    const rules: AclRule[] = [{ role: "read", services: "orders*" }, { role: "write", keys: "config/" }];
    expect(["orders", "orders-eu", "billing"].filter((s) => serviceVisible(rules, s))).toEqual(["orders", "orders-eu"]);
    const service = (name: string) => ({ name, config: {}, createIndex: 1, modIndex: 1 });
    const events = [
      { index: 1, kind: "service", type: "put", service: service("orders") },
      { index: 2, kind: "service", type: "delete", name: "billing" },
      { index: 3, kind: "instance", type: "put", instance: { service: "billing", id: "b1" } },
      { index: 4, kind: "instance", type: "delete", service: "orders-eu", id: "o1" },
      { index: 5, kind: "master", type: "put", service: "billing", master: "b1", previous: "", epoch: 5, reason: "promoted" },
      { index: 6, kind: "kv", type: "put", entry: { key: "config/a", value: "", createIndex: 6, modIndex: 6, version: 1 } },
      { index: 7, kind: "kv", type: "delete", key: "secret/a", modIndex: 7 },
    ] as unknown as RegistryEvent[];
    expect(events.filter((e) => eventVisible(rules, e)).map((e) => e.index)).toEqual([1, 4, 6]);
    expect(events.filter((e) => eventVisible([{ role: "read" }], e)).map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("acl authentication: a missing, malformed or unknown bearer is UNAUTHENTICATED, and the answer never holds the secret", () => {
    const secret = "ab".repeat(32);
    const token: AclToken = { accessor: "0123456789abcdef", secretHash: hashSecret(secret), name: "ops", rules: [{ role: "read" }], createIndex: 3 };
    const tokens = { aclTokenBySecretHash: (h: string) => (h === token.secretHash ? token : undefined) };
    expect(authenticate(tokens, `Bearer ${secret}`)).toEqual({ accessor: token.accessor, name: "ops", rules: [{ role: "read" }] });
    expect(bearerOf(`bearer  ${secret} `)).toBe(secret);
    const other = "cd".repeat(32);
    for (const v of [undefined, "", secret, `Basic ${secret}`, `Bearer ${other}`]) {
      try {
        authenticate(tokens, v);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(UnauthenticatedError);
        expect((err as Error).message).not.toContain(secret);
        expect((err as Error).message).not.toContain(other);
      }
    }
    try {
      authorize("/raftmesh.v1.KV/Put", { accessor: token.accessor, name: "ops", rules: token.rules }, { key: "k" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PermissionDeniedError);
      expect((err as Error).message).toBe('/raftmesh.v1.KV/Put needs write on key "k"; token 0123456789abcdef (ops) has no rule for it');
    }
  });
});

const ACL_RANK: Record<AclRole, number> = { read: 0, write: 1, admin: 2 };
