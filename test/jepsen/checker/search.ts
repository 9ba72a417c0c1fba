/**
 * The Wing–Gong–Lowe search over one partition of a history, as refined by Lowe and done by
 * Porcupine: a memo cache of (set of linearized operations, state) on top of WGL backtracking.
 *
 * The search walks a doubly linked list of call and return events in time order. At a call event
 * it tries to linearize that operation next (apply it to the model); if the model accepts and the
 * (linearized set, state) pair is new, the operation's events are lifted out of the list and the
 * walk restarts from the head. Reaching a return event means its operation had to take effect by
 * now and no choice made so far allows it: the search backtracks, putting the last linearized
 * operation back and moving past it.
 *
 * The search is resumable (run takes a step allowance) so that the caller can interleave the
 * partitions of a history and stop them all as soon as one shows a violation.
 */
import { classifyOp, type Operation } from "./history.js";
import type { Model } from "./model.js";

/** Events is the time-ordered event list of one partition, in flat arrays. */
export interface Events {
  /** op[e] is the operation of event e. */
  readonly op: Int32Array;
  /** isCall[e] is 1 for a call event, 0 for a return event. */
  readonly isCall: Uint8Array;
  /** callOf[i] / returnOf[i] are the events of operation i; returnOf is -1 for indeterminate. */
  readonly callOf: Int32Array;
  readonly returnOf: Int32Array;
}

/**
 * buildEvents orders the events by time. At equal times calls come before returns: two
 * operations whose intervals only touch are then treated as concurrent. With a clock whose
 * resolution cannot tell the two apart, that is the only safe choice: ordering the return first
 * would assert a real-time order that was never observed, and could report a violation that did
 * not happen. Remaining ties go by operation index, so the order is the same on every run.
 *
 * Indeterminate operations get no return event. Their return is at +Infinity, after every
 * completed operation's return, and the search stops as soon as every completed operation is
 * linearized, so it would never reach that event anyway. This is also what lets such an
 * operation never take effect: nothing forces it to be linearized.
 */
export function buildEvents<I, O>(ops: readonly Operation<I, O>[]): Events {
  const raw: { time: number; call: boolean; op: number }[] = [];
  ops.forEach((op, i) => {
    raw.push({ time: op.call, call: true, op: i });
    if (classifyOp(op) === "completed") raw.push({ time: op.return, call: false, op: i });
  });
  raw.sort((a, b) => a.time - b.time || Number(b.call) - Number(a.call) || a.op - b.op);
  const ev: Events = {
    op: new Int32Array(raw.length),
    isCall: new Uint8Array(raw.length),
    callOf: new Int32Array(ops.length),
    returnOf: new Int32Array(ops.length).fill(-1),
  };
  raw.forEach((r, e) => {
    ev.op[e] = r.op;
    ev.isCall[e] = r.call ? 1 : 0;
    (r.call ? ev.callOf : ev.returnOf)[r.op] = e;
  });
  return ev;
}

/**
 * MemoCache remembers every (linearized set, state) pair the search has reached: reaching one
 * again cannot lead anywhere new, since what remains to do depends only on that pair. Keys are
 * the set's bits as a string plus the state's hash; equal states are confirmed with model.equal.
 * Strings keep an entry to about a hundred bytes, which matters at millions of entries.
 */
class MemoCache<S> {
  private readonly first = new Map<string, S>();
  private readonly more = new Map<string, S[]>();
  size = 0;
  constructor(private readonly equal: (a: S, b: S) => boolean) {}

  /** addIfAbsent stores the pair and returns true, or returns false if it was there already. */
  addIfAbsent(key: string, state: S): boolean {
    const head = this.first.get(key);
    if (head === undefined && !this.first.has(key)) {
      this.first.set(key, state);
    } else {
      if (this.equal(head as S, state)) return false;
      const rest = this.more.get(key);
      if (rest === undefined) this.more.set(key, [state]);
      else if (rest.some((s) => this.equal(s, state))) return false;
      else rest.push(state);
    }
    this.size++;
    return true;
  }
}

