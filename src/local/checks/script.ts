import { spawn } from "node:child_process";
import { CHECK_OUTPUT_BYTES_MAX } from "../limits.js";
import type { CheckResult, ScriptProbe } from "../types.js";

/**
 * scriptCheck runs the command (no shell) in its own process group: exit 0 is passing, 1 warning
 * (Nagios' and Consul's convention), anything else critical. Its stdout and stderr, together and
 * cut at CHECK_OUTPUT_BYTES_MAX, are the note. At the timeout the whole group is killed (SIGKILL:
 * a hung check gets no say) and the result is critical; the pipes are drained to the end, never
 * left full.
 */
export function scriptCheck(p: ScriptProbe, signal: AbortSignal, timeoutMs: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const [command, ...args] = p.args as [string, ...string[]];
    const out: Buffer[] = [];
    let kept = 0;
    let truncated = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let settled = false;
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
    const keep = (c: Buffer) => {
      if (kept < CHECK_OUTPUT_BYTES_MAX) out.push(c.subarray(0, CHECK_OUTPUT_BYTES_MAX - kept));
      if (kept + c.length > CHECK_OUTPUT_BYTES_MAX) truncated = true;
      kept = Math.min(CHECK_OUTPUT_BYTES_MAX, kept + c.length);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const output = () => `${Buffer.concat(out).toString("utf8").trim()}${truncated ? " …" : ""}`;
    const finish = (r: CheckResult) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      resolve(r);
    };
    const fromExit = (e: { code: number | null; signal: NodeJS.Signals | null }): CheckResult => {
      const status = e.code === 0 ? "passing" : e.code === 1 ? "warning" : "critical";
      const how = e.code !== null ? `exit ${e.code}` : `killed by ${e.signal}`;
      const text = output();
      return { status, note: text === "" ? how : `${how}: ${text}` };
    };
    const onAbort = () => {
      killGroup(child.pid);
      finish(exit ? fromExit(exit) : { status: "critical", note: `timed out after ${timeoutMs} ms${output() === "" ? "" : `: ${output()}`}` });
    };
    signal.addEventListener("abort", onAbort, { once: true });
    child.once("error", (err) => finish({ status: "critical", note: `cannot run ${command}: ${err.message}` }));
    child.once("exit", (code, sig) => {
      exit = { code, signal: sig };
    });
    // close comes after exit once both pipes are at their end (a child that left a grandchild
    // holding them open is settled by the timeout instead, which kills the group).
    child.once("close", (code, sig) => finish(fromExit(exit ?? { code, signal: sig })));
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}
