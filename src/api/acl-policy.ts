/**
 * What each client API method needs of a token (issue 16's role × scope matrix), and the matcher
 * that decides whether a token's rules allow it. Pure: no I/O, tested as a table
 * (test/unit/api/acl-policy.test.ts).
 *
 * Roles nest: admin includes write, write includes read. A resource is a service, a KV key, a KV
 * key prefix (List, prefix Delete: the whole prefix must lie inside the rule's scope), or the
 * cluster (membership, tokens, the event stream). A rule scoped to services covers only those
 * services, a rule scoped to keys only those keys; an unscoped rule covers everything.
 * Cluster.Status and Cluster.Members need only a valid token: a client reads them to find its way
 * around the cluster, and they hold no service or key. ListServices and Watch are filtered to what
 * the token may read, as Consul filters its catalog, rather than refused.
 */
import { ACL_ROLES, type AclRole, type AclRule } from "../registry/acl.js";
import type { RegistryEvent } from "../registry/types.js";

/** AclResource is one thing a call touches. */
export type AclResource =
  | { readonly kind: "cluster" }
  | { readonly kind: "service"; readonly name: string }
  | { readonly kind: "key"; readonly key: string }
  | { readonly kind: "prefix"; readonly prefix: string };

/** AclNeed is one (role, resource) pair a call must be allowed. */
export interface AclNeed {
  readonly role: AclRole;
  readonly resource: AclResource;
}

/**
 * MethodPolicy is how a method is checked: open (no token: grpc health, reflection, Acl.Bootstrap),
 * token (any valid token; filtered methods filter their answer by it), or needs computed from the
 * request (checked for every message of a stream).
 */
export type MethodPolicy =
  | { readonly kind: "open" }
  | { readonly kind: "token" }
  | { readonly kind: "needs"; readonly needs: (req: Record<string, unknown>) => readonly AclNeed[] };

const CLUSTER: AclResource = { kind: "cluster" };
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const service = (role: AclRole, field: string) => (req: Record<string, unknown>) => [{ role, resource: { kind: "service", name: str(req[field]) } as AclResource }];
const onCluster = (role: AclRole) => () => [{ role, resource: CLUSTER }];
const key = (role: AclRole, name: string): AclNeed => ({ role, resource: { kind: "key", key: name } });
const prefix = (role: AclRole, p: string): AclNeed => ({ role, resource: { kind: "prefix", prefix: p } });

/** txnNeeds: every key a transaction compares or reads needs read, every key it writes needs write (a prefix delete: its whole prefix). */
function txnNeeds(req: Record<string, unknown>): AclNeed[] {
  const needs: AclNeed[] = [];
  const list = (v: unknown) => (Array.isArray(v) ? (v as Record<string, unknown>[]) : []);
  for (const c of list(req.compares)) needs.push(key("read", str(c.key)));
  for (const o of [...list(req.success), ...list(req.failure)]) {
    if (o.op === "get") needs.push(key("read", str(o.key)));
    else if (o.op === "delete" && o.prefix === true) needs.push(prefix("write", str(o.key)));
    else needs.push(key("write", str(o.key)));
  }
  // A transaction is a write even when it only compares: it goes through the log.
  if (needs.length === 0) needs.push(prefix("write", ""));
  return needs;
}

