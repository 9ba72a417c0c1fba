import { expect, it } from "vitest";
import { checkSeedRange } from "./campaign.js";

// Seeds are split over files so vitest runs them on both cores.
it("sim: seeds 1001..2000 keep election, log, state machine, membership and read safety, and recover after heal", async () => {
  expect(await checkSeedRange(1001, 1000)).toEqual([]);
});
