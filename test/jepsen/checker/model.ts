/**
 * The sequential specification that the linearizability checker checks a history against.
 */
import type { History } from "./history.js";

/** StepResult says whether an operation may run next from a state, and the state after it. */
export interface StepResult<State> {
  /** ok is false when the operation's observed output is impossible from the state. */
  readonly ok: boolean;
  /** state is the state after the operation (unused when ok is false). */
  readonly state: State;
}

/**
 * Model is a deterministic sequential object: a start state and a transition per operation.
 *
 * Models must be pure: step must not change the state it is given (the checker keeps old states
 * on its backtracking stack and in its memo cache).
 */
export interface Model<State, Input, Output> {
  /** init returns the state before any operation. */
  init(): State;
  /**
   * step applies one operation to a state. `output` is undefined when nothing was observed (an
   * indeterminate operation, or an `ok` write without a reply value): step must then accept
   * (ok: true) and return the state the operation would produce if it took effect. Since models
   * are deterministic that state is unique, which is what lets the checker treat an unobserved
   * operation as a single candidate step.
   */
  step(state: State, input: Input, output: Output | undefined): StepResult<State>;
  /**
   * readOnly says whether an operation with this observed output leaves the state unchanged in
   * every state where step accepts it: a read, a cas that reported false. The checker linearizes
   * such a completed operation as soon as the model accepts it, without trying the alternatives
   * (see search.ts), which prunes a great deal. Optional; returning false is always safe, but
   * returning true for an operation that can change the state makes the checker wrong.
   */
  readOnly?(input: Input, output: Output | undefined): boolean;
  /**
   * partition splits a history into independent sub-histories (e.g. one per key) such that the
   * whole is linearizable if and only if every part is. Optional: without it the history is
   * checked as one piece. A model that partitions may keep the state of one part only.
   */
  partition?(history: History<Input, Output>): History<Input, Output>[];
  /** equal says whether two states are the same (for the memo cache). */
  equal(a: State, b: State): boolean;
  /** hash returns a 32-bit integer, equal for equal states (for the memo cache). */
  hash(state: State): number;
  /** describeOperation renders an operation for reports, e.g. `cas(k, 1 -> 2) = false`. */
  describeOperation(input: Input, output: Output | undefined): string;
  /** describeState renders a state for reports. */
  describeState(state: State): string;
}

/**
 * hashString is FNV-1a over UTF-16 code units: cheap, good enough for memo buckets, and the
 * same on every run (reports and tests must be reproducible).
 */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}
