import {
  disjointMajoritiesPossible,
  type Entry,
  type LogIndex,
  type Message,
  MessageType,
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
  /** snapshotTerm is the term of the entry at snapshotIndex (0 without a snapshot). */
  readonly snapshotTerm: Term;
  entry(i: LogIndex): Entry | undefined;
}

/** ConfView is a node's current configuration: its voters with every change in its log, committed or not. */
export interface ConfView {
  readonly log: LogView;
  readonly voters: readonly NodeId[];
}

/** LEADER_ONLY_MESSAGES are sent only by a leader: a sender of one in a term led that term. */
const LEADER_ONLY_MESSAGES: ReadonlySet<string> = new Set([
  MessageType.App,
  MessageType.Heartbeat,
  MessageType.Snap,
  MessageType.TimeoutNow,
]);

/**
 * SafetyChecker holds the cluster-wide truth the simulator compares every node against:
 * who led each term, what each committed index holds, and the hash chain of applied entries.
 */
export class SafetyChecker {
  private readonly leaders = new Map<Term, NodeId>();
  private readonly committed = new Map<LogIndex, { term: Term; hash: number }>();
  private readonly chains = new Map<LogIndex, number>();
  private readonly checkedCommit = new Map<NodeId, LogIndex>();
  private readonly completenessChecked = new Set<Term>();
  /** committedMax is the highest index any node has seen committed. */
  committedMax: LogIndex = 0;
  /** committedTip is the highest committed index whose term is known (an entry there was seen). */
  private committedTip = { index: 0, term: 0 };
  /** confSplits counts the checks at which two nodes holding every committed entry had different configurations. */
  confSplits = 0;

  /** onLeader records a leader for a term: there may be at most one (Election Safety). */
  onLeader(term: Term, id: NodeId, log: LogView): void {
    this.recordLeader(term, id);
    if (!this.completenessChecked.has(term)) {
      this.completenessChecked.add(term);
      this.checkLeaderCompleteness(term, log);
    }
  }

  /**
   * onSend records the sender of a message only a leader sends as that term's leader. It sees a
   * leader that lost its term within one tick, which the role seen at the end of the tick misses.
   */
  onSend(m: Message): void {
    if (LEADER_ONLY_MESSAGES.has(m.type)) this.recordLeader(m.term, m.from);
  }

  private recordLeader(term: Term, id: NodeId): void {
    const prev = this.leaders.get(term);
    if (prev === undefined) this.leaders.set(term, id);
    else if (prev !== id) throw new SafetyViolation("election safety", `${prev} and ${id} both lead term ${term}`);
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
    // A snapshot holds committed entries only. A node that commits and compacts in the same tick
    // shows the new committed index through its snapshot alone.
    if (log.snapshotIndex > this.committedTip.index) this.committedTip = { index: log.snapshotIndex, term: log.snapshotTerm };
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
      if (i > this.committedTip.index) this.committedTip = { index: i, term: e.term };
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

  /**
   * onConfigurations compares the configurations of every pair of nodes that hold every committed
   * entry: each such node may win an election or commit with its configuration, so every majority
   * of one must meet every majority of the other (with one change at a time, they differ by at most
   * one voter). A node whose log lacks a committed entry is left out: it cannot win an election
   * (a majority of its configuration holds the entry it lacks and refuses its vote) nor commit as a
   * stale leader, and such a node may well hold a configuration several changes old, which is safe.
   */
  onConfigurations(views: readonly ConfView[]): void {
    const distinct = new Map<string, { id: NodeId; voters: ReadonlySet<NodeId> }>();
    for (const v of views) {
      if (!this.holdsCommitted(v.log)) continue;
      const key = v.voters.join(",");
      if (!distinct.has(key)) distinct.set(key, { id: v.log.id, voters: new Set(v.voters) });
    }
    const confs = [...distinct.values()];
    if (confs.length > 1) this.confSplits++;
    for (let i = 0; i < confs.length; i++) {
      for (let j = i + 1; j < confs.length; j++) {
        const a = confs[i]!;
        const b = confs[j]!;
        if (disjointMajoritiesPossible(a.voters, b.voters)) {
          throw new SafetyViolation(
            "membership safety",
            `${a.id} uses voters [${[...a.voters].join(",")}] and ${b.id} uses [${[...b.voters].join(",")}] at once, which have disjoint majorities`,
          );
        }
      }
    }
  }

  /** holdsCommitted says whether a log holds the highest known committed entry, and so (Log Matching) every committed entry. */
  private holdsCommitted(log: LogView): boolean {
    const tip = this.committedTip;
    if (log.snapshotIndex >= tip.index) return true;
    return log.entry(tip.index)?.term === tip.term;
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
