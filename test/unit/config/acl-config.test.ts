import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../../src/config/index.js";

const base = { "node-id": "n1", members: "n1=127.0.0.1:7101" };

describe("config: access control", () => {
  it("config acl: off by default; on from the flag, the environment or the file, with the secrets taken as given", () => {
    const off = loadConfig({ env: {}, flags: base });
    expect([off.acl, off.aclBootstrapToken, off.aclAgentToken]).toEqual([false, "", ""]);
    const secret = "0123456789abcdef".repeat(4);
    const on = loadConfig({ env: { RAFTMESH_ACL: "true", RAFTMESH_ACL_BOOTSTRAP_TOKEN: secret }, flags: { ...base, "acl-agent-token": secret } });
    expect([on.acl, on.aclBootstrapToken, on.aclAgentToken]).toEqual([true, secret, secret]);
  });

  it("config acl: a secret that is not 64 lower-case hex digits is refused naming the field, and the error never shows it", () => {
    for (const bad of ["hunter2", "0123456789ABCDEF".repeat(4), `${"a".repeat(64)}\n`, "a".repeat(63)]) {
      let err: unknown;
      try {
        loadConfig({ env: { RAFTMESH_ACL_BOOTSTRAP_TOKEN: bad }, flags: base });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toContain("aclBootstrapToken");
      expect((err as ConfigError).message).not.toContain(bad.trim());
    }
  });
});
