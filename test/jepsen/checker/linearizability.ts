/**
 * checkLinearizable: split a history into the model's partitions, run a WGL search (search.ts)
 * on each, and combine the verdicts, within a time and memory budget.
 */
import { classifyOp, type History, type Operation, validateOp } from "./history.js";
import type { Model } from "./model.js";
import { buildEvents, WglSearch } from "./search.js";

/** Verdict is the outcome of a check. `unknown` means it could not be decided (see reason). */
export type Verdict = "linearizable" | "not-linearizable" | "unknown";

/**
 * UnknownReason says why a partition is `unknown`:
 * - `time-budget`: the time budget ran out before its search finished;
 * - `memory-budget`: the searches' memo caches reached maxCacheEntries;
 * - `skipped`: its search was stopped because another partition had already shown a violation,
 *   which settles the verdict of the whole history.
 */
export type UnknownReason = "time-budget" | "memory-budget" | "skipped";

/** CheckOptions tunes a check. */
export interface CheckOptions {
  /**
   * timeBudgetMs bounds the whole check, all partitions together. Partitions still undecided
   * when it runs out are `unknown`, never `linearizable`. Default 30 000.
   */
  readonly timeBudgetMs?: number;
  /**
   * maxCacheEntries bounds the memo caches of the searches running at once (about a hundred
   * bytes an entry); past it, undecided partitions are `unknown`. Default 3 000 000.
   */
  readonly maxCacheEntries?: number;
}

/** Violation explains why a partition is not linearizable. */
export interface Violation<I, O> {
  /** longestPrefix is the longest sequence of operations the search could linearize, in order. */
  readonly longestPrefix: Operation<I, O>[];
  /** stateAfterPrefix is the model state after longestPrefix, as describeState renders it. */
  readonly stateAfterPrefix: string;
  /**
   * blocking is the operation that had to take effect next after the prefix (the first to
   * return among those not in it) but could not, in any order of the pending operations.
   */
  readonly blocking: Operation<I, O>;
  /** pending are the operations that could have come next after the prefix, blocking included. */
  readonly pending: Operation<I, O>[];
  /** message is a readable account of the above. */
  readonly message: string;
}

/** PartitionResult is the outcome for one independent part of the history. */
export interface PartitionResult<I, O> {
  /** index is the part's position in the model's partition() output (0 when unpartitioned). */
  readonly index: number;
  /** operations counts the operations checked (dropped ones excluded). */
  readonly operations: number;
  readonly verdict: Verdict;
  /** reason is set when verdict is `unknown`. */
  readonly reason?: UnknownReason;
  /** elapsedMs is the time spent searching this partition. */
  readonly elapsedMs: number;
  /** steps counts the search steps taken (events visited). */
  readonly steps: number;
  /** violation is set when verdict is `not-linearizable`. */
  readonly violation?: Violation<I, O>;
}

/** CheckResult is the outcome of checkLinearizable. */
export interface CheckResult<I, O> {
  /** verdict is not-linearizable if any part is, else unknown if any part is, else linearizable. */
  readonly verdict: Verdict;
  /** budgetExhausted is true if a time or memory budget left any partition undecided. */
  readonly budgetExhausted: boolean;
  readonly perPartition: PartitionResult<I, O>[];
  readonly elapsedMs: number;
}

const DEFAULT_BUDGET_MS = 30_000;
const DEFAULT_MAX_CACHE_ENTRIES = 3_000_000;
/**
 * Steps per turn when the partitions' searches take turns. Small enough that a partition with a
 * quick violation is found early even next to hard ones (as if they ran in parallel), and that
 * the clock, read between turns, is read often; big enough that turns cost nothing.
 */
const SLICE_STEPS = 2048;

interface Running<S, I, O> {
  readonly index: number;
  readonly ops: Operation<I, O>[];
  search: WglSearch<S, I, O> | undefined;
  elapsedMs: number;
  result: PartitionResult<I, O> | undefined;
}

/**
 * checkLinearizable decides whether a history is linearizable with respect to a model.
 *
 * Operations are classified by classifyOp: completed ones must be linearized inside their
 * interval, indeterminate ones may be linearized anywhere after their call or left out, dropped
 * ones are ignored. Each partition of model.partition() is searched on its own; the searches
 * take turns, and all stop as soon as one finds a violation.
 */
