/**
 * `npm run fuzz -- --cases N [--seed S]`: starts a 3-node process cluster, runs the fuzzer
 * (fuzz.ts) against it, prints case counts per method and the statuses returned, and exits 1 on
 * any crash, hang, unclear status or state difference. With `--h2`, N HTTP/2 frame attacks
 * (h2-frames.ts) instead: outcomes per attack kind, a valid write and read after every batch.
 */
import { parseArgs } from "node:util";
import { ProcessCluster } from "../integration/harness/process-cluster.js";
import { formatReport, runFuzz } from "./fuzz.js";
import { formatH2Report, runH2Fuzz } from "./h2-frames.js";

const { values } = parseArgs({ options: { cases: { type: "string", default: "10000" }, seed: { type: "string", default: "1" }, h2: { type: "boolean", default: false } } });
const cases = Number(values.cases);
const seed = Number(values.seed);
if (!Number.isSafeInteger(cases) || cases < 1) {
  console.error(`--cases: must be a positive integer, got ${values.cases}`);
  process.exit(2);
}
if (!Number.isSafeInteger(seed)) {
  console.error(`--seed: must be an integer, got ${values.seed}`);
  process.exit(2);
}
const cluster = await ProcessCluster.create({ size: 3 });
let code = 1;
try {
  cluster.startAll();
  await cluster.waitForLeader(60_000);
  if (values.h2) {
    const report = await runH2Fuzz(cluster, ["n1", "n2", "n3"], cases, seed, (s) => console.log(s));
    console.log(formatH2Report(report));
    code = report.problems.length === 0 ? 0 : 1;
  } else {
    const report = await runFuzz(cluster, ["n1", "n2", "n3"], cases, seed, (s) => console.log(s));
    console.log(formatReport(report));
    code = report.problems.length === 0 ? 0 : 1;
  }
} finally {
  await cluster.cleanup();
}
process.exit(code);
