import { invariant, SnapshotRejectedError } from "./errors.js";
import { type RaftOptions, resolveOptions } from "./options.js";
import { type PersistedState, type ProposalRef, Raft } from "./raft.js";
import {
  type ConfChange,
  type Entry,
  type HardState,
  type LogIndex,
  type Message,
  NO_NODE,
  type NodeId,
  type Ready,
  type Role,
  SNAPSHOT_DATA_RELEASED,
  type Snapshot,
  type SoftState,
  type Term,
} from "./types.js";

/** Status is a read-only view of a node for display and tests. */
export interface Status {
  readonly id: NodeId;
  readonly role: Role;
  readonly lead: NodeId;
  readonly term: Term;
  readonly vote: NodeId;
  readonly commit: LogIndex;
  readonly applied: LogIndex;
  readonly lastIndex: LogIndex;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly leadTransferee: NodeId;
}

/** MemberProgress is the leader's view of one member, for display and for the host's checks. */
export interface MemberProgress {
  readonly match: LogIndex;
  readonly next: LogIndex;
  readonly state: string;
  readonly recentActive: boolean;
}

/**
 * RawNode drives one Raft core for a host: the host feeds it ticks, messages and proposals, and
 * repeatedly takes a Ready, does its work (persist, send, apply) and calls advance(ready).
 *
 * Contract: at most one Ready is outstanding; between ready() and advance() the host may keep
 * calling tick, step, propose and readIndex; their output comes with the next Ready.
 */
export class RawNode {
  private readonly raft: Raft;
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private outstanding: Ready | undefined;

  constructor(options: RaftOptions, persisted: PersistedState) {
    this.raft = new Raft(resolveOptions(options), persisted);
    this.prevHardState = persisted.hardState;
    this.prevSoftState = { lead: NO_NODE, role: this.raft.role };
  }

  /** tick advances the core's clock by one tick. */
  tick(): void {
    this.raft.tick();
  }

  /** campaign starts an election now (as if the election timeout had passed). */
  campaign(): void {
    this.raft.hup(false);
  }

  /**
   * peerDisconnected tells the core that the connection from peer `id` ended (closed or reset, not
   * a timeout). A follower whose leader it was campaigns soon rather than after an election
   * timeout; see Raft.peerDisconnected for why that is safe. Harmless for any other peer or role.
   */
  peerDisconnected(id: NodeId): void {
    this.raft.peerDisconnected(id);
  }

  /** step takes one message from a peer. Messages addressed to another node are a host bug. */
  step(m: Message): void {
    invariant(m.to === this.raft.id, () => `message for ${m.to} stepped into ${this.raft.id}`);
    this.raft.step(m);
  }

  /** propose appends entries on the leader (throws NotLeaderError elsewhere); refs resolve when applied. */
  propose(datas: readonly Uint8Array[]): ProposalRef[] {
    return this.raft.propose(datas);
  }

  /** proposeConfChange proposes one membership change on the leader. */
  proposeConfChange(cc: ConfChange): ProposalRef {
    return this.raft.proposeConfChange(cc);
  }

  /** readIndex requests a linearizable read; a ReadState with the same context comes later. */
  readIndex(context: Uint8Array): void {
    this.raft.readIndex({ from: this.raft.id, context });
  }

  /** transferLeadership asks the leader to hand over to `to`. */
  transferLeadership(to: NodeId): void {
    this.raft.transferLeadership(to);
  }

  /**
   * compact hands in an application snapshot taken at `index` (which must be applied) and compacts
   * the log. The core keeps the snapshot to send to followers that fell too far behind. A host that
   * serves the bytes itself from the start passes SNAPSHOT_DATA_RELEASED as data: the core then
   * keeps the metadata only, as after releaseSnapshotData, and the host fills its Snap messages.
   */
  compact(index: LogIndex, data: Uint8Array): Snapshot {
    const log = this.raft.log;
    const term = log.term(index);
    // A host may snapshot at an index a snapshot from the leader has already passed: expected, not a bug.
    if (index <= log.snapshotIndex() || term === undefined || index > log.applied) {
      throw new SnapshotRejectedError(
        `index ${index} is outside (${log.snapshotIndex()}, ${log.applied}]: compacted already or not applied`,
      );
    }
    const snap: Snapshot = { meta: { index, term, conf: this.raft.confStateAt(index).toConfState() }, data };
    this.raft.log.compact(snap, this.raft.opts.snapshotKeepEntries, (i) => this.raft.confStateAt(i).toConfState());
    return snap;
  }

  /**
   * releaseSnapshotData tells the core that the host holds the bytes of the snapshot at `index`
   * durably (its store wrote it: a local snapshot compacted, or one from the leader installed), so
   * the core keeps only its metadata instead of a copy of the whole state for the rare follower that
   * falls behind. Snap messages then carry SNAPSHOT_DATA_RELEASED and the host fills them from its
   * store before they leave; when the store no longer has that snapshot the host drops the message,
   * as a network would, and the leader sends its newest after snapshot retry ticks. Returns whether
   * the bytes were released: not when `index` is not the core's snapshot or it is still pending.
   */
  releaseSnapshotData(index: LogIndex): boolean {
    return this.raft.log.releaseData(index);
  }

