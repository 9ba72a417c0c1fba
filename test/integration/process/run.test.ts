/**
 * `raftmesh run` against a real one-node cluster: it registers the instance once the process's
 * port accepts connections, reports critical at once when the process dies (no TTL), passing
 * again once the restarted process accepts connections, and deregisters on SIGTERM. Bad command
 * lines exit 2 naming the flag. With a TTL of 30 s and heartbeats every 10 s, only the immediate
 * report can make the instance critical within the test's bound.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePorts, ProcessCluster, runCli, waitFor } from "../harness/process-cluster.js";
import { RunProcess } from "../harness/run-process.js";
import { UsageError } from "../../../src/cli/errors.js";
import { runCommand } from "../../../src/cli/run-command.js";

const TTL_MS = 30_000;
/** CRITICAL_WITHIN_MS: far below the 10 s between periodic heartbeats, and above a commit on a loaded machine. */
const CRITICAL_WITHIN_MS = 2_000;

describe("raftmesh run", () => {
  let c: ProcessCluster;
  const runs: RunProcess[] = [];

  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 1 });
    c.startAll();
    await c.waitForLeader();
  }, 30_000);

  afterAll(async () => {
    for (const r of runs) r.child.kill("SIGKILL");
    await c?.cleanup();
  });

  it("run: registers, crash -> critical at once, restart -> passing, SIGTERM -> deregistered", async () => {
    const [port] = (await freePorts(1)) as [number];
    const server = `require("node:net").createServer((s) => s.end()).listen(${port}, "127.0.0.1")`;
    const run = new RunProcess(["--service", "web", "--id", "w1", "--port", String(port), "--ttl", String(TTL_MS), "--node", c.api("n1"), "--log-dir", `${c.root}/run-logs`], [process.execPath, "-e", server]);
    runs.push(run);
    const client = c.client("n1");
    const instance = async () => (await client.getService("web")).instances.find((i) => i.id === "w1");
    const reg = await run.next("registered");
    expect(reg).toMatchObject({ service: "web", id: "w1", port, ttlMs: TTL_MS });
    expect(await instance()).toMatchObject({ health: "passing", port });

    const pid = run.pid as number;
    const killedAt = performance.now();
    process.kill(pid, "SIGKILL");
    const exited = await run.next("exited", reg.index);
    expect(exited).toMatchObject({ signal: "SIGKILL", restartInMs: 100 });
    const critical = await waitFor("w1 critical", async () => {
      const i = await instance();
      return i?.health === "critical" ? i : undefined;
    }, CRITICAL_WITHIN_MS + 1_000);
    expect(performance.now() - killedAt).toBeLessThan(CRITICAL_WITHIN_MS);
    expect(critical.note).toMatch(/^process exited \(signal SIGKILL\); restart in 100 ms$/);

    // Restarted: passing once its port accepts connections again.
    const up = await run.next("reported", exited.index, 15_000, (l) => l.why === "up");
    expect(up).toMatchObject({ status: "passing", health: "passing" });
    expect(run.pid).not.toBe(pid);
    expect(await instance()).toMatchObject({ health: "passing" });

    const newPid = run.pid as number;
    expect(await run.stop()).toBe(0);
    expect(run.lines.some((l) => l.event === "deregistered")).toBe(true);
    expect(await instance()).toBeUndefined();
    expect(() => process.kill(newPid, 0)).toThrow();
  });

  it("run: a crash loop stops restarting at the limit and leaves the instance critical, saying so", async () => {
    const [port] = (await freePorts(1)) as [number];
    // Up long enough to be registered, then it dies: every run.
    const server = `require("node:net").createServer((s) => s.end()).listen(${port}, "127.0.0.1"); setTimeout(() => process.exit(1), 300)`;
    const run = new RunProcess(["--service", "loop", "--id", "l1", "--port", String(port), "--ttl", String(TTL_MS), "--node", c.api("n1"), "--log-dir", `${c.root}/run-logs`, "--crash-loop-restarts", "1"], [process.execPath, "-e", server]);
    runs.push(run);
    const loop = await run.next("crash-loop", 0, 15_000);
    expect(loop).toMatchObject({ restarts: 1, windowMs: 60_000 });
    expect(run.lines.filter((l) => l.event === "started")).toHaveLength(2);
    const inst = await waitFor("l1 critical with the crash loop", async () => {
      const i = (await c.client("n1").getService("loop")).instances.find((x) => x.id === "l1");
      return i?.health === "critical" && i.note.startsWith("crash loop") ? i : undefined;
    });
    expect(inst.note).toBe("crash loop: 1 restarts within 60000 ms; not restarted");
    await new Promise((r) => setTimeout(r, 500));
    expect(run.lines.filter((l) => l.event === "started")).toHaveLength(2);
    expect(await run.stop()).toBe(0);
  });

  it("run: bad command lines exit 2 and name the flag", async () => {
    // One real process shows the exit status and the message; the rest are refused before anything starts.
    const real = await runCli(["run", "--service", "web", "--id", "w", "--port", "http", "--", "true"]);
    expect(real.code).toBe(2);
    expect(real.stderr).toMatch(/--port: must be a whole number from 1 to 65535, got "http"/);
    const cases: [string[], RegExp][] = [
      [["--service", "web", "--id", "w"], /after "--"/],
      [["--id", "w", "--", "true"], /--service is required/],
      [["--service", "web", "--", "true"], /--id is required/],
      [["--service", "web", "--id", "w", "--ttl", "10", "--", "true"], /--ttl: must be a whole number from 1000/],
      [["--service", "web", "--id", "w", "--grace-ms", "-1", "--", "true"], /grace-ms/],
      [["--service", "web", "--id", "w", "--bogus", "--", "true"], /bogus/],
      [["--service", "web", "--id", "w", "--user", "no-such-user-here", "--", "true"], /--user: "no-such-user-here"/],
    ];
    for (const [args, msg] of cases) {
      const err = await runCommand(args, () => {}).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, args.join(" ")).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(msg);
    }
  });
});
