/**
 * The crash test's command line (npm run test:crash):
 *   tsx test/crash/run.ts                      100 rounds with a fresh seed (printed)
 *   tsx test/crash/run.ts --rounds 20 --seed 7 replay a schedule
 * Each round: concurrent writers, SIGKILL of the leader / a follower / two nodes at seeded random
 * moments, restart, then the checks in test/integration/harness/crash-rounds.ts. Prints one line
 * per round and a final line with totals; exits 1 on any violation, 2 on bad flags.
 * KEEP_CLUSTER=1 keeps the data directories of a failed run for inspection.
 */
import { parseArgs } from "node:util";
import { type CrashResult, type RoundReport, runCrashRounds, SNAPSHOT_ENTRIES_DEFAULT, summarize } from "../integration/harness/crash-rounds.js";
import { ProcessCluster } from "../integration/harness/process-cluster.js";

/** ROUNDS_DEFAULT is the issue's figure: a hundred kill-restart rounds. */
const ROUNDS_DEFAULT = 100;

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: String(ROUNDS_DEFAULT) },
    seed: { type: "string" },
    writers: { type: "string", default: "4" },
  },
  strict: true,
});

function intArg(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer of at least ${min}, got "${v}"`);
    process.exit(2);
  }
  return n;
}

const rounds = intArg("rounds", values.rounds, 1) ?? ROUNDS_DEFAULT;
const seed = intArg("seed", values.seed, 0) ?? Math.floor(Math.random() * 0x7fffffff);
const writers = intArg("writers", values.writers, 1) ?? 4;

function codes(r: RoundReport): string {
  const parts = Object.entries(r.unknownByCode).map(([code, n]) => `${code}:${n}`);
  return parts.length > 0 ? `(${parts.join(",")})` : "";
}

function line(r: RoundReport): string {
  const kills = r.kills.map((k) => `${k.node}${k.wasLeader ? "(L)" : ""}@${k.atMs}ms/${k.downMs}ms`).join(" ");
  const [from, to] = r.compared;
  const compared = from <= to ? `${from}..${to}` : "none";
  const verdict = r.violations.length === 0 ? "ok" : `VIOLATIONS ${r.violations.length}`;
  return `round ${r.round}/${rounds} kills=[${kills}] acked=${r.acked} refused=${r.failed} unknown=${r.unknown}${codes(r)} commit=${r.commit} snapshots=${r.snapshotIndexes.join("/")} compared=${compared} stop=${r.stopSignal} ${(r.durationMs / 1000).toFixed(1)}s ${verdict}`;
}

async function main(): Promise<number> {
  console.log(`crash: seed=${seed} rounds=${rounds} writers=${writers} snapshotEntries=${SNAPSHOT_ENTRIES_DEFAULT}`);
  const cluster = await ProcessCluster.create({ size: 3, env: { RAFTMESH_SNAPSHOT_ENTRIES: String(SNAPSHOT_ENTRIES_DEFAULT) } });
  let result: CrashResult | undefined;
  const onSignal = () => void cluster.cleanup().then(() => process.exit(130));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    cluster.startAll();
    result = await runCrashRounds(cluster, { seed, rounds, writers, onRound: (r) => console.log(line(r)) });
  } finally {
    if (result && result.violations.length > 0) console.log(`cluster data: ${cluster.root}${process.env.KEEP_CLUSTER ? "" : " (removed; set KEEP_CLUSTER=1 to keep it)"}`);
    await cluster.cleanup();
  }
  for (const v of result.violations) console.log(`VIOLATION round ${v.round} ${v.property}: ${v.message}`);
  const t = summarize(result);
  console.log(
    `crash: seed=${seed} rounds=${t.rounds} acked=${t.acked} refused=${t.failed} unknown=${t.unknown} kills=${t.kills} (leader ${t.leaderKills}, double ${t.doubleKills}) violations=${t.violations} duration=${(result.durationMs / 1000).toFixed(1)}s${t.violations > 0 ? ` reproduce with: tsx test/crash/run.ts --seed ${seed} --rounds ${t.rounds}` : ""}`,
  );
  return t.violations > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