/** SearchVerdict is a finished search's outcome. */
export type SearchVerdict = "linearizable" | "not-linearizable";

/** WglSearch is a resumable linearizability search over one partition's operations. */
export class WglSearch<S, I, O> {
  private readonly ev: Events;
  private readonly head: number;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly completed: boolean[];
  /** readOnly[i]: operation i is completed and model.readOnly says it never changes the state. */
  private readonly readOnly: boolean[];
  private completedLeft: number;
  /** The linearized set, 16 bits a word so that it converts straight into a cache key. */
  private readonly bits: Uint16Array;
  private readonly cache: MemoCache<S>;
  // The backtracking stack: the operation linearized at each level, the state before it, and
  // whether it was read-only (see step), in which case it was the only choice worth trying at
  // its level.
  private readonly stackOp: Int32Array;
  private readonly stackState: S[] = [];
  private readonly stackOnly: Uint8Array;
  private depth = 0;
  private state: S;
  private entry: number;
  private verdict: SearchVerdict | undefined;
  /** longest is the longest sequence of operation indices linearized so far. */
  longest: number[] = [];
  /** steps counts the search steps taken so far (one per event visited). */
  steps = 0;

  constructor(
    private readonly model: Model<S, I, O>,
    private readonly ops: readonly Operation<I, O>[],
  ) {
    const n = ops.length;
    this.ev = buildEvents(ops);
    const events = this.ev.op.length;
    // The list is circular with a sentinel head, so unlinking needs no end-of-list case.
    this.head = events;
    this.next = new Int32Array(events + 1);
    this.prev = new Int32Array(events + 1);
    for (let e = 0; e <= events; e++) {
      this.next[e] = (e + 1) % (events + 1);
      this.prev[e] = (e + events) % (events + 1);
    }
    this.completed = ops.map((op) => classifyOp(op) === "completed");
    this.completedLeft = this.completed.filter(Boolean).length;
    this.readOnly = ops.map(
      (op, i) => this.completed[i]! && (model.readOnly?.(op.input, op.output) ?? false),
    );
    this.bits = new Uint16Array(Math.ceil(n / 16));
    this.cache = new MemoCache(model.equal);
    this.stackOp = new Int32Array(n);
    this.stackOnly = new Uint8Array(n);
    this.state = model.init();
    this.entry = this.firstMove();
  }

  /** cacheSize is the number of (set, state) pairs remembered, a measure of memory in use. */
  get cacheSize(): number {
    return this.cache.size;
  }

  /**
   * run advances the search by at most maxSteps steps. It returns the verdict once the search has
   * finished, undefined while it has not.
   */
  run(maxSteps: number): SearchVerdict | undefined {
    for (let i = 0; i < maxSteps && this.verdict === undefined; i++) this.step();
    return this.verdict;
  }

  // Dancing links: an unlinked event keeps its own next/prev, so relinking in the reverse order
  // of unlinking (lifts are undone LIFO via the stack; within one, return before call) restores
  // the list exactly.
  private unlink(e: number): void {
    this.next[this.prev[e]!] = this.next[e]!;
    this.prev[this.next[e]!] = this.prev[e]!;
  }

  private relink(e: number): void {
    this.next[this.prev[e]!] = e;
    this.prev[this.next[e]!] = e;
  }

  /** lift takes a just-linearized operation's events out of the list (its bit is set first). */
  private lift(op: number): void {
    this.unlink(this.ev.callOf[op]!);
    if (this.ev.returnOf[op]! >= 0) this.unlink(this.ev.returnOf[op]!);
    if (this.completed[op]) this.completedLeft--;
  }

  /** unlift puts an operation back into the list and clears its bit. */
  private unlift(op: number): void {
    if (this.ev.returnOf[op]! >= 0) this.relink(this.ev.returnOf[op]!);
    this.relink(this.ev.callOf[op]!);
    this.toggle(op);
    if (this.completed[op]) this.completedLeft++;
  }

  private toggle(op: number): void {
    this.bits[op >>> 4]! ^= 1 << (op & 15);
  }

