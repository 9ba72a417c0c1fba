import { expect, it } from "vitest";
import { checkSeedRange, SEEDS_PER_FILE } from "./campaign.js";

// Seeds are split over files so vitest runs them on both cores.
it("sim: seeds 1..750 keep election, log, state machine, membership and read safety, and recover after heal", async () => {
  expect(await checkSeedRange(1, SEEDS_PER_FILE)).toEqual([]);
});
