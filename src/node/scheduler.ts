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
  /** after calls fn once, `ms` from now, unless cancelled first; `after(0, fn)` is the next turn of the loop, after pending I/O. */
  after(ms: number, fn: () => void): Cancel;
  /** soon runs fn after the current synchronous work and its already queued continuations. */
  soon(fn: () => void): void;
}

/**
 * NODE_SCHEDULER is Node's own timers (setInterval, setTimeout, setImmediate, queueMicrotask).
 * after(0) is setImmediate: it runs once the loop has polled for I/O, which is all a slice of
 * long work (restoring or taking a snapshot, answering many reads) yields for. setTimeout(0) is
 * setTimeout(1) in Node and waited at least a millisecond per slice even with nothing else to do:
 * a learner's restore of 100,000 instances (~220 slices) idled ~0.2 s of its install.
 */
export const NODE_SCHEDULER: HostScheduler = {
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
  after(ms, fn) {
    if (ms <= 0) {
      const i = setImmediate(fn);
      return () => clearImmediate(i);
    }
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
  soon(fn) {
    queueMicrotask(fn);
  },
};
