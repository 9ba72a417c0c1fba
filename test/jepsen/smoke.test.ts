/**
 * The CI smoke of the fault-injection suite: five agents in network namespaces, register and set
 * workloads under partitions and SIGKILLs, and one negative control (a node build that serves
 * stale reads) that the checker must flag, about 2.5 minutes (35 s of faults per workload
 * run, about six faults; the long runs are `npm run jepsen`). It needs root, `ip netns` and `nft`:
 * in CI (CI set) their absence is a failure; elsewhere the test is skipped and says why.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root";
  for (const [cmd, args] of [
    ["ip", ["netns", "list"]],
    ["nft", ["--version"]],
  ] as const) {
    try {
      execFileSync(cmd, args, { stdio: "ignore" });
    } catch {
      return `needs ${cmd}`;
    }
  }
  return undefined;
}

const why = missing();
if (why && process.env.CI) throw new Error(`jepsen smoke: ${why}, and CI must run it (.ci/run installs nftables)`);

/** RUN_TIMEOUT_MS bounds one run: faults + warm-up, recovery, final reads and the check. */
const RUN_TIMEOUT_MS = 150_000;

function jepsen(args: string[], runsDir: string): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "test/jepsen/run.ts"), ...args, "--runs-dir", runsDir], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill("SIGINT"), RUN_TIMEOUT_MS);
    child.on("exit", (code) => {
      clearTimeout(timer);
      done({ code, out });
    });
  });
}

describe.skipIf(why !== undefined)(`jepsen smoke${why ? ` (skipped: ${why})` : ""}`, () => {
  const runsDir = mkdtempSync(join(tmpdir(), "raftmesh-jepsen-smoke-"));
  afterAll(() => {
    if (!process.env.KEEP_RUNS) rmSync(runsDir, { recursive: true, force: true });
  });

  it("jepsen smoke: register stays linearizable under partitions and SIGKILLs", async () => {
    const { code, out } = await jepsen(["--workload", "register", "--nemesis", "partition,kill", "--time-limit", "35", "--seed", "7"], runsDir);
    expect(out, out).toMatch(/RESULT: VALID/);
    expect(code).toBe(0);
  }, RUN_TIMEOUT_MS + 10_000);

  it("jepsen smoke: set loses no acknowledged registration under partitions and SIGKILLs", async () => {
    const { code, out } = await jepsen(["--workload", "set", "--nemesis", "partition,kill", "--time-limit", "35", "--seed", "3"], runsDir);
    expect(out, out).toMatch(/RESULT: VALID/);
    expect(code).toBe(0);
  }, RUN_TIMEOUT_MS + 10_000);

  // A checker that stopped checking would pass everything above: the negative control proves it
  // still fails a history that is not linearizable. The verdict must come from the checker (a
  // not-linearizable anomaly), not from a harness failure, which also exits non-zero.
  it("jepsen smoke: the register checker flags a node build that serves stale reads", async () => {
    const { code, out } = await jepsen(
      ["--workload", "register", "--nemesis", "partition", "--unsafe", "stale-reads", "--time-limit", "20", "--recovery-ms", "3000", "--seed", "7"],
      runsDir,
    );
    expect(out, out).toMatch(/RESULT: INVALID/);
    expect(out, out).toMatch(/not-linearizable: key /);
    expect(code).toBe(1);
  }, RUN_TIMEOUT_MS + 10_000);
});