  /** snapshotDataBytes is the size of the snapshot bytes the core holds (0 once released, or without a snapshot). */
  snapshotDataBytes(): number {
    const snap = this.raft.log.snapshot;
    return snap === undefined || snap.data === SNAPSHOT_DATA_RELEASED ? 0 : snap.data.length;
  }

  /** hasReady says whether ready() has work for the host. */
  hasReady(): boolean {
    if (this.outstanding) return false;
    const r = this.raft;
    return (
      r.hasPendingFlush() ||
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      r.readRejects.length > 0 ||
      r.log.hasUnstable() ||
      r.log.pendingSnapshot !== undefined ||
      r.log.committed > r.log.applied ||
      !hardStateEqual(this.persistedHardState(), this.prevHardState) ||
      r.lead !== this.prevSoftState.lead ||
      r.role !== this.prevSoftState.role
    );
  }

  /** ready collects the work for the host; call advance(ready) when it is done. */
  ready(): Ready {
    invariant(!this.outstanding, "ready() called again before advance()");
    const r = this.raft;
    r.flush();
    const hs = this.persistedHardState();
    const soft: SoftState = { lead: r.lead, role: r.role };
    const rd: Ready = {
      softState: softStateEqual(soft, this.prevSoftState) ? undefined : soft,
      hardState: hardStateEqual(hs, this.prevHardState) ? undefined : hs,
      entries: r.log.unstableEntries(),
      snapshot: r.log.pendingSnapshot,
      messages: r.msgs,
      committedEntries: r.log.nextCommittedEntries(r.opts.committedBytesPerReadyMax),
      readStates: r.readStates,
      readRejects: r.readRejects,
    };
    r.msgs = [];
    r.readStates = [];
    r.readRejects = [];
    if (rd.softState) this.prevSoftState = rd.softState;
    this.outstanding = rd;
    return rd;
  }

  /** advance tells the core that the host finished the work of rd. */
  advance(rd: Ready): void {
    invariant(rd === this.outstanding, "advance() with a ready that is not outstanding");
    this.outstanding = undefined;
    const r = this.raft;
    if (rd.hardState) this.prevHardState = rd.hardState;
    if (rd.snapshot) r.log.stableSnapTo(rd.snapshot.meta.index);
    const last = rd.entries[rd.entries.length - 1];
    if (last) r.log.stableTo(last.index, last.term);
    r.onPersisted();
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied) {
      r.log.appliedTo(Math.min(lastApplied.index, r.log.committed));
      r.releaseUncommitted(rd.committedEntries);
    }
  }

  /** role is what this node is now (cheaper than status() on hot paths). */
  role(): Role {
    return this.raft.role;
  }

  /** leader is the leader this node knows of, or NO_NODE (cheaper than status() on hot paths). */
  leader(): NodeId {
    return this.raft.lead;
  }

  /** applied is the index of the last entry the host reported applied. */
  applied(): LogIndex {
    return this.raft.log.applied;
  }

  /** term is this node's current term (cheaper than status() on hot paths). */
  term(): Term {
    return this.raft.term;
  }

  /**
   * voterRank is where `id` stands among the voters sorted by id (how many sort before it; -1 when
   * it is not a voter) and how many voters there are: status().voters without building and
   * sorting a copy, for hot paths.
   */
  voterRank(id: NodeId): { rank: number; voters: number } {
    const voters = this.raft.membership.voters;
    if (!voters.has(id)) return { rank: -1, voters: voters.size };
    let rank = 0;
    for (const v of voters) if (v < id) rank++;
    return { rank, voters: voters.size };
  }

  /** status describes the node now. */
  status(): Status {
    const r = this.raft;
    return {
      id: r.id,
      role: r.role,
      lead: r.lead,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      voters: [...r.membership.voters].sort(),
      learners: [...r.membership.learners].sort(),
      leadTransferee: r.leadTransferee,
    };
  }

  /**
   * progress describes what the leader knows of each member (empty on a follower). recentActive
   * says the member answered within the current or the last check-quorum round, i.e. within the
   * last one to two election timeouts (the leader itself always counts).
   */
  progress(): Map<NodeId, MemberProgress> {
    const out = new Map<NodeId, MemberProgress>();
    if (this.raft.role !== "leader") return out;
    for (const [id, pr] of this.raft.prs) {
      const recentActive = id === this.raft.id || pr.recentActive || pr.activeLastRound;
      out.set(id, { match: pr.match, next: pr.next, state: pr.state, recentActive });
    }
    return out;
  }

  /** logEntry returns the entry this node holds at index, if any, for checks and tests. */
  logEntry(index: LogIndex): Entry | undefined {
    return this.raft.log.entry(index);
  }

  private persistedHardState(): HardState {
    const hs = this.raft.hardState();
    if (this.raft.opts.unsafe.skipPersistVote) return { ...hs, vote: NO_NODE };
    return hs;
  }
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function softStateEqual(a: SoftState, b: SoftState): boolean {
  return a.lead === b.lead && a.role === b.role;
}
