/** Cancel stops a timer started by a HostScheduler; calling it twice is harmless. */
export type Cancel = () => void;

/**
 * HostScheduler is the only way the host loop reads the passage of time or defers work: the
 * production node uses Node's timers; the simulator drives the same loop on virtual time, so one
 * seed replays the same run. Contract: `every` and `after` call fn from a fresh task, never from
 * inside the call that started them; `soon` runs fn before any timer that is due later.
 */
export interface HostScheduler {
  /** every calls fn each `ms` until cancelled. */
  every(ms: number, fn: () => void): Cancel;
  /** after calls fn once, `ms` from now, unless cancelled first. */
  after(ms: number, fn: () => void): Cancel;
  /** soon runs fn after the current synchronous work and its already queued continuations. */
  soon(fn: () => void): void;
}

/** NODE_SCHEDULER is Node's own timers (setInterval, setTimeout, queueMicrotask). */
export const NODE_SCHEDULER: HostScheduler = {
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
  soon(fn) {
    queueMicrotask(fn);
  },
};
