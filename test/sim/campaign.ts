import { runSeed, type SimConfig, type SimResult } from "./simulation.js";

/** CampaignResult sums a range of seeds. */
export interface CampaignResult {
  seeds: number;
  failures: SimResult[];
  healToWriteTicksMax: number;
  elections: number;
  writesAcked: number;
  readsDone: number;
  crashes: number;
  confChanges: number;
}

/** runCampaign runs seeds [first, first+count) and stops after `stopAfter` failures. */
export async function runCampaign(first: number, count: number, base: Omit<SimConfig, "seed"> = {}, stopAfter = 5): Promise<CampaignResult> {
  const out: CampaignResult = { seeds: 0, failures: [], healToWriteTicksMax: 0, elections: 0, writesAcked: 0, readsDone: 0, crashes: 0, confChanges: 0 };
  for (let seed = first; seed < first + count; seed++) {
    const r = await runSeed({ ...base, seed });
    out.seeds++;
    out.elections += r.elections;
    out.writesAcked += r.writesAcked;
    out.readsDone += r.readsDone;
    out.crashes += r.crashes;
    out.confChanges += r.confChanges;
    out.healToWriteTicksMax = Math.max(out.healToWriteTicksMax, r.healToWriteTicks);
    if (!r.ok) {
      out.failures.push(r);
      if (out.failures.length >= stopAfter) break;
    }
  }
  return out;
}

/** describeFailures prints failures with the command that replays each. */
export function describeFailures(r: CampaignResult, flags = ""): string {
  return r.failures
    .map((f) => `seed=${f.seed} step=${f.violation?.tick} ${f.violation?.message}\n  replay: npm run sim -- --seed ${f.seed}${flags}`)
    .join("\n");
}

/**
 * SEEDS_PER_FILE is how many seeds each of seeds-1.test.ts and seeds-2.test.ts runs in `npm test`:
 * 750, so the two files cost no more CPU than the 1,000 each they ran when the simulator drove
 * the core through its own host loop (a seed through RaftNode costs about 1.35 times as much);
 * longer campaigns run from the command line (npm run sim -- --seeds N).
 */
export const SEEDS_PER_FILE = 750;

/** SEED_RANGE_ACTIVITY_MIN is how much one range of 1,000 seeds must exercise, or a clean result proves nothing. */
export const SEED_RANGE_ACTIVITY_MIN = { elections: 1000, writesAcked: 10_000, readsDone: 1000, crashes: 500, confChanges: 100 };

/** checkSeedRange runs a range and returns the problems found: failures, or too little activity. */
export async function checkSeedRange(first: number, count: number, base: Omit<SimConfig, "seed"> = {}): Promise<string[]> {
  const r = await runCampaign(first, count, base);
  const flags = base.machine && base.machine !== "kv" ? ` --machine ${base.machine}` : "";
  const problems = r.failures.length > 0 ? [describeFailures(r, flags)] : [];
  const scale = count / 1000;
  for (const [k, min] of Object.entries(SEED_RANGE_ACTIVITY_MIN)) {
    const got = r[k as keyof typeof SEED_RANGE_ACTIVITY_MIN];
    if (got < min * scale) problems.push(`only ${got} ${k} in ${count} seeds`);
  }
  return problems;
}
