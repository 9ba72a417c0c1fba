import { describe, expect, it } from "vitest";
import { LeaseDriver } from "../../../src/agent/lease-driver.js";
import type { OkResult } from "../../../src/api/registry-write.js";
import type { Instance, RegistryCommand } from "../../../src/registry/types.js";

const inst: Instance = {
  id: "a",
  service: "web",
  address: "10.0.0.1",
  port: 80,
  tags: [],
  metadata: {},
  weight: 1,
  priority: 0,
  zone: "",
  ttlMs: 5_000,
  deregisterCriticalAfterMs: 0,
  health: "passing",
  note: "",
  healthSince: 0,
  createIndex: 1,
  modIndex: 1,
};

describe("lease driver", () => {
  it("lease driver: a batch's status changes go into one entry, and only the heartbeat that asked names its index", async () => {
    let current = inst;
    const proposed: RegistryCommand[] = [];
    const driver = new LeaseDriver({
      registry: { allInstances: () => [current], instance: () => current },
      propose: async (cmd) => {
        proposed.push(cmd);
        if (cmd.op === "health.set") current = { ...current, health: cmd.changes.at(-1)?.health ?? current.health, modIndex: 7 };
        return { ok: true, index: 7 } as OkResult;
      },
      logger: { debug() {}, warn() {} },
      clusterNow: () => 0,
    });
    driver.onRole(true);
    const answers = await driver.renew([
      { service: "web", id: "a", status: "warning", note: "slow" },
      { service: "web", id: "a", status: "", note: "" },
      { service: "web", id: "zz", status: "", note: "" },
    ]);
    expect(proposed).toHaveLength(1);
    expect(answers.map((a) => [a.code, a.response?.index, a.response?.health])).toEqual([
      ["ok", 7, "warning"],
      ["ok", 0, "warning"],
      ["not-found", undefined, undefined],
    ]);
    driver.stop();
  });
});
