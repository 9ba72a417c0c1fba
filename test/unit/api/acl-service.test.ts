/**
 * The Acl service's handlers on a real registry state machine, on a node that leads: Bootstrap
 * returns a secret once, and only its hash reaches the log; CreateToken checks its rules naming the
 * field; ListTokens shows no secret or hash; off, every method says access control is off.
 */
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { aclService } from "../../../src/api/acl-service.js";
import { hashSecret } from "../../../src/api/auth.js";
import { LeaderRoute } from "../../../src/api/leader-route.js";
import type { AclTokenSecretMsg, ListTokensResponseMsg } from "../../../src/common/messages.js";
import { resultError } from "../../../src/registry/errors.js";
import type { RegistryCommand } from "../../../src/registry/types.js";
import type { RegistryWriter } from "../../../src/registry/writer.js";
import { Harness } from "../registry/registry-harness.js";

/** setup is the service on a leading node whose writes apply straight to a harness machine (the log is `logged`). */
function setup(enabled = true) {
  const h = new Harness();
  const logged: RegistryCommand[] = [];
  const writer: RegistryWriter = {
    write: async (cmd) => {
      logged.push(cmd);
      const r = h.run(cmd);
      if (!r.ok) throw resultError(r);
      return r;
    },
  };
  const route = new LeaderRoute({ isLeader: () => true, leader: () => "n1" }, () => undefined, { forward: () => Promise.reject(new Error("no forwarding here")) });
  const svc = aclService({ enabled, registry: h.sm, writer, route }) as Record<string, (call: object, cb: (err: ServiceError | null, res: unknown) => void) => void>;
  const call = <T>(method: string, request: object) =>
    new Promise<T>((resolve, reject) =>
      svc[method]!({ request, metadata: new Metadata(), getDeadline: () => Date.now() + 5_000 }, (err, res) => (err ? reject(err) : resolve(res as T))),
    );
  return { h, logged, call };
}

const codeOf = (p: Promise<unknown>) => p.then(() => status.OK, (e: ServiceError) => e.code);

describe("Acl service", () => {
  it("acl service: Bootstrap returns an admin secret once; the log holds its hash, never the secret", async () => {
    const { h, logged, call } = setup();
    const r = await call<AclTokenSecretMsg>("Bootstrap", {});
    expect(r.secret).toMatch(/^[0-9a-f]{64}$/);
    expect(r.token).toMatchObject({ name: "bootstrap", rules: [{ role: "admin", services: "", keys: "" }] });
    expect(h.sm.aclTokenBySecretHash(hashSecret(r.secret))).toMatchObject({ accessor: r.token.accessor, rules: [{ role: "admin" }] });
    expect(JSON.stringify(logged)).not.toContain(r.secret);
    expect(await codeOf(call("Bootstrap", {}))).toBe(status.FAILED_PRECONDITION);
    expect(h.sm.aclTokens()).toHaveLength(1);
  });

  it("acl service: CreateToken checks name and rules naming the field; ListTokens shows no secret or hash; DeleteToken wants an accessor", async () => {
    const { h, call } = setup();
    const made = await call<AclTokenSecretMsg>("CreateToken", { name: "ci", rules: [{ role: "write", services: "orders", keys: "" }] });
    const err = await call("CreateToken", { name: "x", rules: [{ role: "root", services: "", keys: "" }] }).catch((e: ServiceError) => e);
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining("rules[0].role") });
    expect(await codeOf(call("CreateToken", { name: "", rules: [{ role: "read", services: "", keys: "" }] }))).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(call("CreateToken", { name: "none", rules: [] }))).toBe(status.INVALID_ARGUMENT);
    const list = await call<ListTokensResponseMsg>("ListTokens", {});
    expect(list.tokens).toEqual([{ accessor: made.token.accessor, name: "ci", rules: [{ role: "write", services: "orders", keys: "" }], createIndex: made.index }]);
    expect(JSON.stringify(list)).not.toContain(made.secret);
    expect(JSON.stringify(list)).not.toContain(hashSecret(made.secret));
    expect(await codeOf(call("DeleteToken", { accessor: "not-hex" }))).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(call("DeleteToken", { accessor: "0000000000000000" }))).toBe(status.NOT_FOUND);
    await call("DeleteToken", { accessor: made.token.accessor });
    expect(h.sm.aclTokens()).toEqual([]);
  });

  it("acl service: with access control off every method is FAILED_PRECONDITION and nothing is written", async () => {
    const { logged, call } = setup(false);
    for (const m of ["Bootstrap", "CreateToken", "ListTokens", "DeleteToken"]) {
      expect(await codeOf(call(m, { name: "x", rules: [{ role: "read", services: "", keys: "" }], accessor: "0000000000000000" }))).toBe(status.FAILED_PRECONDITION);
    }
    expect(logged).toEqual([]);
  });
});
