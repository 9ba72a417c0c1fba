/**
 * `npm test`: the whole suite in two lanes that run side by side, each a `vitest run` of one project
 * (vitest.config.ts) with one file at a time.
 *
 * Why lanes and not `vitest run --maxWorkers=2`: vitest hands the next file to whichever worker is
 * free, so two process tests — two agent clusters of 3-5 processes with election timers — would
 * often share the 2 cores, and their timing is what several of them assert. A lane of its own keeps
 * the process tests one at a time, as when the suite ran serially; the other lane holds the unit,
 * simulator, in-process and balancer files and the Jepsen smoke (whose cluster lives in network
 * namespaces of its own and is judged by a checker, not by timings). Serially the suite took ~18
 * minutes (1,088 s of vitest); the lanes are balanced by those files' measured times (processes
 * ~610 s, the rest ~380 s).
 *
 * Each lane gets its own slice of test ports (RAFTMESH_TEST_LANE, test/integration/harness/ports.ts):
 * vitest numbers its workers from 1 in every run, so without it both lanes would choose from one slice.
 *
 * Arguments (`npm test -- test/unit/raft`) run vitest once with them, in one lane, as before.
 * A line of either lane is printed whole, prefixed by its lane; both run to the end even when one
 * fails, and the exit status is non-zero when either failed.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

/** LANES are the vitest projects that run side by side (names as in vitest.config.ts). */
const LANES = ["processes", "rest"] as const;

const vitestBin = new URL("../node_modules/vitest/vitest.mjs", import.meta.url).pathname;

function runVitest(args: readonly string[], env: NodeJS.ProcessEnv, prefix: string): Promise<number> {
  const child = spawn(process.execPath, [vitestBin, "run", ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  for (const stream of [child.stdout, child.stderr]) {
    const out = stream === child.stdout ? process.stdout : process.stderr;
    createInterface({ input: stream }).on("line", (line) => out.write(`${prefix}${line}\n`));
  }
  return new Promise((resolve) => {
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    child.on("error", (err) => {
      process.stderr.write(`${prefix}could not start vitest: ${err.message}\n`);
      resolve(1);
    });
  });
}

const children: ReturnType<typeof spawn>[] = [];
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    for (const c of children) c.kill(signal);
  });
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.length > 0) return runVitest(args, process.env, "");
  const started = Date.now();
  const codes = await Promise.all(
    LANES.map(async (lane, i) => {
      const code = await runVitest(["--project", lane], { ...process.env, RAFTMESH_TEST_LANE: String(i) }, `[${lane}] `);
      process.stdout.write(`lane ${lane}: ${code === 0 ? "passed" : `FAILED (exit ${code})`} after ${Math.round((Date.now() - started) / 1000)} s\n`);
      return code;
    }),
  );
  const failed = LANES.filter((_, i) => codes[i] !== 0);
  process.stdout.write(`npm test: ${failed.length === 0 ? "every lane passed" : `failed in ${failed.join(", ")}`} (${Math.round((Date.now() - started) / 1000)} s)\n`);
  return failed.length === 0 ? 0 : 1;
}

process.exitCode = await main();
