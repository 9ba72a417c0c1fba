import { describe, expect, it } from "vitest";
import { anyUnsafe, readUnsafeSwitches, SAFE, unconfirmedLeadership } from "../../../src/agent/unsafe.js";
import { ConfigError } from "../../../src/config/index.js";

describe("unsafe switches", () => {
  it("unsafe: off unless RAFTMESH_TEST_UNSAFE names them; unknown names are refused", () => {
    expect(readUnsafeSwitches({})).toEqual(SAFE);
    expect(readUnsafeSwitches({ RAFTMESH_TEST_UNSAFE: "" })).toEqual(SAFE);
    expect(readUnsafeSwitches({ RAFTMESH_TEST_UNSAFE: "stale-reads" })).toEqual({ ...SAFE, staleReads: true });
    expect(readUnsafeSwitches({ RAFTMESH_TEST_UNSAFE: "early-ack, stale-reads" })).toEqual({ ...SAFE, staleReads: true, earlyAck: true });
    expect(readUnsafeSwitches({ RAFTMESH_TEST_UNSAFE: "clock" }).clockControl).toBe(true);
    expect(readUnsafeSwitches({ RAFTMESH_TEST_UNSAFE: "unconfirmed-lease-ack" })).toEqual({ ...SAFE, unconfirmedLeaseAck: true });
    expect(anyUnsafe(SAFE)).toBe(false);
    expect(anyUnsafe(readUnsafeSwitches({ RAFTMESH_TEST_UNSAFE: "unconfirmed-lease-ack" }))).toBe(true);
    expect(() => readUnsafeSwitches({ RAFTMESH_TEST_UNSAFE: "fast" })).toThrow(ConfigError);
  });

  it("unsafe: unconfirmed-lease-ack takes the node's own belief that it leads for a confirmation", async () => {
    let leads = true;
    const l = unconfirmedLeadership({ isLeader: () => leads });
    expect(l.isLeader()).toBe(true);
    await expect(l.readIndex(1_000)).resolves.toBeUndefined();
    leads = false;
    expect(l.isLeader()).toBe(false);
  });
});
