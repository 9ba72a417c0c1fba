/**
 * RunProcess starts `raftmesh run ... -- command` from the sources and follows the JSON lines it
 * prints (src/cli/run-instance.ts): started, registered, exited, reported, crash-loop, deregistered.
 * Tests and the crash-failover bench wait on them, and kill the supervised process by its pid.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { join } from "node:path";
import { REPO_ROOT } from "./process-cluster.js";

const MAIN = join(REPO_ROOT, "src/cli/main.ts");
/** POLL_MS: how often waits look at the lines again. */
const POLL_MS = 5;

/** RunLine is one printed line with the time it arrived (performance.now of this process). */
export type RunLine = Record<string, unknown> & { event: string; arrivedAt: number };

/** RunProcess: see the module comment. */
export class RunProcess {
  readonly lines: RunLine[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stderr = "";

  constructor(flags: string[], command: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, ["--import", "tsx", MAIN, "run", ...flags, "--", ...command], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let buf = "";
    this.child.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith("{")) this.lines.push({ ...(JSON.parse(line) as { event: string }), arrivedAt: performance.now() });
      }
    });
    this.child.stderr?.on("data", (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((r) => this.child.once("exit", (code) => r(code)));
  }

  /** next waits for the first line of `event` after line index `from` matching `pred`, bounded by timeoutMs. */
  async next(event: string, from = 0, timeoutMs = 30_000, pred: (l: RunLine) => boolean = () => true): Promise<RunLine & { index: number }> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.lines.length; i++) {
        const l = this.lines[i] as RunLine;
        if (l.event === event && pred(l)) return { ...l, index: i };
      }
      if (performance.now() > until) throw new Error(`raftmesh run printed no "${event}" within ${timeoutMs} ms; lines: ${JSON.stringify(this.lines)}; stderr: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** pid is the supervised process's pid from the newest "started" line. */
  get pid(): number | undefined {
    for (let i = this.lines.length - 1; i >= 0; i--) if (this.lines[i]?.event === "started") return this.lines[i]?.pid as number;
    return undefined;
  }

  /** stop sends SIGTERM to raftmesh run and waits for its exit status. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    return this.exited;
  }
}
