/**
 * A stop asked for while a node is still starting: an empty founder whose peers are all down waits
 * (without bound) to learn whether the cluster exists; SIGTERM then ends it with status 0 at once,
 * not by the signal's default action and not after a stop timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

/** STOP_WHILE_STARTING_MS bounds how long the exit may take: far below the clean-stop timeout (10 s). */
const STOP_WHILE_STARTING_MS = 3_000;

describe("stop while starting", () => {
  let c: ProcessCluster;
  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3 });
  });
  afterAll(async () => {
    await c?.cleanup();
  });

  it("stop: SIGTERM to a founder still waiting for its peers exits 0 at once, saying it stopped while starting", async () => {
    c.start("n1");
    await waitFor("n1 to say it waits for its peers", async () => (await c.logOf("n1")).includes("waiting until every member answers"), 20_000);
    const t0 = Date.now();
    const code = await c.stop("n1");
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(STOP_WHILE_STARTING_MS);
    const log = await c.logOf("n1");
    expect(log).toContain("stopping while still starting");
    expect(log).not.toContain("agent started");
  }, 30_000);
});
