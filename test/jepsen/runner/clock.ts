/**
 * The run's one clock. Every timestamp in a history is `now()`: milliseconds of
 * performance.now() since the run began, monotonic and shared by every client of the run.
 *
 * A node's wall time (all agents run on this host; network namespaces share the host's clocks)
 * converts to run time through one offset taken at start; wallToRun does that. It is exact up to a
 * wall-clock step during the run, which CLOCK_SLACK_MS absorbs for small steps. The registry's own
 * times (healthSinceMs) are cluster time and do not convert.
 */
import { performance } from "node:perf_hooks";

/** CLOCK_SLACK_MS is the error allowed when a node's wall time is compared with run time. */
export const CLOCK_SLACK_MS = 50;

/** RunClock is the run's monotonic clock and its wall-clock anchor. */
export class RunClock {
  private readonly origin = performance.now();
  /** wallAtOrigin is Date.now() when the run began. */
  readonly wallAtOrigin = Date.now();

  /** now is milliseconds since the run began (monotonic). */
  now(): number {
    return performance.now() - this.origin;
  }

  /** wallToRun converts a wall-clock time of this host (ms since the epoch) to run time. */
  wallToRun(wallMs: number): number {
    return wallMs - this.wallAtOrigin;
  }
}

/** sleep waits ms, or less if the signal aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
