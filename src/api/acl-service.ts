/**
 * raftmesh.v1.Acl: bootstrap, create, list and delete access tokens (issue 16). Changes run on the
 * leader (forwarded with the caller's authorization, checked again there). The leader makes the
 * secret, puts only its hash in the log, and returns the secret once, in the answer.
 */
import { randomBytes } from "node:crypto";
import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import type { AclTokenMsg, AclTokenSecretMsg, CreateTokenRequestMsg, ListTokensResponseMsg } from "../common/messages.js";
import { ACCESSOR_PATTERN, type AclRole, type AclRule, type AclToken, BOOTSTRAP_TOKEN_NAME, validateAclName, validateAclRules } from "../registry/acl.js";
import type { RegistryStateMachine } from "../registry/state-machine.js";
import type { RegistryWriter } from "../registry/writer.js";
import { hashSecret } from "./auth.js";
import { InvalidArgumentError, PreconditionError } from "./errors.js";
import { unary } from "./handler.js";
import type { LeaderRoute } from "./leader-route.js";
import { WRITE_WAIT_MS_MAX } from "./limits.js";

/** AclServiceDeps: whether access control is on here, the replicated tokens, the write path and the leader route. */
export interface AclServiceDeps {
  readonly enabled: boolean;
  readonly registry: Pick<RegistryStateMachine, "aclTokens" | "aclBootstrapIndex" | "applied">;
  readonly writer: RegistryWriter;
  readonly route: LeaderRoute;
}

/** newSecret is a token secret: 256 random bits as 64 hex digits (SECRET_PATTERN). */
export function newSecret(): string {
  return randomBytes(32).toString("hex");
}

/** newAccessor is a token's public id: 64 random bits as 16 hex digits (ACCESSOR_PATTERN). */
export function newAccessor(): string {
  return randomBytes(8).toString("hex");
}

/** rulesFromMsg reads the request's rules ("" scopes are no scope). */
export function rulesFromMsg(rules: readonly { role: string; services: string; keys: string }[] | undefined): AclRule[] {
  return (rules ?? []).map((r) => ({ role: r.role as AclRole, ...(r.services ? { services: r.services } : {}), ...(r.keys ? { keys: r.keys } : {}) }));
}

/** tokenToMsg is a token as the API shows it: never its secret or hash. */
export function tokenToMsg(t: Pick<AclToken, "accessor" | "name" | "rules" | "createIndex">): AclTokenMsg {
  return { accessor: t.accessor, name: t.name, rules: t.rules.map((r) => ({ role: r.role, services: r.services ?? "", keys: r.keys ?? "" })), createIndex: t.createIndex };
}

/** aclService serves raftmesh.v1.Acl. */
export function aclService({ enabled, registry: reg, writer, route }: AclServiceDeps): UntypedServiceImplementation {
  const requireOn = () => {
    if (!enabled) throw new PreconditionError("access control is off on this node (start the nodes with --acl)");
  };
  return {
    Bootstrap: unary<object, AclTokenSecretMsg>(async (call) => {
      requireOn();
      return route.onLeader(call, "Acl", "Bootstrap", WRITE_WAIT_MS_MAX, async (deadline) => {
        if (reg.aclBootstrapIndex !== 0) throw new PreconditionError(`access control was bootstrapped already (at index ${reg.aclBootstrapIndex})`);
        const secret = newSecret();
        const accessor = newAccessor();
        // apply() refuses a second bootstrap too, if two raced to the log.
        const res = await writer.write({ op: "acl.bootstrap", accessor, secretHash: hashSecret(secret) }, undefined, deadline);
        return { token: tokenToMsg({ accessor, name: BOOTSTRAP_TOKEN_NAME, rules: [{ role: "admin" }], createIndex: res.index }), secret, index: res.index };
      });
    }),
    CreateToken: unary<CreateTokenRequestMsg, AclTokenSecretMsg>(async (call) => {
      requireOn();
      const { name } = call.request;
      const rules = rulesFromMsg(call.request.rules);
      validateAclName(name, "name");
      validateAclRules(rules, "rules");
      return route.onLeader(call, "Acl", "CreateToken", WRITE_WAIT_MS_MAX, async (deadline) => {
        const secret = newSecret();
        const accessor = newAccessor();
        const res = await writer.write({ op: "acl.token.create", accessor, secretHash: hashSecret(secret), name, rules }, undefined, deadline);
        return { token: tokenToMsg({ accessor, name, rules, createIndex: res.index }), secret, index: res.index };
      });
    }),
    ListTokens: unary<object, ListTokensResponseMsg>(async () => {
      requireOn();
      return { tokens: reg.aclTokens().map(tokenToMsg), index: reg.applied };
    }),
    DeleteToken: unary<{ accessor: string }, { index: number }>(async (call) => {
      requireOn();
      const { accessor } = call.request;
      if (!ACCESSOR_PATTERN.test(accessor)) throw new InvalidArgumentError("accessor", "must be 16 hex digits (raftmesh acl token list shows them)");
      return route.onLeader(call, "Acl", "DeleteToken", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await writer.write({ op: "acl.token.delete", accessor }, undefined, deadline);
        return { index: res.index };
      });
    }),
  };
}