export function checkLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: History<I, O>,
  options: CheckOptions = {},
): CheckResult<I, O> {
  const start = performance.now();
  const deadline = start + (options.timeBudgetMs ?? DEFAULT_BUDGET_MS);
  const maxCache = options.maxCacheEntries ?? DEFAULT_MAX_CACHE_ENTRIES;
  for (const op of history) validateOp(op);
  const parts = model.partition ? model.partition(history) : [history];
  const runs: Running<S, I, O>[] = parts.map((part, index) => ({
    index,
    ops: part.filter((op) => classifyOp(op) !== "dropped"),
    search: undefined,
    elapsedMs: 0,
    result: undefined,
  }));

  const finish = (run: Running<S, I, O>, verdict: Verdict, reason?: UnknownReason): void => {
    const { index, ops, elapsedMs, search } = run;
    const base = { index, operations: ops.length, verdict, elapsedMs, steps: search?.steps ?? 0 };
    run.result =
      verdict === "not-linearizable"
        ? { ...base, violation: explain(model, ops, search?.longest ?? [], index) }
        : verdict === "unknown"
          ? { ...base, reason }
          : base;
    run.search = undefined; // let its memo cache go
  };

  let stop: UnknownReason | undefined;
  for (let live = runs; live.length > 0 && stop === undefined; ) {
    for (const run of live) {
      const t0 = performance.now();
      if (t0 > deadline) {
        stop = "time-budget";
        break;
      }
      run.search ??= new WglSearch(model, run.ops);
      const verdict = run.search.run(SLICE_STEPS);
      run.elapsedMs += performance.now() - t0;
      if (verdict === undefined) continue;
      finish(run, verdict);
      if (verdict === "not-linearizable") {
        stop = "skipped";
        break;
      }
    }
    live = live.filter((run) => run.result === undefined);
    const cached = live.reduce((sum, run) => sum + (run.search?.cacheSize ?? 0), 0);
    if (stop === undefined && cached > maxCache) stop = "memory-budget";
  }
  for (const run of runs) if (run.result === undefined) finish(run, "unknown", stop);

  const perPartition = runs.map((run) => run.result!);
  const verdicts = new Set(perPartition.map((p) => p.verdict));
  const verdict: Verdict = verdicts.has("not-linearizable")
    ? "not-linearizable"
    : verdicts.has("unknown")
      ? "unknown"
      : "linearizable";
  const budgetExhausted = perPartition.some(
    (p) => p.reason === "time-budget" || p.reason === "memory-budget",
  );
  return { verdict, budgetExhausted, perPartition, elapsedMs: performance.now() - start };
}

/**
 * explain turns the longest linearized prefix into a Violation: it replays the prefix for its
 * final state and finds the operation that had to come next but could not.
 */
function explain<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  longest: readonly number[],
  partition: number,
): Violation<I, O> {
  const observed = (o: Operation<I, O>): O | undefined =>
    classifyOp(o) === "completed" ? o.output : undefined;
  const ev = buildEvents(ops);
  const inPrefix = new Set(longest);
  let state = model.init();
  for (const i of longest) state = model.step(state, ops[i]!.input, observed(ops[i]!)).state;
  // The first return event of an operation outside the prefix is what stopped the search there.
  let blockingEvent = 0;
  const isBlocking = (e: number): boolean => ev.isCall[e] === 0 && !inPrefix.has(ev.op[e]!);
  while (blockingEvent < ev.op.length - 1 && !isBlocking(blockingEvent)) blockingEvent++;
  const blocking = ops[ev.op[blockingEvent]!]!;
  const pending: Operation<I, O>[] = [];
  for (let e = 0; e < blockingEvent; e++) {
    if (ev.isCall[e] === 1 && !inPrefix.has(ev.op[e]!)) pending.push(ops[ev.op[e]!]!);
  }
  const show = (o: Operation<I, O>): string =>
    `client ${o.clientId} [${o.call}, ${o.return}] ${o.status} ` +
    model.describeOperation(o.input, observed(o));
  const last = longest[longest.length - 1];
  const shown = 12;
  const message = [
    `partition ${partition}: not linearizable.`,
    `Longest linearizable prefix: ${longest.length} of ${ops.length} operations` +
      (last === undefined ? "" : `, ending with ${show(ops[last]!)}`) +
      `; state after it: ${model.describeState(state)}.`,
    `Then ${show(blocking)} must take effect before it returns, but no order of the ` +
      `${pending.length} pending operations allows it:`,
    ...pending.slice(0, shown).map((o) => `  ${show(o)}`),
    ...(pending.length > shown ? [`  ... and ${pending.length - shown} more`] : []),
  ].join("\n");
  return {
    longestPrefix: longest.map((i) => ops[i]!),
    stateAfterPrefix: model.describeState(state),
    blocking,
    pending,
    message,
  };
}
