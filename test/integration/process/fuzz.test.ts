/**
 * The fuzzer's short fixed-seed run in `npm test` (issue 16): FUZZ_CASES cases over every client API
 * method against a live 3-node process cluster: no node exits, every call is answered before its
 * deadline with a clear status, and the state equals the replay of the accepted writes; then
 * H2_ATTACKS raw HTTP/2 frame attacks (h2-frames.ts) on the same cluster, each batch followed by a
 * valid write and read. Long runs: `npm run fuzz -- --cases N [--seed S] [--h2]`.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { formatReport, runFuzz } from "../../fuzz/fuzz.js";
import { ATTACK_KINDS, formatH2Report, runH2Fuzz } from "../../fuzz/h2-frames.js";
import { ProcessCluster } from "../harness/process-cluster.js";

/** FUZZ_CASES and FUZZ_SEED: about 50 cases per method (2,000 took 28 s on a loaded 2-core machine; a process test keeps to ~20 s). */
const FUZZ_CASES = 1_200;
const FUZZ_SEED = 16;
/** H2_ATTACKS: three batches, one per node, of every attack kind (about a second). */
const H2_ATTACKS = 3 * ATTACK_KINDS.length;

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

// After the case run: its state check covers the whole store, and the attacks' valid writes live under their own prefix.
it(`fuzz: ${H2_ATTACKS} raw HTTP/2 frame attacks (seed ${FUZZ_SEED}): every node still answers a valid write and read after each batch, no node exits, only the valid writes are stored`, async () => {
  const report = await runH2Fuzz(c, ["n1", "n2", "n3"], H2_ATTACKS, FUZZ_SEED);
  console.log(formatH2Report(report));
  expect(report.problems).toEqual([]);
  expect(Object.keys(report.outcomes).sort()).toEqual([...ATTACK_KINDS].sort());
}, 60_000);
