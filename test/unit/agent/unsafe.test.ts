import { describe, expect, it } from "vitest";
import { readUnsafeSwitches, SAFE } from "../../../src/agent/unsafe.js";
import { ConfigError } from "../../../src/config/index.js";

describe("unsafe switches", () => {
  it("unsafe: off unless RAFTMESH_TEST_UNSAFE names them; unknown names are refused", () => {
    expect(readUnsafeSwitches({})).toEqual(SAFE);
    expect(readUnsafeSwitches({ RAFTMESH_TEST_UNSAFE: "" })).toEqual(SAFE);
    expect(readUnsafeSwitches({ RAFTMESH_TEST_UNSAFE: "stale-reads" })).toEqual({ staleReads: true, earlyAck: false, clockControl: false });
    expect(readUnsafeSwitches({ RAFTMESH_TEST_UNSAFE: "early-ack, stale-reads" })).toEqual({ staleReads: true, earlyAck: true, clockControl: false });
    expect(readUnsafeSwitches({ RAFTMESH_TEST_UNSAFE: "clock" }).clockControl).toBe(true);
    expect(() => readUnsafeSwitches({ RAFTMESH_TEST_UNSAFE: "fast" })).toThrow(ConfigError);
  });
});
