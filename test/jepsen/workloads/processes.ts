/**
 * runProcesses drives a workload's client processes: `concurrency` loops, process p pinned to
 * node p mod n, each doing one operation at a time and pacing itself so that all together stay
 * near rateHz. As in Jepsen, a process whose operation ended indeterminate is retired and a new
 * process id takes its place (its request may still be in flight).
 */
import { sleep } from "../runner/clock.js";
import type { Rng } from "../runner/rng.js";
import type { WorkloadContext } from "./types.js";

/** OpStep runs one operation for a process and says whether it ended indeterminate. */
export type OpStep = (process: number, node: string, rng: Rng) => Promise<"done" | "info">;

/** runProcesses: see the module comment. Resolves once every loop has stopped. */
export async function runProcesses(ctx: WorkloadContext, signal: AbortSignal, step: OpStep): Promise<void> {
  const { concurrency, rateHz } = ctx.options;
  const nodes = ctx.cluster.nodes;
  const gapMs = (1_000 * concurrency) / Math.max(rateHz, 1);
  const loops = Array.from({ length: concurrency }, async (_, i) => {
    const rng = ctx.rng.fork();
    const node = nodes[i % nodes.length] as string;
    let process = i;
    while (!signal.aborted) {
      const started = ctx.clock.now();
      if ((await step(process, node, rng)) === "info") process += concurrency;
      const spent = ctx.clock.now() - started;
      await sleep(Math.max(0, gapMs * (0.5 + rng.next()) - spent), signal);
    }
  });
  await Promise.all(loops);
}

/** retryUntil calls f until it resolves or attempts run out, pausing between tries. */
export async function retryUntil<T>(what: string, f: () => Promise<T>, attempts = 40, pauseMs = 250): Promise<T> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await f();
    } catch (err) {
      last = err;
      await sleep(pauseMs);
    }
  }
  throw new Error(`${what}: gave up after ${attempts} attempts (${(last as Error)?.message ?? last})`);
}
