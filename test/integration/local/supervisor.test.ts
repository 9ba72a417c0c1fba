import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROCESS_TOKEN_ENV } from "../../../src/common/process-token.js";
import { SupervisorError } from "../../../src/local/errors.js";
import { Supervisor, type SupervisorEvent, userCredentials } from "../../../src/local/supervisor.js";

/** Real processes (sh), small limits so each test takes about a second. */
const dir = () => mkdtempSync(join(tmpdir(), "raftmesh-sup-"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** record collects events with their time; next waits for the next one of a kind (polling, bounded). */
function record(s: Supervisor): { events: (SupervisorEvent & { at: number })[]; next(kind: SupervisorEvent["kind"], timeoutMs?: number): Promise<SupervisorEvent & { at: number }> } {
  const events: (SupervisorEvent & { at: number })[] = [];
  s.events.on("event", (e) => events.push({ ...e, at: performance.now() }));
  let seen = 0;
  return {
    events,
    async next(kind, timeoutMs = 10_000) {
      const until = performance.now() + timeoutMs;
      for (;;) {
        const i = events.findIndex((e, k) => k >= seen && e.kind === kind);
        if (i >= 0) {
          seen = i + 1;
          return events[i] as SupervisorEvent & { at: number };
        }
        if (performance.now() > until) throw new Error(`no ${kind} event within ${timeoutMs} ms: ${JSON.stringify(events)}`);
        await sleep(10);
      }
    },
  };
}

/** alive says whether a pid runs (a zombie whose parent died counts as dead). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, "utf8") : "";
  return !/^\d+ \(.*\) Z/.test(stat);
}

describe("supervisor (real processes)", () => {
  it("supervisor: a crashing process is restarted with growing backoff, then a crash loop stops it", async () => {
    const s = new Supervisor("crash", { command: "sh", args: ["-c", "exit 3"], logDir: dir() }, { backoffBaseMs: 50, crashLoopRestarts: 4 });
    const rec = record(s);
    s.start();
    await rec.next("crash-loop");
    const exits = rec.events.filter((e) => e.kind === "exited");
    expect(exits.map((e) => (e.kind === "exited" ? [e.code, e.restartInMs] : null))).toEqual([
      [3, 50],
      [3, 100],
      [3, 200],
      [3, 400],
      [3, null],
    ]);
    // The starts are spaced by at least the backoff, so the gaps grow.
    const starts = rec.events.filter((e) => e.kind === "started").map((e) => e.at);
    expect(starts).toHaveLength(5);
    const gaps = starts.slice(1).map((t, i) => t - (starts[i] as number));
    for (const [i, g] of gaps.entries()) expect(g).toBeGreaterThanOrEqual(50 * 2 ** i - 5);
    // Each run had its own token.
    expect(new Set(rec.events.flatMap((e) => (e.kind === "started" ? [e.processToken] : []))).size).toBe(5);
    await sleep(600);
    expect(rec.events.filter((e) => e.kind === "started")).toHaveLength(5);
    expect(s.running).toBe(false);
    await s.stop();
  });

  it("supervisor: stop sends SIGTERM to the group and SIGKILL after the grace period", async () => {
    // sh ignores TERM; its sleeps die of it (the whole group gets the signal) and are started again.
    const s = new Supervisor("stubborn", { command: "sh", args: ["-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"], gracePeriodMs: 400, logDir: dir() });
    const rec = record(s);
    s.start();
    await rec.next("started");
    await sleep(200);
    const t0 = performance.now();
    await s.stop();
    const exited = await rec.next("exited");
    expect(exited).toMatchObject({ kind: "exited", signal: "SIGKILL", restartInMs: null });
    expect(exited.at - t0).toBeGreaterThanOrEqual(390);
    // A process that obeys SIGTERM stops at once.
    const polite = new Supervisor("polite", { command: "sh", args: ["-c", "echo ready; while :; do sleep 0.05; done"], gracePeriodMs: 5_000, logDir: dir() });
    const rp = record(polite);
    polite.start();
    await rp.next("started");
    await sleep(200);
    const t1 = performance.now();
    await polite.stop();
    expect(await rp.next("exited")).toMatchObject({ signal: "SIGTERM", restartInMs: null });
    expect(performance.now() - t1).toBeLessThan(2_000);
  });

  it("supervisor: when the process dies, the children it forked die too, before 'exited' is reported", async () => {
    const logDir = dir();
    const s = new Supervisor("forker", { command: "sh", args: ["-c", "sleep 100 & echo $!; wait"], logDir }, { backoffBaseMs: 5_000 });
    const rec = record(s);
    s.start();
    const started = await rec.next("started");
    const out = join(logDir, "forker.stdout.log");
    let grandchild = 0;
    for (let i = 0; i < 100 && grandchild === 0; i++) {
      await sleep(20);
      grandchild = existsSync(out) ? Number(readFileSync(out, "utf8").trim()) : 0;
    }
    expect(alive(grandchild)).toBe(true);
    if (started.kind !== "started") throw new Error("unreachable");
    process.kill(started.pid, "SIGKILL"); // the leader alone, as a crash would
    const exited = await rec.next("exited");
    expect(exited).toMatchObject({ signal: "SIGKILL", restartInMs: 5_000 });
    for (let i = 0; i < 50 && alive(grandchild); i++) await sleep(10);
    expect(alive(grandchild)).toBe(false);
    await s.stop();
    expect(s.running).toBe(false);
  });

  it("supervisor: env, working directory, process token, stdout and stderr to bounded rotated files", async () => {
    const logDir = dir();
    const cwd = dir();
    const s = new Supervisor(
      "env",
      { command: "sh", args: ["-c", `echo "$FOO $${PROCESS_TOKEN_ENV}"; pwd; echo oops >&2; i=0; while [ $i -lt 50 ]; do echo 0123456789; i=$((i+1)); done; exec sleep 100`], env: { FOO: "bar" }, cwd, logDir },
      { logLimits: { bytesMax: 100, filesKept: 2 } },
    );
    const rec = record(s);
    s.start();
    const started = await rec.next("started");
    const out = join(logDir, "env.stdout.log");
    for (let i = 0; i < 100 && readdirSync(logDir).filter((n) => n.startsWith("env.stdout")).length < 3; i++) await sleep(20);
    await sleep(100);
    await s.stop();
    const files = readdirSync(logDir).sort();
    expect(files).toEqual(["env.stderr.log", "env.stdout.log", "env.stdout.log.1", "env.stdout.log.2"]);
    for (const f of files) expect(statSync(join(logDir, f)).size).toBeLessThanOrEqual(100);
    expect(readFileSync(join(logDir, "env.stderr.log"), "utf8")).toBe("oops\n");
    // The first lines rotated away; the newest 300 bytes remain, whole 11-byte lines at the end.
    const kept = ["env.stdout.log.2", "env.stdout.log.1", "env.stdout.log"].map((f) => readFileSync(join(logDir, f), "utf8")).join("");
    expect(kept.endsWith("0123456789\n")).toBe(true);
    expect(readFileSync(out, "utf8").length).toBeGreaterThan(0);
    // The head of the output (FOO, token, cwd) is rotated out; run again without the flood to see it.
    const d2 = dir();
    const s2 = new Supervisor("env", { command: "sh", args: ["-c", `echo "$FOO $${PROCESS_TOKEN_ENV}"; pwd; exec sleep 100`], env: { FOO: "bar" }, cwd, logDir: d2 });
    const rec2 = record(s2);
    s2.start();
    const st2 = await rec2.next("started");
    for (let i = 0; i < 100 && !(existsSync(join(d2, "env.stdout.log")) && readFileSync(join(d2, "env.stdout.log"), "utf8").split("\n").length > 2); i++) await sleep(20);
    await s2.stop();
    if (st2.kind !== "started" || started.kind !== "started") throw new Error("unreachable");
    expect(readFileSync(join(d2, "env.stdout.log"), "utf8")).toBe(`bar ${st2.processToken}\n${cwd}\n`);
  });

  it("supervisor: a command that cannot start counts as a crash; a user needs root and must exist", async () => {
    const s = new Supervisor("missing", { command: "/nonexistent/command", args: [], logDir: dir() }, { backoffBaseMs: 10, crashLoopRestarts: 1 });
    const rec = record(s);
    s.start();
    await rec.next("crash-loop");
    expect(rec.events.filter((e) => e.kind === "exited")).toHaveLength(2);
    expect(() => userCredentials("no-such-user", "root:x:0:0:root:/root:/bin/sh\n")).toThrow(SupervisorError);
    expect(userCredentials("65534", "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")).toEqual({ uid: 65534, gid: 65534 });
    if (process.getuid?.() === 0) {
      const logDir = dir();
      const asNobody = new Supervisor("nobody", { command: "sh", args: ["-c", "id -u; exec sleep 100"], user: "nobody", logDir, cwd: "/" });
      const rn = record(asNobody);
      asNobody.start();
      await rn.next("started");
      for (let i = 0; i < 100 && !existsSync(join(logDir, "nobody.stdout.log")); i++) await sleep(20);
      for (let i = 0; i < 100 && readFileSync(join(logDir, "nobody.stdout.log"), "utf8") === ""; i++) await sleep(20);
      await asNobody.stop();
      expect(readFileSync(join(logDir, "nobody.stdout.log"), "utf8")).toBe("65534\n");
      expect(() => new Supervisor("x", { command: "sh", args: [], user: "no-such-user", logDir })).toThrow(/user: "no-such-user"/);
    } else {
      expect(() => new Supervisor("x", { command: "sh", args: [], user: "nobody", logDir: dir() })).toThrow(/user: .* needs root/);
    }
  });
});
