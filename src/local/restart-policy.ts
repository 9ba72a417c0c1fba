/**
 * RestartPolicy decides, when a supervised process exits, whether and when it is started again:
 * exponential backoff from RESTART_BACKOFF_BASE_MS doubling up to RESTART_BACKOFF_CAP_MS, back to
 * the base after a run of STABLE_RUN_MS, and a crash-loop limit (more than CRASH_LOOP_RESTARTS
 * exits within CRASH_LOOP_WINDOW_MS: no more restarts). Pure: the caller passes the time.
 */

/** RESTART_BACKOFF_BASE_MS: the first restart waits 100 ms, long enough for a port to be released, short next to a failover. */
export const RESTART_BACKOFF_BASE_MS = 100;
/** RESTART_BACKOFF_CAP_MS: 30 s at most between restarts (systemd's and Kubernetes' order of magnitude), so a fixed cause is noticed soon. */
export const RESTART_BACKOFF_CAP_MS = 30_000;
/** STABLE_RUN_MS: a process that ran 10 s had started properly; its next exit starts the backoff over. */
export const STABLE_RUN_MS = 10_000;
/** CRASH_LOOP_RESTARTS: 5 restarts within the window are given (systemd's StartLimitBurst); the 6th exit stops restarting. */
export const CRASH_LOOP_RESTARTS = 5;
/** CRASH_LOOP_WINDOW_MS: the window of the crash-loop limit, 60 s (above the backoff's sum to its 5th step, 3.1 s, and to a stable run). */
export const CRASH_LOOP_WINDOW_MS = 60_000;

/** RestartLimits are the policy's numbers (each defaults to its constant). */
export interface RestartLimits {
  readonly backoffBaseMs?: number;
  readonly backoffCapMs?: number;
  readonly stableRunMs?: number;
  readonly crashLoopRestarts?: number;
  readonly crashLoopWindowMs?: number;
}

/** RestartDecision is what to do after an exit: restart after restartInMs, or stop (a crash loop). */
export type RestartDecision = { readonly restartInMs: number } | { readonly crashLoop: { readonly restarts: number; readonly windowMs: number } };

/** RestartPolicy: see the module comment. */
export class RestartPolicy {
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly stableMs: number;
  private readonly restartsMax: number;
  private readonly windowMs: number;
  /** attempt: restarts since the last stable run (the backoff's exponent). */
  private attempt = 0;
  /** startedAt: when the current run began (NaN: not running). */
  private startedAt = Number.NaN;
  /** exits: times of the exits within the window, oldest first. Invariant: length <= restartsMax + 1. */
  private readonly exits: number[] = [];

  constructor(limits: RestartLimits = {}) {
    this.baseMs = limits.backoffBaseMs ?? RESTART_BACKOFF_BASE_MS;
    this.capMs = limits.backoffCapMs ?? RESTART_BACKOFF_CAP_MS;
    this.stableMs = limits.stableRunMs ?? STABLE_RUN_MS;
    this.restartsMax = limits.crashLoopRestarts ?? CRASH_LOOP_RESTARTS;
    this.windowMs = limits.crashLoopWindowMs ?? CRASH_LOOP_WINDOW_MS;
    for (const [name, v] of Object.entries({ backoffBaseMs: this.baseMs, backoffCapMs: this.capMs, stableRunMs: this.stableMs, crashLoopWindowMs: this.windowMs, crashLoopRestarts: this.restartsMax })) {
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`${name}: must be a whole number >= 0, got ${v}`);
    }
    if (this.capMs < this.baseMs) throw new RangeError(`backoffCapMs: ${this.capMs} is below backoffBaseMs ${this.baseMs}`);
  }

  /** started records the start of a run at `now`. */
  started(now: number): void {
    this.startedAt = now;
  }

  /** exited records an exit at `now` and decides what follows. */
  exited(now: number): RestartDecision {
    if (now - this.startedAt >= this.stableMs) this.attempt = 0;
    this.startedAt = Number.NaN;
    this.exits.push(now);
    while (this.exits.length > 0 && now - (this.exits[0] as number) >= this.windowMs) this.exits.shift();
    if (this.exits.length > this.restartsMax) return { crashLoop: { restarts: this.restartsMax, windowMs: this.windowMs } };
    const restartInMs = Math.min(this.capMs, this.baseMs * 2 ** this.attempt);
    this.attempt++;
    return { restartInMs };
  }

  /** reset forgets the history (a manual restart after a crash loop). */
  reset(): void {
    this.attempt = 0;
    this.exits.length = 0;
    this.startedAt = Number.NaN;
  }
}
