import { describe, expect, it } from "vitest";
import { runSeed } from "./simulation.js";

/**
 * A seed must replay exactly: the simulator prints "reproduce with --seed N", and that is only
 * true when nothing but the seed decides a run. The nodes are production RaftNodes whose awaits
 * are real microtasks, so this also checks that no timer, clock or randomness of the process
 * leaks into them. The trace is a hash of every message sent, in order.
 */
/** FAULT_TICKS shortens the runs: a third of the usual fault phase still crashes, partitions and elects. */
const FAULT_TICKS = 200;

describe("sim: determinism", () => {
  it("sim: the same seed gives the same run, message for message, alone or interleaved with another run", async () => {
    for (const seed of [7, 10]) {
      const first = await runSeed({ seed, faultTicks: FAULT_TICKS });
      const again = await runSeed({ seed, faultTicks: FAULT_TICKS });
      expect(again).toEqual(first);
      // Two runs at once interleave their host loops' microtasks: neither may notice the other.
      const [side, other] = await Promise.all([runSeed({ seed, faultTicks: FAULT_TICKS }), runSeed({ seed: seed + 100, faultTicks: FAULT_TICKS })]);
      expect(side).toEqual(first);
      expect(other.trace).not.toBe(first.trace);
      expect(first.messages).toBeGreaterThan(100);
      expect(first.crashes + first.elections).toBeGreaterThan(1);
    }
  });

  it("sim: the same seed gives the same run with the registry machine", async () => {
    const first = await runSeed({ seed: 9, machine: "registry" });
    expect(await runSeed({ seed: 9, machine: "registry" })).toEqual(first);
    expect(first.registry?.commands).toBeGreaterThan(10);
    // The lease drivers and the heartbeats run on the same virtual clock: they replay too.
    expect(first.registry?.leases?.acks).toBeGreaterThan(10);
  });
});