  /** tryStep applies an operation to the current state with what it observed, if anything. */
  private tryStep(op: number): { ok: boolean; state: S } {
    const o = this.ops[op]!;
    return this.model.step(this.state, o.input, this.completed[op] ? o.output : undefined);
  }

  /**
   * firstMove picks where the walk starts at a newly reached node: at a read-only operation the
   * model accepts, if there is one (by the rule in step it is the only candidate worth trying,
   * and trying the others first would explore their whole subtrees for nothing), else at the
   * head of the list.
   */
  private firstMove(): number {
    const { next, ev } = this;
    for (let e = next[this.head]!; e !== this.head && ev.isCall[e] === 1; e = next[e]!) {
      if (this.readOnly[ev.op[e]!] && this.tryStep(ev.op[e]!).ok) return e;
    }
    return next[this.head]!;
  }

  private cacheKey(state: S): string {
    const h = this.model.hash(state);
    const { bits } = this;
    // Spreading is fastest, but an argument list has a length limit; chunk past it.
    if (bits.length <= 4096) return String.fromCharCode(...bits, h & 0xffff, h >>> 16);
    let key = "";
    for (let i = 0; i < bits.length; i += 4096) {
      key += String.fromCharCode(...bits.subarray(i, i + 4096));
    }
    return key + String.fromCharCode(h & 0xffff, h >>> 16);
  }

  /** step visits one event: try to linearize its operation, or backtrack. */
  private step(): void {
    this.steps++;
    if (this.completedLeft === 0) {
      this.verdict = "linearizable";
      return;
    }
    const { ev, entry } = this;
    // The node fails (no linearization extends the stack) when the walk meets a return event:
    // that operation should have been linearized by now. (Reaching the end of the list is not
    // possible while a completed operation is left, as its return event comes first.)
    let nodeFails = entry === this.head || ev.isCall[entry] === 0;
    if (!nodeFails) {
      const op = ev.op[entry]!;
      const r = this.tryStep(op);
      // Two exact pruning rules:
      // - An indeterminate operation that the model accepts and that leaves the state as it is
      //   is not worth linearizing now: any way to finish after it also works without it, as it
      //   has no return event that could block anything and success does not require it. (It
      //   stays in the list, so it can still be linearized later, in another state.)
      // - A completed read-only operation (model.readOnly) that the model accepts may as well be
      //   linearized right now: in any linearization that has it later, moving it here changes
      //   no state (it accepts the same states it did there, and changes none) and only relaxes
      //   real-time order (its call is already past). So if linearizing it now leads nowhere,
      //   nothing from this node does, and the other candidates here need not be tried.
      const only = r.ok && this.readOnly[op]!;
      const skip = r.ok && !this.completed[op] && this.model.equal(r.state, this.state);
      if (r.ok && !skip) {
        this.toggle(op);
        if (this.cache.addIfAbsent(this.cacheKey(r.state), r.state)) {
          this.lift(op);
          this.stackOp[this.depth] = op;
          this.stackState[this.depth] = this.state;
          this.stackOnly[this.depth] = only ? 1 : 0;
          this.depth++;
          if (this.depth > this.longest.length) {
            this.longest = Array.from(this.stackOp.subarray(0, this.depth));
          }
          this.state = r.state;
          this.entry = this.firstMove();
          return;
        }
        // Seen before, so already explored without success (a node on the current path has a
        // strictly smaller set, so it cannot be the one found).
        this.toggle(op);
        nodeFails = only;
      }
      if (!nodeFails) {
        this.entry = this.next[entry]!;
        return;
      }
    }
    this.backtrack();
  }

  /**
   * backtrack undoes the last choice and moves on to the next candidate at that level. If that
   * choice was read-only it was the only one worth trying there, so that level fails too.
   */
  private backtrack(): void {
    let op: number;
    do {
      if (this.depth === 0) {
        this.verdict = "not-linearizable";
        return;
      }
      this.depth--;
      op = this.stackOp[this.depth]!;
      this.state = this.stackState[this.depth]!;
      this.unlift(op);
    } while (this.stackOnly[this.depth] === 1);
    this.entry = this.next[this.ev.callOf[op]!]!;
  }
}
