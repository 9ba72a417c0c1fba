/**
 * The fuzzer's short fixed-seed run in `npm test` (issue 16): FUZZ_CASES cases over every client API
 * method against a live 3-node process cluster: no node exits, every call is answered before its
 * deadline with a clear status, and the state equals the replay of the accepted writes. Long runs:
 * `npm run fuzz -- --cases N [--seed S]`.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { formatReport, runFuzz } from "../../fuzz/fuzz.js";
import { ProcessCluster } from "../harness/process-cluster.js";

/** FUZZ_CASES and FUZZ_SEED: about 50 cases per method (2,000 took 28 s on a loaded 2-core machine; a process test keeps to ~20 s). */
const FUZZ_CASES = 1_200;
const FUZZ_SEED = 16;

let c: ProcessCluster;
beforeAll(async () => {
  c = await ProcessCluster.create({ size: 3 });
  c.startAll();
  await c.waitForLeader(60_000);
}, 90_000);
afterAll(async () => {
  await c?.cleanup();
});

it(`fuzz: ${FUZZ_CASES} cases (seed ${FUZZ_SEED}) over every method: no crash, no hang, clear statuses, state equals the replay of the accepted writes`, async () => {
  const report = await runFuzz(c, ["n1", "n2", "n3"], FUZZ_CASES, FUZZ_SEED);
  console.log(formatReport(report));
  expect(report.problems).toEqual([]);
  // Every method was called, with every kind it has.
  expect(Object.keys(report.perMethod).length).toBe(28);
}, 120_000);
