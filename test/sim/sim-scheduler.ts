import type { Cancel, HostScheduler } from "../../src/node/scheduler.js";

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/**
 * SimScheduler is the HostScheduler of one simulated node incarnation, on the simulation's virtual
 * time. The simulation decides when the node's clock ticks (tick(): it skips ticks to skew the
 * clock and stops them while the node is paused) and when its timers run (runDue); `soon` is a
 * real microtask, so the host loop's awaits interleave exactly as they do in production, and the
 * simulation drains them before it looks. A crashed incarnation's scheduler is dropped: its timers
 * never fire.
 */
export class SimScheduler implements HostScheduler {
  private readonly intervals: { fn: () => void; cancelled: boolean }[] = [];
  private timers: Timer[] = [];
  private seq = 0;
  /** nowMs is the virtual time the timers are measured against. */
  nowMs = 0;

  constructor(private readonly tickMs: number) {}

  every(ms: number, fn: () => void): Cancel {
    // The simulation ticks every node once per step: a node asking for another period would run at the wrong speed.
    if (ms !== this.tickMs) throw new Error(`simulated nodes tick every ${this.tickMs} ms, not ${ms}`);
    const iv = { fn, cancelled: false };
    this.intervals.push(iv);
    return () => {
      iv.cancelled = true;
    };
  }

  after(ms: number, fn: () => void): Cancel {
    const t: Timer = { at: this.nowMs + ms, seq: this.seq++, fn, cancelled: false };
    this.timers.push(t);
    return () => {
      t.cancelled = true;
    };
  }

  soon(fn: () => void): void {
    queueMicrotask(fn);
  }

  /** tick runs the node's periodic callbacks (its Raft tick) once. */
  tick(): void {
    for (const iv of this.intervals) if (!iv.cancelled) iv.fn();
  }

  /** runDue advances virtual time to nowMs and runs the timers due by then, in (time, creation) order. */
  runDue(nowMs: number): void {
    this.nowMs = nowMs;
    if (this.timers.length === 0) return;
    const due = this.timers.filter((t) => t.at <= nowMs && !t.cancelled);
    this.timers = this.timers.filter((t) => t.at > nowMs && !t.cancelled);
    due.sort((a, b) => a.at - b.at || a.seq - b.seq);
    for (const t of due) if (!t.cancelled) t.fn();
  }

  /** cancelAll drops every timer and interval (the incarnation crashed). */
  cancelAll(): void {
    for (const iv of this.intervals) iv.cancelled = true;
    this.timers = [];
  }
}
