/**
 * The node's side of access control (issue 16): the bootstrap from configuration, and the check of
 * the admin port's Authorization header. The client API's check is src/api/auth.ts.
 */
import { allows } from "../api/acl-policy.js";
import { type AuthRefusal, authenticate, hashSecret, type TokenSource } from "../api/auth.js";
import type { Logger } from "../common/logger.js";
import { RefusedPreconditionError } from "../registry/errors.js";
import type { RegistryWriter } from "../registry/writer.js";
import { newAccessor } from "../api/acl-service.js";
import { UnauthenticatedError } from "../api/errors.js";

/** ACL_BOOTSTRAP_POLL_MS: how often a node with aclBootstrapToken looks whether it leads a cluster not yet bootstrapped. */
export const ACL_BOOTSTRAP_POLL_MS = 500;

/** BootstrapDeps: the node's view, the replicated state and the write path. */
export interface BootstrapDeps {
  readonly secret: string;
  readonly node: { isLeader(): boolean };
  readonly registry: { readonly aclBootstrapIndex: number };
  readonly writer: RegistryWriter;
  readonly logger: Logger;
}

/**
 * startConfigBootstrap creates the admin token whose secret the configuration holds, once: the
 * leader proposes acl.bootstrap (the hash only) while the state records no bootstrap. Every node
 * may carry the same secret; whichever leads does it, and apply() refuses any second one. It
 * returns the function that stops it.
 */
export function startConfigBootstrap(d: BootstrapDeps): () => void {
  let busy = false;
  const timer = setInterval(() => {
    if (d.registry.aclBootstrapIndex !== 0) {
      clearInterval(timer);
      return;
    }
    if (busy || !d.node.isLeader()) return;
    busy = true;
    const accessor = newAccessor();
    d.writer
      .write({ op: "acl.bootstrap", accessor, secretHash: hashSecret(d.secret) }, undefined, new Date(Date.now() + 5_000))
      .then(
        (res) => d.logger.info({ accessor, index: res.index }, "access control bootstrapped with the configured token (aclBootstrapToken)"),
        (err: unknown) => {
          // Another node bootstrapped first: nothing to do. Anything else is tried again.
          if (!(err instanceof RefusedPreconditionError)) d.logger.warn({ err: (err as Error).message }, "access control bootstrap failed; trying again");
        },
      )
      .finally(() => {
        busy = false;
      });
  }, ACL_BOOTSTRAP_POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** ADMIN_KNOWN_PATHS bound the metric label of admin refusals to the paths the admin port serves (any other is "other"). */
const ADMIN_KNOWN_PATHS: ReadonlySet<string> = new Set(["/status", "/metrics", "/reload", "/services", "/test/clock", "/", "/status/overview", "/events/stream", "/ui/status.css", "/ui/status.js"]);

/**
 * adminAuthorizer checks the admin port's "Authorization: Bearer" header: reading (GET) needs an
 * unscoped read rule, since status, metrics and events cover every service; changing (POST: the
 * local agent's reload and definitions, the test clock) an unscoped admin rule.
 */
export function adminAuthorizer(tokens: TokenSource, onRefused?: (code: AuthRefusal, method: string) => void) {
  return (authorization: string | undefined, method: string, path: string): { status: 401 | 403; error: string } | undefined => {
    const label = `admin ${method === "GET" ? "GET" : "POST"} ${ADMIN_KNOWN_PATHS.has(path) ? path : "other"}`;
    try {
      const grant = authenticate(tokens, authorization);
      const role = method === "GET" ? "read" : "admin";
      if (allows(grant.rules, role, { kind: "cluster" })) return undefined;
      onRefused?.("PERMISSION_DENIED", label);
      return { status: 403, error: `${method} ${path} needs ${role} on the cluster (an unscoped rule); token ${grant.accessor} (${grant.name}) has no rule for it` };
    } catch (err) {
      if (!(err instanceof UnauthenticatedError)) throw err;
      onRefused?.("UNAUTHENTICATED", label);
      return { status: 401, error: err.message };
    }
  };
}
