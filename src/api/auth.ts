/**
 * Access control on the client API (issue 16): one server interceptor authenticates every call by
 * its "authorization: Bearer <secret>" metadata against this node's own replicated copy of the
 * tokens, and checks the method's needs (acl-policy.ts) against the token's rules: on the metadata
 * for what needs no request, on every request message for what does (each message of a stream).
 *
 * Forwarding keeps the caller's identity: LeaderRoute sends the caller's authorization to the
 * leader, whose interceptor checks the call again. Nothing else grants anything: the forwarded
 * marker (x-raftmesh-forwarded) is not looked at here, so a caller who sets it gains nothing.
 * The secret itself is hashed at once; no answer, log line or metric holds it.
 */
import { createHash } from "node:crypto";
import { Metadata, type ServerInterceptor, ServerInterceptingCall, type StatusObject } from "@grpc/grpc-js";
import type { AclRule, AclToken } from "../registry/acl.js";
import { describeNeed, firstDenied, policyOf } from "./acl-policy.js";
import { PermissionDeniedError, toStatus, UnauthenticatedError } from "./errors.js";
import { MalformedRequest } from "./wire-check.js";

/** METADATA_AUTHORIZATION is the metadata key of the bearer token (lower case, as HTTP/2 sends it). */
export const METADATA_AUTHORIZATION = "authorization";

/** Grant is who a call acts as: the token's accessor, name and rules. */
export interface Grant {
  readonly accessor: string;
  readonly name: string;
  readonly rules: readonly AclRule[];
}

/** TokenSource is where tokens are looked up: the registry state machine's replicated table. */
export interface TokenSource {
  aclTokenBySecretHash(hash: string): AclToken | undefined;
}

/** AuthRefusal is a refused call as metrics count it. */
export type AuthRefusal = "UNAUTHENTICATED" | "PERMISSION_DENIED";

/** AuthDeps: the tokens, and a hook that hears of every refusal (metrics). */
export interface AuthDeps {
  readonly tokens: TokenSource;
  readonly onRefused?: (code: AuthRefusal, method: string) => void;
}

/** hashSecret is the hex SHA-256 of a secret, as the state stores it (see src/registry/acl.ts for why a plain hash). */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** bearerOf is the secret of an "authorization: Bearer <secret>" value, or undefined. */
export function bearerOf(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return m?.[1];
}

/**
 * authenticate finds the token of an authorization value. It throws UnauthenticatedError for a
 * missing or unknown token; the message says which, never what was sent.
 */
export function authenticate(tokens: TokenSource, authorization: unknown): Grant {
  const secret = bearerOf(authorization);
  if (secret === undefined) throw new UnauthenticatedError('access control is on: send "authorization: Bearer <token secret>"');
  const token = tokens.aclTokenBySecretHash(hashSecret(secret));
  if (!token) throw new UnauthenticatedError("the token is not known to this node (deleted, mistyped, or of another cluster)");
  return { accessor: token.accessor, name: token.name, rules: token.rules };
}

/** grants holds each authenticated call's Grant by its metadata object, which grpc-js hands on to the handler (grantOf). */
const grants = new WeakMap<Metadata, Grant>();

/** grantOf is the Grant the interceptor found for a call (undefined when access control is off). Handlers filter answers by it. */
export function grantOf(metadata: Metadata): Grant | undefined {
  return grants.get(metadata);
}

/** authorizationOf is the caller's authorization as metadata to forward (empty when there is none). */
export function authorizationOf(metadata: Metadata): Metadata {
  const md = new Metadata();
  const v = metadata.get(METADATA_AUTHORIZATION)[0];
  if (typeof v === "string") md.set(METADATA_AUTHORIZATION, v);
  return md;
}

/** authorize throws PermissionDeniedError naming the method and the first need the grant lacks. */
export function authorize(method: string, grant: Grant, req: Record<string, unknown>): void {
  const policy = policyOf(method);
  if (policy.kind !== "needs") return;
  const denied = firstDenied(grant.rules, policy.needs(req));
  if (denied) throw new PermissionDeniedError(`${method} needs ${describeNeed(denied)}; token ${grant.accessor} (${grant.name}) has no rule for it`);
}

/** authInterceptor enforces access control on every call (see the module comment). */
export function authInterceptor(deps: AuthDeps): ServerInterceptor {
  return (descriptor, call) => {
    const method = descriptor.path;
    const policy = policyOf(method);
    if (policy.kind === "open") return new ServerInterceptingCall(call);
    let grant: Grant | undefined;
    let refused = false;
    const refuse = (err: Error) => {
      refused = true;
      const st = toStatus(err);
      deps.onRefused?.(err instanceof UnauthenticatedError ? "UNAUTHENTICATED" : "PERMISSION_DENIED", method);
      call.sendStatus({ code: st.code ?? 0, details: st.details ?? "", metadata: st.metadata ?? new Metadata() } as StatusObject);
    };
    return new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(md, nextMd) {
            try {
              grant = authenticate(deps.tokens, md.get(METADATA_AUTHORIZATION)[0]);
              // Methods whose needs do not depend on the request are checked before it arrives.
              if (policy.kind === "needs" && policy.needs.length === 0) authorize(method, grant, {});
            } catch (err) {
              refuse(err as Error);
              return;
            }
            grants.set(md, grant);
            nextMd(md);
          },
          onReceiveMessage(message, nextMessage) {
            if (refused) return;
            if (grant && !(message instanceof MalformedRequest)) {
              try {
                authorize(method, grant, message as Record<string, unknown>);
              } catch (err) {
                refuse(err as Error);
                return;
              }
            }
            nextMessage(message);
          },
        });
      },
    });
  };
}
