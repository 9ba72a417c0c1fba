/**
 * raftmesh acl: bootstrap, and create, list and delete tokens (README "Access control").
 *
 *   acl bootstrap
 *   acl token create --name N --rule ROLE[:service=S|:key=P] [--rule ...]
 *   acl token list [--json]
 *   acl token delete <accessor>
 *
 * A rule is its role alone (read, write, admin: everything at that role), or the role with one
 * scope: "write:service=orders", "read:service=orders*", "read:key=config/".
 */
import type { AclRuleMsg, AclTokenMsg } from "../common/messages.js";
import { RaftmeshClient } from "../client/index.js";
import { parseArgs } from "node:util";
import { clientTls, endpointsOf, UsageError } from "./args.js";
import { table } from "./table.js";

const USAGE = `usage: raftmesh acl bootstrap
       raftmesh acl token create --name N --rule ROLE[:service=S|:key=P] [--rule ...] [--json]
       raftmesh acl token list [--json]
       raftmesh acl token delete <accessor>
  ROLE is read, write or admin; service=S is a service name or a prefix ending in "*"; key=P a KV key prefix`;

const ROLES = ["read", "write", "admin"];

/** parseRule reads one --rule value; a bad one is a UsageError naming it. */
export function parseRule(text: string): AclRuleMsg {
  const cut = text.indexOf(":");
  const role = cut < 0 ? text : text.slice(0, cut);
  if (!ROLES.includes(role)) throw new UsageError(`--rule "${text}": the role must be read, write or admin`);
  if (cut < 0) return { role, services: "", keys: "" };
  const scope = text.slice(cut + 1);
  const eq = scope.indexOf("=");
  const kind = eq < 0 ? scope : scope.slice(0, eq);
  const value = eq < 0 ? "" : scope.slice(eq + 1);
  if ((kind !== "service" && kind !== "key") || eq < 0) throw new UsageError(`--rule "${text}": the scope must be service=NAME or key=PREFIX`);
  if (value === "") throw new UsageError(`--rule "${text}": ${kind}= needs a value`);
  return kind === "service" ? { role, services: value, keys: "" } : { role, services: "", keys: value };
}

/** describeRule is a rule as --rule takes it. */
export function describeRule(r: AclRuleMsg): string {
  return r.services ? `${r.role}:service=${r.services}` : r.keys ? `${r.role}:key=${r.keys}` : r.role;
}

/** parseAclArgs parses the flags; --rule may be given many times. */
function parseAclArgs(argv: string[]): { values: { endpoints?: string; json?: boolean; name?: string }; positionals: string[]; rules: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { endpoints: { type: "string" }, json: { type: "boolean" }, name: { type: "string" }, rule: { type: "string", multiple: true } },
      allowPositionals: true,
      strict: true,
    });
    return { values, positionals, rules: values.rule ?? [] };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** aclCommand runs `raftmesh acl ...`. */
export async function aclCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals, rules: ruleTexts } = parseAclArgs(argv);
  const [group, action, ...rest] = positionals;
  const client = new RaftmeshClient(endpointsOf(values.endpoints, process.env), clientTls());
  try {
    if (group === "bootstrap" && action === undefined) {
      const r = await client.aclBootstrap();
      // The secret is printed here, once; it is stored nowhere but its hash.
      if (values.json) out(JSON.stringify({ accessor: r.token.accessor, secret: r.secret, index: r.index }, null, 2));
      else {
        out(`accessor: ${r.token.accessor}`);
        out(`secret:   ${r.secret}`);
        out("the secret is shown once: keep it (RAFTMESH_TOKEN or --token); it is an admin token");
      }
      return 0;
    }
    if (group !== "token") throw new UsageError(USAGE);
    switch (action) {
      case "create": {
        const rules = ruleTexts.map(parseRule);
        if (typeof values.name !== "string" || values.name === "") throw new UsageError("acl token create: --name is required");
        if (rules.length === 0) throw new UsageError("acl token create: at least one --rule is required");
        if (rest.length > 0) throw new UsageError(USAGE);
        const r = await client.aclCreateToken(values.name, rules);
        if (values.json) out(JSON.stringify({ accessor: r.token.accessor, secret: r.secret, name: r.token.name, rules: r.token.rules.map(describeRule), index: r.index }, null, 2));
        else {
          out(`accessor: ${r.token.accessor}`);
          out(`secret:   ${r.secret}`);
          out(`rules:    ${r.token.rules.map(describeRule).join(" ")}`);
        }
        return 0;
      }
      case "list": {
        if (rest.length > 0) throw new UsageError(USAGE);
        const r = await client.aclListTokens();
        if (values.json) out(JSON.stringify(r.tokens.map((t: AclTokenMsg) => ({ accessor: t.accessor, name: t.name, rules: t.rules.map(describeRule), createIndex: t.createIndex })), null, 2));
        else out(table(["ACCESSOR", "NAME", "RULES", "CREATED"], r.tokens.map((t: AclTokenMsg) => [t.accessor, t.name, t.rules.map(describeRule).join(" "), String(t.createIndex)])));
        return 0;
      }
      case "delete": {
        if (rest.length !== 1) throw new UsageError("usage: raftmesh acl token delete <accessor>");
        const r = await client.aclDeleteToken(rest[0] as string);
        out(`deleted at index ${r.index}`);
        return 0;
      }
      default:
        throw new UsageError(USAGE);
    }
  } finally {
    client.close();
  }
}
