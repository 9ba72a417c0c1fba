/**
 * The Jepsen-style suite's command line: `npm run jepsen -- --workload register --nemesis
 * partition,kill,pause --time-limit 60 --seed 7`. Exit status: 0 if every verdict is valid, 1 if
 * any is invalid, 2 if any is unknown or the usage was bad (or the run itself failed).
 */
import { exitStatus, formatSummary } from "./runner/results.js";
import { parseRunOptions, USAGE, UsageError } from "./runner/options.js";
import { runTest } from "./runner/schedule.js";

async function main(): Promise<number> {
  let options: ReturnType<typeof parseRunOptions>;
  try {
    options = parseRunOptions(process.argv.slice(2), Math.floor(Math.random() * 4_294_967_296));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${err.message}\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  const log = (line: string) => console.error(`[jepsen ${new Date().toISOString().slice(11, 19)}] ${line}`);
  try {
    const results = await runTest(options, log);
    console.log(formatSummary(results));
    return exitStatus(results.valid);
  } catch (err) {
    console.error(`run failed (seed ${options.seed}):`, err);
    return 2;
  }
}

// Exit explicitly: a stopped agent's pending waits and grpc channels must not keep us alive.
main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
