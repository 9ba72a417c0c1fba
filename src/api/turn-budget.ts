/**
 * TurnBudget keeps a burst of client calls from holding the event loop. A flood of small calls
 * (3,000 linearizable reads on one connection: HTTP/2 HEADERS frames are not flow-controlled, so
 * all of them arrive in one socket read) used to be handled in one event-loop turn: ~0.25 ms each,
 * over 750 ms with no timer, so the Raft tick (heartbeats) waited and the followers elected another
 * leader (test/bench/raft/burst.ts). Now a call starts at once while the turn's client work is
 * under TURN_BUDGET_MS; past it, calls wait in arrival order and start a budget's worth per later
 * turn, each after the timers (ticks, heartbeats) and the peers' I/O of that turn had their go.
 * Raft's own messages never pass here (the peer transport is a stream, not a unary call); the
 * followers' lease-renewal batches (Internal.RenewLeases) skip it too (registry-service.ts). The
 * first deferred slice may run in the same turn as the burst (an immediate queued from the poll
 * phase runs in that turn's check phase), so a turn does at most two budgets before its timers.
 */

/** TURN_BUDGET_MS is how much client-call work one event-loop turn starts before the rest waits for the next. */
export const TURN_BUDGET_MS = 10;

/**
 * TURN_QUEUE_MAX bounds the calls waiting for a later turn: 20 connections' worth of
 * API_STREAMS_PER_CONNECTION_MAX. Past it a call is refused at once (BusyError, RESOURCE_EXHAUSTED)
 * rather than queued without end.
 */
export const TURN_QUEUE_MAX = 20_000;

/** QUEUE_COMPACT_AT: the spent head of the queue is cut off once it is this long (and half the array). */
const QUEUE_COMPACT_AT = 1_024;

/** Clock is the time source (performance.now unless a test gives another). */
type Clock = () => number;

/** TurnBudget admits work now or queues it for a later turn. */
export class TurnBudget {
  private turnStart: number | undefined;
  private readonly queue: (() => void)[] = [];
  private head = 0;
  private draining = false;
  /** deferred counts every call that had to wait for a later turn (no metric exports it yet; tests read it). */
  deferred = 0;

  constructor(
    private readonly budgetMs = TURN_BUDGET_MS,
    private readonly now: Clock = () => performance.now(),
    private readonly queueMax = TURN_QUEUE_MAX,
  ) {}

  /**
   * admit runs fn now if this turn's budget allows and nothing waits, else queues it; false (fn
   * not run, not queued) when TURN_QUEUE_MAX calls already wait. fn must not throw.
   */
  admit(fn: () => void): boolean {
    if (this.queue.length === this.head && this.withinBudget()) {
      fn();
      return true;
    }
    if (this.waiting >= this.queueMax) return false;
    this.deferred++;
    this.queue.push(fn);
    this.scheduleDrain();
    return true;
  }

  /** waiting is the number of queued calls. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  private withinBudget(): boolean {
    const t = this.now();
    if (this.turnStart === undefined) {
      this.turnStart = t;
      // The turn ends when this poll phase's callbacks are done: setImmediate runs after them.
      setImmediate(() => {
        this.turnStart = undefined;
      });
      return true;
    }
    return t - this.turnStart < this.budgetMs;
  }

  private scheduleDrain(): void {
    if (this.draining) return;
    this.draining = true;
    // setImmediate, not a timer: a zero timer queued by a drain is already due when the drain ends,
    // so Node runs it in the same timers phase, over and over, until the queue is empty. An
    // immediate queued by a drain runs in the next turn's check phase: after its timers (the Raft
    // tick) and its poll (peer messages), and beside the HTTP/2 sessions' own writes (heartbeats
    // leave the process there).
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.draining = false;
    const start = this.now();
    try {
      while (this.head < this.queue.length && this.now() - start < this.budgetMs) {
        const fn = this.queue[this.head] as () => void;
        this.queue[this.head++] = noop;
        fn();
      }
    } finally {
      // Even if a call threw (a bug: fn must not), the rest of the queue is not stranded.
      if (this.head === this.queue.length) {
        this.queue.length = 0;
        this.head = 0;
      } else {
        if (this.head >= QUEUE_COMPACT_AT && this.head * 2 >= this.queue.length) {
          this.queue.splice(0, this.head);
          this.head = 0;
        }
        this.scheduleDrain();
      }
    }
  }
}

const noop = () => {};

/** CLIENT_TURN_BUDGET is the process's one budget for client calls. */
export const CLIENT_TURN_BUDGET = new TurnBudget();
