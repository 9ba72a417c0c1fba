import { expect, it } from "vitest";
import { checkSeedRange, SEEDS_PER_FILE } from "./campaign.js";

// Seeds are split over files so vitest runs them on both cores.
it("sim: seeds 751..1500 keep election, log, state machine, membership and read safety, and recover after heal", async () => {
  expect(await checkSeedRange(SEEDS_PER_FILE + 1, SEEDS_PER_FILE)).toEqual([]);
});
