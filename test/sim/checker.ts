import {
  disjointMajoritiesPossible,
  type Entry,
  type LogIndex,
  type NodeId,
  type Term,
} from "../../src/raft/index.js";
import { chainHash } from "./kv-machine.js";

/** SafetyViolation is a broken Raft guarantee found by the simulator. */
export class SafetyViolation extends Error {
  constructor(
    readonly property: string,
    detail: string,
  ) {
    super(`${property}: ${detail}`);
    this.name = "SafetyViolation";
  }
}

/** LogView is what the checker may read of a node's log. */
export interface LogView {
  readonly id: NodeId;
  readonly commit: LogIndex;
  readonly lastIndex: LogIndex;
  readonly snapshotIndex: LogIndex;
  entry(i: LogIndex): Entry | undefined;
}

/**
 * SafetyChecker holds the cluster-wide truth the simulator compares every node against:
 * who led each term, what each committed index holds, and the hash chain of applied entries.
 */
export class SafetyChecker {
  private readonly leaders = new Map<Term, NodeId>();
  private readonly committed = new Map<LogIndex, { term: Term; hash: number }>();
  private readonly chains = new Map<LogIndex, number>();
  private readonly checkedCommit = new Map<NodeId, LogIndex>();
  /** committedMax is the highest index any node has seen committed. */
  committedMax: LogIndex = 0;

  /** onLeader records a leader for a term: there may be at most one (Election Safety). */
  onLeader(term: Term, id: NodeId, log: LogView): void {
    const prev = this.leaders.get(term);
    if (prev !== undefined && prev !== id) {
      throw new SafetyViolation("election safety", `${prev} and ${id} both lead term ${term}`);
    }
    if (prev === undefined) {
      this.leaders.set(term, id);
      this.checkLeaderCompleteness(term, log);
    }
  }

  /** Leader Completeness: a new leader holds every entry committed so far. */
  private checkLeaderCompleteness(term: Term, log: LogView): void {
    if (log.lastIndex < this.committedMax) {
      throw new SafetyViolation(
        "leader completeness",
        `${log.id} leads term ${term} with last index ${log.lastIndex} < committed ${this.committedMax}`,
      );
    }
    for (let i = log.snapshotIndex + 1; i <= this.committedMax; i++) this.compareCommitted(log, i, "leader completeness");
  }

  /** onCommitView checks a node's committed prefix against every other node's (State Machine Safety). */
  onCommitView(log: LogView): void {
    const from = Math.max(this.checkedCommit.get(log.id) ?? 0, log.snapshotIndex) + 1;
    for (let i = from; i <= log.commit; i++) this.compareCommitted(log, i, "log matching");
    if (log.commit > this.committedMax) this.committedMax = log.commit;
    this.checkedCommit.set(log.id, Math.max(log.commit, this.checkedCommit.get(log.id) ?? 0));
  }

  /** onRestart forgets how far a node was checked: its commit index may have gone back. */
  onRestart(id: NodeId): void {
    this.checkedCommit.delete(id);
  }

  private compareCommitted(log: LogView, i: LogIndex, property: string): void {
    const e = log.entry(i);
    if (!e) return;
    const hash = chainHash(0, e);
    const known = this.committed.get(i);
    if (!known) {
      this.committed.set(i, { term: e.term, hash });
    } else if (known.term !== e.term || known.hash !== hash) {
      throw new SafetyViolation(property, `${log.id} holds term ${e.term} at committed index ${i}, expected term ${known.term}`);
    }
  }

  /** onApplied checks that a node's state machine applied the same sequence as every other node. */
  onApplied(id: NodeId, index: LogIndex, chain: number): void {
    const known = this.chains.get(index);
    if (known === undefined) this.chains.set(index, chain);
    else if (known !== chain) {
      throw new SafetyViolation("state machine safety", `${id} applied a different history up to ${index}`);
    }
  }

  /** onConfApplied checks that one configuration change never allows two disjoint quorums. */
  onConfApplied(id: NodeId, before: readonly NodeId[], after: readonly NodeId[]): void {
    if (disjointMajoritiesPossible(new Set(before), new Set(after))) {
      throw new SafetyViolation(
        "membership safety",
        `${id} moved from voters [${before.join(",")}] to [${after.join(",")}], which have disjoint majorities`,
      );
    }
  }

  /** onRead checks that a ReadIndex read saw every write acknowledged before it began. */
  onRead(id: NodeId, readIndex: LogIndex, ackedBeforeStart: LogIndex): void {
    if (readIndex < ackedBeforeStart) {
      throw new SafetyViolation(
        "linearizable read",
        `${id} served a read at index ${readIndex}, but index ${ackedBeforeStart} was acknowledged before it began`,
      );
    }
  }
}
