import type { Entry, LogIndex } from "../raft/index.js";

/**
 * StateMachine is what the node replicates. Contract: apply is deterministic and produces the same
 * result on every node for the same sequence of entries; it is called once per committed entry, in
 * index order, with no gaps: membership entries (already handled by the core) and empty leader
 * no-ops are passed too, so the machine tracks its applied index, and it ignores them. snapshot captures everything apply built; restore replaces
 * the whole state with a snapshot's.
 */
export interface StateMachine {
  /** applied is the index of the last entry applied or restored. */
  readonly applied: LogIndex;
  apply(entry: Entry): unknown;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
}
