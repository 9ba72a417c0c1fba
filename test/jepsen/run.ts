/**
 * The Jepsen-style suite's command line: `npm run jepsen -- --workload register --nemesis
 * partition,kill,pause --time-limit 60 --seed 7`. Exit status: 0 if every verdict is valid, 1 if
 * any is invalid, 2 if any is unknown or the usage was bad (or the run itself failed).
 */
import { spawn } from "node:child_process";
import { exitStatus, formatSummary } from "./runner/results.js";
import { parseRunOptions, USAGE, UsageError } from "./runner/options.js";
import { runTest } from "./runner/schedule.js";

/** NETNS_LOCK_FILE is the lock every netns run holds while it runs (runs wait for each other). */
const NETNS_LOCK_FILE = "/tmp/raftmesh-jepsen-netns.lock";
/** NETNS_LOCKED_ENV tells the re-run process that it holds the lock already. */
const NETNS_LOCKED_ENV = "RAFTMESH_JEPSEN_LOCKED";

/**
 * rerunLocked runs this same command again under flock(1) holding NETNS_LOCK_FILE. With -o the
 * lock stays with flock alone (the run and the agents it starts do not inherit it), so it is
 * released when the run ends even if an agent outlives it. The run gets its own process group, and
 * SIGINT/SIGTERM sent to this process are passed on to that group (its exit handlers clean up).
 */
function rerunLocked(): Promise<number> {
  const child = spawn("flock", ["-o", NETNS_LOCK_FILE, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
    detached: true,
    env: { ...process.env, [NETNS_LOCKED_ENV]: "1" },
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      if (child.pid !== undefined) process.kill(-child.pid, sig);
    });
  }
  return new Promise((done, fail) => {
    child.on("error", fail);
    child.on("exit", (code, signal) => done(code ?? (signal ? 2 : 0)));
  });
}

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
  // The netns harness uses fixed namespace and nftables names: two runs at once would tear down
  // each other's nodes. So every netns run holds one lock, taken by re-running under flock(1).
  if (options.cluster === "netns" && process.env[NETNS_LOCKED_ENV] !== "1") return rerunLocked();
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
