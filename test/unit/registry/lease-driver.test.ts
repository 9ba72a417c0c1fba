import { describe, expect, it } from "vitest";
import { LEASE_CONFIRM_MS, LeaseDriver, type LeaseLeadership, TAKEOVER_SLICE_LEASES } from "../../../src/registry/lease-driver.js";
import type { OkResult } from "../../../src/registry/writer.js";
import type { RegistryCommand } from "../../../src/registry/types.js";
import { TTL_MS_RANGE } from "../../../src/registry/limits.js";
import { instance } from "../../fixtures/registry.js";

const inst = instance("a");

describe("lease driver", () => {
  it("lease driver: a batch's status changes go into one entry, and only the heartbeat that asked names its index", async () => {
    let current = inst;
    const proposed: RegistryCommand[] = [];
    const driver = new LeaseDriver({
      registry: { eachInstance: () => [current], instance: () => current },
      propose: async (cmd) => {
        proposed.push(cmd);
        if (cmd.op === "health.set") current = { ...current, health: cmd.changes.at(-1)?.health ?? current.health, modIndex: 7 };
        return { ok: true, index: 7 } as OkResult;
      },
      logger: { debug() {}, warn() {} },
      leadership: { isLeader: () => true, readIndex: async () => 7 },
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

  it("lease driver: heartbeats are acknowledged only once a quorum confirmed this node still leads", async () => {
    const calls: number[] = [];
    let confirm: (() => void) | undefined;
    let refuse: ((err: Error) => void) | undefined;
    const leadership: LeaseLeadership = {
      isLeader: () => true,
      readIndex: (timeoutMs) => {
        calls.push(timeoutMs);
        return new Promise((resolve, reject) => {
          confirm = () => resolve(3);
          refuse = reject;
        });
      },
    };
    const driver = new LeaseDriver({ registry: { eachInstance: () => [inst], instance: () => inst }, propose: async () => ({ ok: true, index: 1 }) as OkResult, logger: { debug() {}, warn() {} }, leadership, clusterNow: () => 0 });
    driver.onRole(true);
    let settled = false;
    const first = driver.renew([{ service: "web", id: "a", status: "", note: "" }]).finally(() => {
      settled = true;
    });
    await new Promise((r) => setImmediate(r));
    // One confirmation per batch, asked for after the renewal, bounded by LEASE_CONFIRM_MS.
    expect(calls).toEqual([LEASE_CONFIRM_MS]);
    expect(settled).toBe(false);
    confirm?.();
    expect((await first).map((a) => a.code)).toEqual(["ok"]);
    // A leader that cannot confirm (deposed, cut off, or its read timed out) does not acknowledge.
    const second = driver.renew([
      { service: "web", id: "a", status: "", note: "" },
      { service: "web", id: "zz", status: "", note: "" },
    ]);
    refuse?.(new Error("read index timed out"));
    expect((await second).map((a) => [a.code, a.response ?? null])).toEqual([
      ["unconfirmed", null],
      ["not-found", null],
    ]);
    driver.stop();
  });

  it("lease driver: a node whose core no longer leads acknowledges nothing, and asks no other node to confirm", async () => {
    let reads = 0;
    const driver = new LeaseDriver({
      registry: { eachInstance: () => [inst], instance: () => inst },
      propose: async () => ({ ok: true, index: 1 }) as OkResult,
      logger: { debug() {}, warn() {} },
      // The core stepped down, and the driver has not heard yet (onRole comes with the next ready):
      // RaftNode.readIndex would forward to the new leader and confirm its leadership, not ours.
      leadership: { isLeader: () => false, readIndex: async () => ++reads },
      clusterNow: () => 0,
    });
    driver.onRole(true);
    expect((await driver.renew([{ service: "web", id: "a", status: "", note: "" }])).map((a) => a.code)).toEqual(["unconfirmed"]);
    expect(reads).toBe(0);
    driver.stop();
  });

  it("lease driver: a new leader seeds its leases TAKEOVER_SLICE_LEASES per timer turn, and a heartbeat meanwhile is answered", async () => {
    const n = 3 * TAKEOVER_SLICE_LEASES + 10;
    const all = Array.from({ length: n }, (_, i) => instance(`i${i}`));
    const byId = new Map(all.map((i) => [i.id, i]));
    const turns: (() => void)[] = [];
    let check: (() => void) | undefined;
    let mono = 0;
    const driver = new LeaseDriver({
      monoMs: () => mono,
      registry: { eachInstance: () => byId.values(), instance: (service, id) => (service === "web" ? byId.get(id) : undefined) },
      propose: async () => ({ ok: true, index: 7 }) as OkResult,
      logger: { debug() {}, warn() {} },
      leadership: { isLeader: () => true, readIndex: async () => 7 },
      clusterNow: () => 0,
      timer: {
        every: (_ms, fn) => {
          check = fn;
          return () => {};
        },
        after: (_ms, fn) => {
          turns.push(fn);
          return () => turns.splice(turns.indexOf(fn), 1);
        },
      },
    });
    driver.start();
    driver.onRole(true);
    // One slice ran at once; the next waits for its turn.
    expect(turns).toHaveLength(1);
    // The periodic check leaves the seeding to its slices while no lease can have expired yet.
    check?.();
    (turns.shift() as () => void)();
    expect(turns).toHaveLength(1);
    // The last instance is not seeded yet, and its heartbeat is still answered.
    const [answer] = await driver.renew([{ service: "web", id: `i${n - 1}`, status: "", note: "" }]);
    expect(answer?.code).toBe("ok");
    // At the shortest TTL after the takeover it seeds the rest itself: the filed slice finds nothing left.
    mono = TTL_MS_RANGE[0];
    check?.();
    (turns.shift() as () => void)();
    expect(turns).toHaveLength(0);
    // Stepping down while a slice is filed cancels it.
    driver.onRole(false);
    driver.onRole(true);
    expect(turns).toHaveLength(1);
    driver.onRole(false);
    expect(turns).toHaveLength(0);
    driver.stop();
  });
});
