/**
 * The reaper makes sure benchmark children die with the benchmark: every tracked child gets
 * SIGKILL and every tracked directory is removed when this process exits, whether normally, by an
 * uncaught exception (Node still emits "exit"), or by SIGINT/SIGTERM/SIGHUP (handled here, since
 * a signal's default action would skip "exit"). A stray etcd would keep its ports and disk.
 */
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
let installed = false;

/** EXIT_SIGNALS are the signals that end the benchmark early; each is turned into an orderly exit. */
const EXIT_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** SIGNAL_EXIT_CODE_BASE follows the shell convention: a process ended by signal n exits with 128 + n. */
const SIGNAL_EXIT_CODE_BASE = 128;
const SIGNAL_NUMBERS: Record<(typeof EXIT_SIGNALS)[number], number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/** trackChild kills child on process exit unless it has exited already; it stops tracking it once it exits. */
export function trackChild(child: ChildProcess): void {
  install();
  children.add(child);
  child.once("exit", () => children.delete(child));
}

/** trackDir removes dir (recursively) on process exit unless untrackDir was called first. */
export function trackDir(dir: string): void {
  install();
  dirs.add(dir);
}

/** untrackDir forgets dir, for a caller that removed it itself. */
export function untrackDir(dir: string): void {
  dirs.delete(dir);
}

/** reapNow kills every tracked child and removes every tracked directory, synchronously. */
export function reapNow(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  dirs.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on("exit", reapNow);
  for (const signal of EXIT_SIGNALS) {
    process.once(signal, () => {
      reapNow();
      process.exit(SIGNAL_EXIT_CODE_BASE + SIGNAL_NUMBERS[signal]);
    });
  }
}
