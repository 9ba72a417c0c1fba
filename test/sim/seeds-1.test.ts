import { describe, expect, it } from "vitest";
import { describeFailures, runCampaign } from "./campaign.js";

// Seeds are split over files so vitest runs them on both cores.
describe("sim: seeds 1..1000", () => {
  it("sim: every seed keeps election, log, state machine, membership and read safety, and recovers after heal", () => {
    const r = runCampaign(1, 1000);
    expect(describeFailures(r)).toBe("");
    expect(r.seeds).toBe(1000);
    // The runs must actually exercise the protocol, or a clean result proves nothing.
    expect(r.elections).toBeGreaterThan(1000);
    expect(r.writesAcked).toBeGreaterThan(10_000);
    expect(r.readsDone).toBeGreaterThan(1000);
    expect(r.crashes).toBeGreaterThan(500);
    expect(r.confChanges).toBeGreaterThan(100);
  });
});