/** METHOD_POLICIES: every method of the client API (a test checks none is missing). */
export const METHOD_POLICIES: Readonly<Record<string, MethodPolicy>> = {
  "/raftmesh.v1.KV/Get": { kind: "needs", needs: (r) => [key("read", str(r.key))] },
  "/raftmesh.v1.KV/List": { kind: "needs", needs: (r) => [prefix("read", str(r.prefix))] },
  "/raftmesh.v1.KV/Put": { kind: "needs", needs: (r) => [key("write", str(r.key))] },
  "/raftmesh.v1.KV/Delete": { kind: "needs", needs: (r) => [r.prefix === true ? prefix("write", str(r.key)) : key("write", str(r.key))] },
  "/raftmesh.v1.KV/Txn": { kind: "needs", needs: txnNeeds },
  "/raftmesh.v1.Registry/GetService": { kind: "needs", needs: service("read", "name") },
  "/raftmesh.v1.Registry/ListServices": { kind: "token" },
  "/raftmesh.v1.Registry/Watch": { kind: "token" },
  "/raftmesh.v1.Registry/Register": { kind: "needs", needs: (r) => [{ role: "write", resource: { kind: "service", name: str((r.instance as Record<string, unknown> | null)?.service) } }] },
  "/raftmesh.v1.Registry/Deregister": { kind: "needs", needs: service("write", "service") },
  "/raftmesh.v1.Registry/Heartbeat": { kind: "needs", needs: service("write", "service") },
  "/raftmesh.v1.Registry/KeepAlive": { kind: "needs", needs: service("write", "service") },
  "/raftmesh.v1.Registry/PutService": { kind: "needs", needs: service("write", "name") },
  "/raftmesh.v1.Registry/DeleteService": { kind: "needs", needs: service("write", "name") },
  "/raftmesh.v1.Registry/SetMaintenance": { kind: "needs", needs: service("write", "service") },
  "/raftmesh.v1.Registry/Failover": { kind: "needs", needs: service("admin", "service") },
  "/raftmesh.v1.Cluster/Status": { kind: "token" },
  "/raftmesh.v1.Cluster/Members": { kind: "token" },
  "/raftmesh.v1.Cluster/AddMember": { kind: "needs", needs: onCluster("admin") },
  "/raftmesh.v1.Cluster/PromoteMember": { kind: "needs", needs: onCluster("admin") },
  "/raftmesh.v1.Cluster/RemoveMember": { kind: "needs", needs: onCluster("admin") },
  "/raftmesh.v1.Cluster/TransferLeader": { kind: "needs", needs: onCluster("admin") },
  "/raftmesh.v1.Events/Watch": { kind: "needs", needs: onCluster("read") },
  "/raftmesh.v1.Acl/Bootstrap": { kind: "open" },
  "/raftmesh.v1.Acl/CreateToken": { kind: "needs", needs: onCluster("admin") },
  "/raftmesh.v1.Acl/ListTokens": { kind: "needs", needs: onCluster("admin") },
  "/raftmesh.v1.Acl/DeleteToken": { kind: "needs", needs: onCluster("admin") },
};

/** policyOf is a method's policy: the table's row; grpc.health.v1 and reflection are open; any other method needs an unscoped admin rule. */
export function policyOf(path: string): MethodPolicy {
  const row = METHOD_POLICIES[path];
  if (row) return row;
  if (path.startsWith("/grpc.health.v1.") || path.startsWith("/grpc.reflection.")) return { kind: "open" };
  return { kind: "needs", needs: onCluster("admin") };
}

const rank = (r: AclRole) => ACL_ROLES.indexOf(r);

/** serviceMatches: a scope is an exact name, or a prefix ending in "*" ("*" alone is every service). */
export function serviceMatches(scope: string, name: string): boolean {
  return scope.endsWith("*") ? name.startsWith(scope.slice(0, -1)) : name === scope;
}

/** ruleCovers says whether one rule allows `role` on `resource`. */
export function ruleCovers(rule: AclRule, role: AclRole, resource: AclResource): boolean {
  if (rank(rule.role) < rank(role)) return false;
  const unscoped = rule.services === undefined && rule.keys === undefined;
  if (unscoped) return true;
  switch (resource.kind) {
    case "cluster":
      return false;
    case "service":
      return rule.services !== undefined && serviceMatches(rule.services, resource.name);
    case "key":
      return rule.keys !== undefined && resource.key.startsWith(rule.keys);
    case "prefix":
      return rule.keys !== undefined && resource.prefix.startsWith(rule.keys);
  }
}

/** allows says whether any of the rules allows `role` on `resource`. */
export function allows(rules: readonly AclRule[], role: AclRole, resource: AclResource): boolean {
  return rules.some((r) => ruleCovers(r, role, resource));
}

/** firstDenied is the first need the rules do not allow (undefined: all allowed). */
export function firstDenied(rules: readonly AclRule[], needs: readonly AclNeed[]): AclNeed | undefined {
  return needs.find((n) => !allows(rules, n.role, n.resource));
}

/** describeNeed names a need for a PERMISSION_DENIED answer: "write on service billing". Never holds a secret. */
export function describeNeed(n: AclNeed): string {
  const r = n.resource;
  const what = r.kind === "cluster" ? "the cluster (an unscoped rule)" : r.kind === "service" ? `service ${JSON.stringify(r.name)}` : r.kind === "key" ? `key ${JSON.stringify(r.key)}` : `key prefix ${JSON.stringify(r.prefix)}`;
  return `${n.role} on ${what}`;
}

/** serviceVisible: the rules may read the service (ListServices and Watch show only these). */
export function serviceVisible(rules: readonly AclRule[], name: string): boolean {
  return allows(rules, "read", { kind: "service", name });
}

/** eventVisible: the rules may read what the event is about (a service's, instance's or master's service; a KV key). */
export function eventVisible(rules: readonly AclRule[], e: RegistryEvent): boolean {
  switch (e.kind) {
    case "service":
      return serviceVisible(rules, e.type === "put" ? e.service.name : e.name);
    case "instance":
      return serviceVisible(rules, e.type === "put" ? e.instance.service : e.service);
    case "master":
      return serviceVisible(rules, e.service);
    case "kv":
      return allows(rules, "read", { kind: "key", key: e.type === "put" ? e.entry.key : e.key });
  }
}
