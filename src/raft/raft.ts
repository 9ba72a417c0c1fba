import {
  ConfChangeRejectedError,
  DamagedStateError,
  ImpossibleMessageError,
  invariant,
  NotLeaderError,
  ProposalDroppedError,
  ReadLimitError,
  TransferRejectedError,
  UncommittedLimitError,
} from "./errors.js";
import { EARLY_CAMPAIGN_SLOT_DIVISOR } from "./limits.js";
import { entryBytes, RaftLog } from "./log.js";
import { decodeConfChange, encodeConfChange, Membership } from "./membership.js";
import type { ResolvedOptions } from "./options.js";
import { Progress, ProgressState } from "./progress.js";
import { committedIndex, hasQuorum, voteResult } from "./quorum.js";
import { decodeRoundId, encodeRoundId, type PendingRead, ReadOnly, type ReadRequest } from "./read-only.js";
import {
  type ConfChange,
  type Entry,
  EntryKind,
  type HardState,
  type LogIndex,
  type Message,
  MessageType,
  NO_NODE,
  type NodeId,
  type ReadReject,
  ReadRejectReason,
  type ReadState,
  Role,
  SNAPSHOT_DATA_RELEASED,
  type Snapshot,
  type Term,
} from "./types.js";

/** TRANSFER_CONTEXT marks a vote request that comes from a leadership transfer, so stickiness does not block it. */
const TRANSFER_CONTEXT = new TextEncoder().encode("transfer");

/** PersistedState is what a node finds on disk when it starts. */
export interface PersistedState {
  readonly hardState: HardState;
  readonly snapshot?: Snapshot;
  readonly entries: readonly Entry[];
}

/** ProposalRef names an appended entry; the proposal succeeded once that (index, term) is applied. */
export interface ProposalRef {
  readonly index: LogIndex;
  readonly term: Term;
}

type MessageFields = Partial<Omit<Message, "type" | "to" | "from">> & Pick<Message, "type" | "to">;

/**
 * Raft is the protocol state machine of one node (Raft paper and dissertation; structure after
 * etcd-io/raft). It is synchronous and pure: time enters through tick(), randomness through the
 * RandomSource in its options, and all output is collected for RawNode's Ready.
 */
export class Raft {
  readonly id: NodeId;
  readonly opts: ResolvedOptions;
  term: Term;
  vote: NodeId;
  lead: NodeId = NO_NODE;
  /**
   * termLead is the leader of the current term once this node has heard of it. Unlike `lead` it
   * survives a pre-vote or a step-down within the term: a term has one leader, so messages that
   * only a leader sends, from anyone else in the same term, are impossible (see step()).
   */
  private termLead: NodeId = NO_NODE;
  role: Role = Role.Follower;
  readonly log: RaftLog;
  membership: Membership;
  /** prs tracks every member; meaningful only on a leader. */
  prs = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  /** readRejects are this node's own reads refused since the last ready. */
  readRejects: ReadReject[] = [];
  /** ticks counts calls to tick(): the core's only clock, used to bound how long a read is held. */
  private ticks = 0;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /**
   * earlyTieBreak is set by peerDisconnected and holds through that early campaign's first
   * pre-vote round only (refusesCrossingPreVote): a later round, or a leader heard again, clears it.
   */
  private earlyTieBreak = false;
  /** reAsked names the peers this pre-campaign already sent its pre-vote again (handleVoteRequest). */
  private readonly reAsked = new Set<NodeId>();
  /** leadTransferee is the target of a pending leadership transfer. */
  leadTransferee: NodeId = NO_NODE;
  private transferElapsed = 0;
  /**
   * confIndex is the index of the last membership change in the log (or the snapshot index).
   * A configuration takes effect as soon as its entry is in the log, committed or not (Raft
   * dissertation §4.1), and is undone if the entry is overwritten. Invariant: at most one change
   * is uncommitted, so configurations in use always differ by one server.
   */
  confIndex: LogIndex = 0;
  /** previousVoters are the voters before the change at confIndex. */
  private previousVoters: ReadonlySet<NodeId> = new Set();
  private uncommittedBytes = 0;
  private readonly readOnly = new ReadOnly();
  /** readsAwaitingCommit holds reads that arrived before this leader committed an entry of its term. */
  private readsAwaitingCommit: PendingRead[] = [];
  /** broadcastPending defers appends to the next ready, so proposals between readies share one batch. */
  private broadcastPending = false;

  constructor(opts: ResolvedOptions, persisted: PersistedState) {
    this.id = opts.id;
    this.opts = opts;
    this.log = new RaftLog(persisted.snapshot, persisted.entries, persisted.hardState.commit);
    this.membership = new Membership(persisted.snapshot?.meta.conf);
    this.term = persisted.hardState.term;
    this.vote = persisted.hardState.vote;
    this.recomputeMembership();
    this.becomeFollower(this.term, NO_NODE);
  }

  // ---------------------------------------------------------------- state

  /** hardState is the state that must be durable before dependent messages leave. */
  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /**
   * promotable says whether this node may campaign: a voter with no snapshot waiting to install.
   * A node whose own removal is still uncommitted may campaign too (and count votes in the new
   * configuration): otherwise a leader that removed itself and then lost leadership before the
   * change committed would leave the remaining voters waiting for its vote forever.
   */
  promotable(): boolean {
    if (this.log.pendingSnapshot !== undefined) return false;
    if (this.membership.voters.has(this.id)) return true;
    return this.confIndex > this.log.committed && this.previousVoters.has(this.id);
  }

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.opts.electionTick + this.opts.random.nextInt(this.opts.electionTick);
  }

  private reset(term: Term): void {
    // Reads held by a leader that stops leading will never be confirmed: refuse them (in the old
    // term, before it changes) so every reader can retry at once instead of at its deadline.
    const dropped = [...this.readsAwaitingCommit, ...this.readOnly.reset()];
    if (this.role === Role.Leader) for (const r of dropped) this.rejectRead(r, ReadRejectReason.NotLeader);
    if (this.term !== term) {
      this.term = term;
      this.vote = NO_NODE;
      this.termLead = NO_NODE;
    }
    this.lead = NO_NODE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = NO_NODE;
    this.votes.clear();
    this.earlyTieBreak = false;
    this.uncommittedBytes = 0;
    this.readsAwaitingCommit = [];
    this.broadcastPending = false;
    this.resetProgress();
  }

  private resetProgress(): void {
    this.prs.clear();
    for (const id of this.membership.members()) this.prs.set(id, this.newProgress(id));
  }

  private newProgress(id: NodeId): Progress {
    const pr = new Progress(
      this.log.lastIndex() + 1,
      this.membership.learners.has(id),
      this.opts.inflightMessagesMax,
      this.opts.inflightBytesMax,
    );
    if (id === this.id) pr.match = this.log.stableIndex();
    return pr;
  }

  // ---------------------------------------------------------------- roles

  becomeFollower(term: Term, lead: NodeId): void {
    this.reset(term);
    this.follow(lead);
    this.role = Role.Follower;
  }

  /** follow records the leader of the current term (NO_NODE: none known, which forgets nothing). */
  private follow(lead: NodeId): void {
    this.lead = lead;
    if (lead !== NO_NODE) this.earlyTieBreak = false;
    if (lead !== NO_NODE) this.termLead = lead;
  }

  private becomePreCandidate(): void {
    invariant(this.role !== Role.Leader, "leader cannot become pre-candidate");
    // Pre-vote changes neither term nor vote, so a partitioned node cannot disrupt the cluster.
    this.votes.clear();
    this.reAsked.clear();
    this.lead = NO_NODE;
    this.role = Role.PreCandidate;
  }

  private becomeCandidate(): void {
    invariant(this.role !== Role.Leader, "leader cannot become candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
  }

  private becomeLeader(): void {
    invariant(this.role === Role.Candidate, () => `${this.role} cannot become leader`);
    this.reset(this.term);
    this.follow(this.id);
    this.role = Role.Leader;
    this.prs.get(this.id)?.becomeReplicate();
    // The no-op entry lets the leader commit, and so learn, everything earlier terms committed.
    this.appendEntries([{ kind: EntryKind.Normal, data: new Uint8Array(0) }]);
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    this.ticks++;
    if (this.role === Role.Leader) this.tickLeader();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      // A pre-candidate starting another round: its early tie-break is spent (see earlyTieBreak).
      if (this.role !== Role.Follower) this.earlyTieBreak = false;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.leadTransferee !== NO_NODE && ++this.transferElapsed >= this.opts.electionTick) {
      // A transfer that has not finished within an election timeout is abandoned.
      this.leadTransferee = NO_NODE;
    }
    if (this.electionElapsed >= this.opts.electionTick) {
      this.electionElapsed = 0;
      if (this.opts.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, NO_NODE);
        return;
      }
    }
    this.expireReads();
    for (const [id, pr] of this.prs) {
      if (pr.state !== ProgressState.Snapshot || id === this.id) continue;
      // A lost snapshot is retried: after an election timeout, probe again (which resends it).
      if (++pr.snapshotTicks >= this.opts.electionTick) pr.becomeProbe();
    }
    if (this.heartbeatElapsed >= this.opts.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(undefined);
    }
  }

  /**
   * peerDisconnected is told that the connection from `id` ended: closed or reset, not timed out
   * (a crashed process's sockets close at once). When `id` is this follower's leader, the follower
   * forgets it (so it no longer counts as in the leader's lease and will grant pre-votes) and
   * campaigns after a short delay set by its rank (EARLY_CAMPAIGN_SLOT_DIVISOR) instead of a full
   * election timeout. This is safe: it only moves an election earlier, and with pre-vote and
   * check-quorum the campaign starts with a pre-vote that every node still hearing from a leader
   * within its election timeout ignores (stepHigherTerm), and that the leader ignores too; so if
   * the connection merely reset, no term moves and the next heartbeat restores the leader here.
   */
  peerDisconnected(id: NodeId): void {
    if (this.role !== Role.Follower || this.lead === NO_NODE || id !== this.lead || !this.promotable()) return;
    this.lead = NO_NODE;
    this.earlyTieBreak = true;
    const slotTicks = Math.max(1, Math.floor(this.opts.electionTick / EARLY_CAMPAIGN_SLOT_DIVISOR));
    const waitTicks = Math.min(this.randomizedElectionTimeout, 1 + this.earlyCampaignRank(id) * slotTicks);
    this.electionElapsed = Math.max(this.electionElapsed, this.randomizedElectionTimeout - waitTicks);
  }

  /**
   * earlyCampaignRank is this node's place among the voters other than `gone`, sorted by id (see
   * EARLY_CAMPAIGN_SLOT_DIVISOR); a node campaigning only as a previous voter goes last.
   */
  private earlyCampaignRank(gone: NodeId): number {
    const voters = this.membership.voters;
    let rank = 0;
    for (const v of voters) if (v !== gone && (!voters.has(this.id) || v < this.id)) rank++;
    return rank;
  }

  /** quorumActive says whether a quorum answered since the last check; it clears the marks. */
  private quorumActive(): boolean {
    const ok = hasQuorum(this.membership.voters, (id) => id === this.id || this.prs.get(id)?.recentActive === true);
    for (const [id, pr] of this.prs) {
      pr.activeLastRound = pr.recentActive;
      pr.recentActive = id === this.id;
    }
    return ok;
  }

  // ---------------------------------------------------------------- elections

  /** hup starts an election (after a pre-vote unless this is a transfer). */
  hup(transfer: boolean): void {
    if (this.role === Role.Leader || !this.promotable()) return;
    if (this.opts.preVote && !transfer) this.campaign(true, false);
    else this.campaign(false, transfer);
  }

  private campaign(pre: boolean, transfer: boolean): void {
    let term: Term;
    if (pre) {
      this.becomePreCandidate();
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    if (this.poll(this.id, true) === "won") {
      if (pre) this.campaign(false, false);
      else this.becomeLeader();
      return;
    }
    for (const id of [...this.membership.voters].sort()) {
      if (id === this.id) continue;
      this.requestVote(pre ? MessageType.PreVote : MessageType.Vote, id, term, transfer ? TRANSFER_CONTEXT : undefined);
    }
  }

  /** requestVote asks `to` for a vote or pre-vote in `term`, naming this node's last log entry. */
  private requestVote(type: MessageType, to: NodeId, term: Term, context: Uint8Array | undefined): void {
    this.send({ type, to, term, index: this.log.lastIndex(), logTerm: this.log.lastTerm(), context });
  }

  private poll(id: NodeId, granted: boolean): "won" | "lost" | "pending" {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(this.membership.voters, this.votes);
  }

  private handleVoteRequest(m: Message): void {
    const pre = m.type === MessageType.PreVote;
    const canVote =
      (this.vote === m.from || (this.vote === NO_NODE && this.lead === NO_NODE) || (pre && m.term > this.term)) &&
      !(pre && this.refusesCrossingPreVote(m));
    const upToDate = this.opts.unsafe.grantVoteWithoutLogCheck || this.log.isUpToDate(m.index, m.logTerm);
    const respType = pre ? MessageType.PreVoteResp : MessageType.VoteResp;
    if (canVote && upToDate) {
      // The response carries the request's term so the candidate counts it (for pre-vote, term+1).
      this.send({ type: respType, to: m.from, term: m.term });
      if (!pre) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, to: m.from, term: this.term, reject: true });
    }
    if (pre && this.role === Role.PreCandidate && this.votes.get(m.from) !== true && !this.reAsked.has(m.from)) {
      // The peer campaigns too, so it no longer hears a leader: ask it again. It may have ignored
      // this node's pre-vote while it still did (a leader's crash is not seen by all at once), and
      // this node would otherwise wait a whole election timeout to ask again. A pre-vote binds
      // nobody, so an earlier refusal from the peer is forgotten. Once per peer a round, so
      // duplicated messages cannot multiply pre-votes.
      this.reAsked.add(m.from);
      this.votes.delete(m.from);
      this.requestVote(MessageType.PreVote, m.from, this.term + 1, undefined);
    }
  }

  /**
   * refusesCrossingPreVote breaks a tie between two early pre-campaigns: in the first pre-vote
   * round after its leader's connection ended (earlyTieBreak), a pre-candidate refuses the
   * pre-vote of a peer that sorts after it by id (JavaScript string order, as the ranks) unless
   * the peer's log is strictly more up to date; handleVoteRequest then asks that peer for its own
   * pre-vote again. Two followers that pre-vote within a round trip (both saw their leader's
   * connection end; a loaded machine stretched the round trip past the rank slot) otherwise grant
   * each other, both become candidates in the next term, split the vote and wait a whole election
   * timeout. With this rule the one that sorts first wins, or the one with the better log. It only
   * refuses pre-votes, which move no term and grant nothing. It is limited to one round because a
   * pre-candidate that cannot win (a one-way cut keeps its pre-votes from a majority) would
   * otherwise refuse, round after round, a peer that could: a second reader's search found such
   * 5-voter schedules that never elected. Limited, they cost at most that one round.
   */
  private refusesCrossingPreVote(m: Message): boolean {
    if (!this.earlyTieBreak || this.role !== Role.PreCandidate || m.from <= this.id) return false;
    const lastTerm = this.log.lastTerm();
    const peerBetter = m.logTerm > lastTerm || (m.logTerm === lastTerm && m.index > this.log.lastIndex());
    return !peerBetter;
  }

  // ---------------------------------------------------------------- step

  /**
   * step takes one message from the network (or a local Hup).
   *
   * DESIGN: Impossible peer messages. Raft assumes peers that follow the protocol; the transport
   * checks who a caller claims to be (src/transport/identity.ts), but without mutual TLS a claim
   * can be forged, and a bug or a damaged disk elsewhere can send nonsense. A message that no
   * correct peer can send in this node's state is one of two kinds:
   *
   * - "That peer is wrong": the message contradicts facts this node holds for sure, so the sender
   *   (or whoever speaks in its name) is faulty. step() throws ImpossibleMessageError before
   *   touching any state; the host drops the message, closes that peer's stream, logs the peer and
   *   counts it. This node carries on. The cases (impossibleReason below):
   *   - app, heartbeat or snap in the current term from a node other than the term's leader (a
   *     term has one leader; this is how a forged append or commit from a non-leader is refused);
   *   - app whose entries do not follow its (index, logTerm) with contiguous indexes and terms
   *     that never decrease and never pass the message's term;
   *   - timeout-now from anyone but the current term's leader, or from a later term (a leader
   *     sends it only to a follower that caught up with it, so in the leader's own term);
   *   - app-resp, on a leader in its term, for an index beyond the leader's own last index (a
   *     follower acknowledges only what the leader sent; the leader's log only grows in its term),
   *     or a rejection hinting past the index it rejects;
   *   - a granted read-index-resp from anyone but the current term's leader, or from a later term.
   * - "My own state is damaged": a correct peer's message proves that this node lost data it had
   *   acknowledged. The one case: a heartbeat from the term's leader whose commit index is beyond
   *   this node's last index. A leader sends min(match, commit), and match is what this node
   *   acknowledged after making it durable, so this log lost entries (a replaced, truncated or
   *   restored data directory). etcd-io/raft stops there too (raftLog.commitTo panics, "Was the
   *   raft log corrupted, truncated, or lost?"). The node stops (DamagedStateError): carrying on,
   *   it would count towards quorums for entries it no longer has. An append's commit is instead
   *   clamped to what the append verified, as in etcd, so an append never stops a node.
   *
   * What this cannot catch: a forger that passes as the current leader, or as any member in a
   * later term, is a leader as far as Raft can tell. Only peer authentication (mutual TLS with
   * certificate identities) closes that; README "Guarantees / Security" says so.
   */
  step(m: Message): void {
    if (m.type === MessageType.Hup) {
      this.hup(false);
      return;
    }
    const wrong = this.impossibleReason(m);
    if (wrong !== undefined) throw new ImpossibleMessageError(m.from, m.type, wrong);
    if (m.term > this.term) {
      if (!this.stepHigherTerm(m)) return;
    } else if (m.term < this.term) {
      this.stepLowerTerm(m);
      return;
    }
    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case Role.Leader:
        this.stepLeader(m);
        break;
      case Role.Candidate:
      case Role.PreCandidate:
        this.stepCandidate(m);
        break;
      default:
        this.stepFollower(m);
    }
  }

  /** impossibleReason says why no correct peer could have sent m now, or undefined (see step()). */
  private impossibleReason(m: Message): string | undefined {
    if (m.from === this.id) return "it names this node as its sender";
    const sameTerm = m.term === this.term;
    const notTermLead = this.termLead !== NO_NODE && m.from !== this.termLead;
    switch (m.type) {
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
        if (sameTerm && notTermLead) return `term ${m.term} already has leader ${this.termLead}; a term has one leader`;
        return m.type === MessageType.App ? appendShapeError(m) : undefined;
      case MessageType.TimeoutNow:
        if (m.term > this.term) return `it comes from term ${m.term}, later than this node's ${this.term}; a leader sends it only in its own term`;
        if (sameTerm && notTermLead) return `only the leader of term ${m.term} (${this.termLead}) may send it`;
        return undefined;
      case MessageType.AppResp:
        if (!sameTerm || this.role !== Role.Leader) return undefined;
        if (m.index > this.log.lastIndex()) return `it acknowledges index ${m.index}, beyond this leader's last index ${this.log.lastIndex()}`;
        if (m.reject && m.rejectHint > m.index) return `its hint ${m.rejectHint} is beyond the index ${m.index} it rejects`;
        return undefined;
      case MessageType.ReadIndexResp:
        if (m.reject) return undefined;
        if (m.term > this.term) return `a granted read from term ${m.term}, later than this node's ${this.term}`;
        if (sameTerm && notTermLead) return `a granted read from a node that does not lead term ${m.term} (${this.termLead} does)`;
        return undefined;
      default:
        return undefined;
    }
  }

  /** stepHigherTerm handles a message from a later term; it returns false when the message is ignored. */
  private stepHigherTerm(m: Message): boolean {
    const isVote = m.type === MessageType.Vote || m.type === MessageType.PreVote;
    if (isVote) {
      const transfer = m.context !== undefined && bytesEqual(m.context, TRANSFER_CONTEXT);
      const inLease = this.opts.checkQuorum && this.lead !== NO_NODE && this.electionElapsed < this.opts.electionTick;
      // Leader stickiness: while we hear from a live leader, a disruptive candidate is ignored.
      if (!transfer && inLease) return false;
    }
    if (m.type === MessageType.PreVote) return true;
    if (m.type === MessageType.PreVoteResp && !m.reject) return true;
    const fromLeader = m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap;
    this.becomeFollower(m.term, fromLeader ? m.from : NO_NODE);
    return true;
  }

  private stepLowerTerm(m: Message): void {
    if ((this.opts.checkQuorum || this.opts.preVote) && (m.type === MessageType.App || m.type === MessageType.Heartbeat)) {
      // A stale leader (one whose term we passed while it was cut off) learns our term and steps down.
      this.send({ type: MessageType.AppResp, to: m.from, term: this.term });
    } else if (m.type === MessageType.PreVote) {
      this.send({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true });
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.VoteResp:
      case MessageType.PreVoteResp: {
        const mine = this.role === Role.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
        if (m.type !== mine) return;
        const result = this.poll(m.from, !m.reject);
        if (result === "won") {
          if (this.role === Role.PreCandidate) this.campaign(false, false);
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === "lost") {
          this.becomeFollower(this.term, NO_NODE);
        }
        return;
      }
      case MessageType.ReadIndex:
        // No leader to ask: refuse at once, so the asker's caller can retry instead of waiting.
        this.send({ type: MessageType.ReadIndexResp, to: m.from, reject: true, context: m.context, readReject: ReadRejectReason.NotLeader });
        return;
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.electionElapsed = 0;
        this.follow(m.from);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.follow(m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.follow(m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        // Only the term's leader hands over leadership; when no leader is known (this node restarted
        // since it caught up) the transfer is left to time out rather than trusted.
        if (m.from === this.termLead) this.hup(true);
        return;
      case MessageType.ReadIndexResp:
        if (!m.context) return;
        // A granted read index is the leader's word on what is committed: from a sender that is not
        // known to lead this term it is not taken (step() refused it outright when another leads).
        if (!m.reject && m.from !== this.termLead) return;
        if (!m.reject) this.readStates.push({ index: m.index, context: m.context });
        else this.readRejects.push({ context: m.context, reason: m.readReject ?? ReadRejectReason.NotLeader });
        return;
      case MessageType.ReadIndex:
        // Not the leader (any more): the asker's host answers its caller, who may retry elsewhere.
        this.send({ type: MessageType.ReadIndexResp, to: m.from, reject: true, context: m.context, readReject: ReadRejectReason.NotLeader });
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- follower handlers

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.entries);
    if (lastNew !== undefined) {
      // Entries after m.index may have been replaced: a membership change among them may be gone or new.
      if (this.confIndex > m.index || m.entries.some((e) => e.kind === EntryKind.ConfChange)) this.recomputeMembership();
      // Only what this append verified may be committed: entries past it may be stale.
      this.log.commitTo(Math.min(m.commit, lastNew));
      this.send({ type: MessageType.AppResp, to: m.from, index: lastNew });
      return;
    }
    const hintIndex = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({
      type: MessageType.AppResp,
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: this.log.term(hintIndex) ?? 0,
    });
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(match, commit), an index this log is known to hold: beyond it, this
    // node's own state is damaged (the DESIGN note at step()).
    if (m.commit > this.log.lastIndex() && m.commit > this.log.committed) {
      throw new DamagedStateError(
        `leader ${m.from} of term ${m.term} commits index ${m.commit}, beyond this node's last index ${this.log.lastIndex()}: ` +
          "the leader sends at most what this node acknowledged, so this log lost entries it had made durable " +
          "(was the data directory replaced, truncated or restored from a backup?)",
      );
    }
    this.log.commitTo(m.commit);
    this.send({ type: MessageType.HeartbeatResp, to: m.from, context: m.context });
  }

  private handleSnapshot(m: Message): void {
    const snap = m.snapshot;
    // Released bytes never cross a network (the sender's host fills them); in one process they would
    // install an empty state, so a host that forgot to fill them is stopped here.
    invariant(snap?.data !== SNAPSHOT_DATA_RELEASED, () => `snapshot at ${snap?.meta.index} from ${m.from} arrived without its bytes (the sender's host did not fill it)`);
    if (snap && this.restore(snap)) {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.lastIndex() });
    } else {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.committed });
    }
  }

  /** restore installs a snapshot from the leader; false when this node already has what it covers. */
  private restore(snap: Snapshot): boolean {
    const { index, term } = snap.meta;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      // The log already holds the snapshot's last entry: only the commit index moves.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snap);
    this.recomputeMembership();
    return true;
  }

  // ---------------------------------------------------------------- leader

  private stepLeader(m: Message): void {
    if (m.type === MessageType.ReadIndex) {
      if (m.context) this.readIndex({ from: m.from, context: m.context });
      return;
    }
    const pr = this.prs.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case MessageType.AppResp:
        pr.recentActive = true;
        if (m.reject) this.handleAppendRejection(m, pr);
        else this.handleAppendSuccess(m, pr);
        return;
      case MessageType.HeartbeatResp:
        this.handleHeartbeatResponse(m, pr);
        return;
      default:
        return;
    }
  }

  private handleAppendRejection(m: Message, pr: Progress): void {
    let next = m.rejectHint;
    if (m.logTerm > 0) next = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
    if (pr.maybeDecrTo(m.index, next)) {
      if (pr.state === ProgressState.Replicate) pr.becomeProbe();
      this.maybeSendAppend(m.from, true);
    }
  }

  private handleAppendSuccess(m: Message, pr: Progress): void {
    const wasPaused = pr.isPaused();
    if (!(pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.Probe))) return;
    if (pr.state === ProgressState.Probe) pr.becomeReplicate();
    else if (pr.state === ProgressState.Snapshot && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Replicate) pr.inflights.freeLE(m.index);
    if (this.maybeCommit()) this.broadcastPending = true;
    else if (wasPaused) this.maybeSendAppend(m.from, false);
    while (this.maybeSendAppend(m.from, false)) {}
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: MessageType.TimeoutNow, to: m.from });
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirst();
    if (pr.match < this.log.lastIndex()) this.maybeSendAppend(m.from, true);
    const round = decodeRoundId(m.context);
    if (round === undefined) return;
    const released = this.readOnly.ack(round, m.from, (acks) => hasQuorum(this.membership.voters, (id) => acks.has(id)));
    for (const r of released) this.releaseRead(r.from, r.index, r.context);
  }

  /** maybeCommit advances the commit index to what a quorum matched, counting only this term's entries. */
  maybeCommit(): boolean {
    const index = committedIndex(this.membership.voters, (id) => this.prs.get(id)?.match ?? 0);
    if (index <= this.log.committed) return false;
    // Raft §5.4.2: an entry of an earlier term is committed only by committing one of this term.
    if (!this.opts.unsafe.commitPriorTermByCount && this.log.term(index) !== this.term) return false;
    this.log.commitTo(index);
    if (this.committedInCurrentTerm() && this.readsAwaitingCommit.length > 0) {
      for (const r of this.readsAwaitingCommit) this.readOnly.add(r);
      this.readsAwaitingCommit = [];
    }
    if (!this.membership.voters.has(this.id) && this.confIndex <= this.log.committed) {
      // A leader that removed or demoted itself led until that change committed (§4.2.2); now the
      // remaining voters, a majority of whom hold the change, elect a leader among themselves.
      this.broadcastPending = false;
      this.bcastAppend();
      this.becomeFollower(this.term, NO_NODE);
    }
    return true;
  }

  /** maybeSendAppend sends the next batch to `to`; it returns whether a message was sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (!pr || to === this.id || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) return this.sendSnapshot(to, pr);
    const entries =
      pr.next <= this.log.lastIndex() ? this.log.slice(pr.next, this.log.lastIndex() + 1, this.opts.messageBytesMax) : [];
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({
      type: MessageType.App,
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.log.committed,
    });
    const last = entries[entries.length - 1];
    pr.sentEntries(entries.length, last?.index ?? prevIndex, entries.reduce((n, e) => n + entryBytes(e), 0));
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const snap = this.log.snapshot;
    invariant(snap !== undefined, () => `log compacted to ${this.log.snapshotIndex()} with no snapshot to send`);
    pr.becomeSnapshot(snap.meta.index);
    this.send({ type: MessageType.Snap, to, snapshot: snap });
    return true;
  }

  /** bcastAppend sends appends (empty ones too, to carry the commit index) to every follower. */
  bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.maybeSendAppend(id, true);
  }

  private bcastHeartbeat(context: Uint8Array | undefined): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      this.send({ type: MessageType.Heartbeat, to: id, commit: Math.min(pr.match, this.log.committed), context });
    }
  }

  private appendEntries(items: readonly { kind: Entry["kind"]; data: Uint8Array }[]): ProposalRef[] {
    let index = this.log.lastIndex();
    const entries: Entry[] = items.map((it) => ({ term: this.term, index: ++index, kind: it.kind, data: it.data }));
    this.log.append(entries);
    for (const e of entries) this.uncommittedBytes += e.data.length;
    if (entries.some((e) => e.kind === EntryKind.ConfChange)) this.recomputeMembership();
    this.broadcastPending = true;
    return entries.map((e) => ({ index: e.index, term: e.term }));
  }

  // ---------------------------------------------------------------- proposals

  /** propose appends entries to a leader's log; they are sent with the next ready. */
  propose(datas: readonly Uint8Array[]): ProposalRef[] {
    this.checkCanPropose();
    const bytes = datas.reduce((n, d) => n + d.length, 0);
    // An empty log tail always takes one proposal, so a single large entry is never stuck.
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.opts.uncommittedBytesMax) {
      throw new UncommittedLimitError(this.uncommittedBytes, this.opts.uncommittedBytesMax);
    }
    return this.appendEntries(datas.map((data) => ({ kind: EntryKind.Normal, data })));
  }

  private checkCanPropose(): void {
    if (this.role !== Role.Leader) throw new NotLeaderError(this.lead);
    if (this.leadTransferee !== NO_NODE) {
      throw new ProposalDroppedError(`leadership transfer to ${this.leadTransferee} is pending`);
    }
  }

  /** proposeConfChange proposes one single-server membership change. */
  proposeConfChange(cc: ConfChange): ProposalRef {
    this.checkCanPropose();
    if (!this.committedInCurrentTerm()) {
      throw new ConfChangeRejectedError("the leader has not yet committed an entry of its term");
    }
    if (this.confIndex > this.log.committed) {
      throw new ConfChangeRejectedError(`the change at index ${this.confIndex} is not yet committed`);
    }
    this.membership.validate(cc);
    const [ref] = this.appendEntries([{ kind: EntryKind.ConfChange, data: encodeConfChange(cc) }]);
    invariant(ref !== undefined, "no entry appended");
    return ref;
  }

  /** confStateAt returns the configuration in force at index (for a snapshot taken there). */
  confStateAt(index: LogIndex): Membership {
    const m = new Membership(this.log.snapshotConf());
    for (let i = this.log.firstIndex(); i <= index; i++) {
      const e = this.log.entry(i);
      if (e?.kind === EntryKind.ConfChange) m.apply(decodeConfChange(e.data));
    }
    return m;
  }

  /**
   * recomputeMembership derives the configuration from the snapshot's and every change in the log,
   * and brings the progress map in line with it.
   */
  private recomputeMembership(): void {
    this.membership = this.confStateAt(this.log.lastIndex());
    this.confIndex = this.log.snapshotIndex();
    for (let i = this.log.lastIndex(); i >= this.log.firstIndex(); i--) {
      if (this.log.entry(i)?.kind === EntryKind.ConfChange) {
        this.confIndex = i;
        break;
      }
    }
    this.previousVoters = this.confStateAt(this.confIndex - 1).voters;
    for (const id of [...this.prs.keys()]) if (!this.membership.has(id)) this.prs.delete(id);
    for (const id of this.membership.members()) {
      const pr = this.prs.get(id);
      if (!pr) this.prs.set(id, this.newProgress(id));
      else pr.isLearner = this.membership.learners.has(id);
    }
    if (this.leadTransferee !== NO_NODE && !this.membership.voters.has(this.leadTransferee)) {
      this.leadTransferee = NO_NODE;
    }
  }

  /** releaseUncommitted forgets applied entries' bytes from the uncommitted tail. */
  releaseUncommitted(entries: readonly Entry[]): void {
    if (this.role !== Role.Leader) return;
    for (const e of entries) if (e.term === this.term) this.uncommittedBytes -= e.data.length;
    if (this.uncommittedBytes < 0) this.uncommittedBytes = 0;
  }

  // ---------------------------------------------------------------- reads

  /**
   * readIndex starts a linearizable read; its ReadState comes out of a later ready. At the
   * pendingReadsMax limit a leader refuses the read: its own with ReadLimitError, a follower's with
   * a rejected ReadIndexResp, never by throwing inside step().
   */
  readIndex(req: ReadRequest): void {
    if (this.role !== Role.Leader) {
      if (this.lead === NO_NODE) throw new NotLeaderError(NO_NODE);
      this.send({ type: MessageType.ReadIndex, to: this.lead, context: req.context });
      return;
    }
    if (this.readOnly.size() + this.readsAwaitingCommit.length >= this.opts.pendingReadsMax) {
      if (req.from === this.id) throw new ReadLimitError(this.opts.pendingReadsMax);
      this.rejectRead(req, ReadRejectReason.Limit);
      return;
    }
    const read: PendingRead = { ...req, tick: this.ticks };
    // Until this leader commits an entry of its term, its commit index may be behind the cluster's.
    if (!this.committedInCurrentTerm()) this.readsAwaitingCommit.push(read);
    else this.readOnly.add(read);
  }

  /** rejectRead refuses a read: this node's own through readRejects, a follower's by message. */
  private rejectRead(r: ReadRequest, reason: ReadRejectReason): void {
    if (r.from === this.id) this.readRejects.push({ context: r.context, reason });
    else this.send({ type: MessageType.ReadIndexResp, to: r.from, reject: true, context: r.context, readReject: reason });
  }

  /**
   * expireReads refuses the reads held longer than pendingReadTicksMax: a round whose
   * acknowledgements were lost, or a new leader that cannot commit, must not keep them forever.
   */
  private expireReads(): void {
    const before = this.ticks - this.opts.pendingReadTicksMax;
    let n = 0;
    while (n < this.readsAwaitingCommit.length && (this.readsAwaitingCommit[n] as PendingRead).tick < before) n++;
    const expired = [...this.readsAwaitingCommit.splice(0, n), ...this.readOnly.expire(before)];
    for (const r of expired) this.rejectRead(r, ReadRejectReason.Expired);
  }

  private releaseRead(from: NodeId, index: LogIndex, context: Uint8Array): void {
    if (from === this.id) this.readStates.push({ index, context });
    else this.send({ type: MessageType.ReadIndexResp, to: from, index, context });
  }

  // ---------------------------------------------------------------- transfer

  /** transferLeadership hands leadership to a voter once it has caught up. */
  transferLeadership(to: NodeId): void {
    if (this.role !== Role.Leader) throw new NotLeaderError(this.lead);
    if (to === this.id) return;
    if (!this.membership.voters.has(to)) throw new TransferRejectedError(`${to} is not a voter`);
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    // The transfer is abandoned if it does not finish within one election timeout from now. It has
    // its own counter so that starting transfers can never postpone the check-quorum round.
    this.transferElapsed = 0;
    const pr = this.prs.get(to);
    if (pr && pr.match === this.log.lastIndex()) this.send({ type: MessageType.TimeoutNow, to });
    else this.maybeSendAppend(to, true);
  }

  // ---------------------------------------------------------------- flush and output

  /** flush sends what was deferred to the ready boundary: batched appends and the next read round. */
  flush(): void {
    if (this.role !== Role.Leader) return;
    if (this.broadcastPending) {
      this.broadcastPending = false;
      this.bcastAppend();
    }
    if (this.readOnly.roundDue(this.ticks, this.opts.heartbeatTick)) {
      const id = this.readOnly.startRound(this.log.committed, this.id, this.ticks);
      const alone = hasQuorum(this.membership.voters, (v) => v === this.id);
      if (alone || this.opts.unsafe.readWithoutHeartbeat) {
        for (const r of this.readOnly.releaseThrough(id)) this.releaseRead(r.from, r.index, r.context);
      } else {
        this.bcastHeartbeat(encodeRoundId(id));
      }
    }
  }

  /** hasPendingFlush says whether flush() would produce output. */
  hasPendingFlush(): boolean {
    return this.role === Role.Leader && (this.broadcastPending || this.readOnly.roundDue(this.ticks, this.opts.heartbeatTick));
  }

  /** onPersisted records that entries up to index are durable on this node. */
  onPersisted(): void {
    if (this.role !== Role.Leader) return;
    const self = this.prs.get(this.id);
    if (self?.maybeUpdate(this.log.stableIndex()) && this.maybeCommit()) this.broadcastPending = true;
  }

  private send(fields: MessageFields): void {
    this.msgs.push({
      from: this.id,
      term: fields.term ?? this.term,
      logTerm: fields.logTerm ?? 0,
      index: fields.index ?? 0,
      entries: fields.entries ?? [],
      commit: fields.commit ?? 0,
      reject: fields.reject ?? false,
      rejectHint: fields.rejectHint ?? 0,
      snapshot: fields.snapshot,
      context: fields.context,
      ...(fields.readReject !== undefined ? { readReject: fields.readReject } : {}),
      type: fields.type,
      to: fields.to,
    });
  }
}

/** appendShapeError says why an append's entries cannot be a piece of a leader's log, or undefined. */
function appendShapeError(m: Message): string | undefined {
  if (m.logTerm > m.term) return `its previous entry has term ${m.logTerm}, later than the message's ${m.term}`;
  let prevTerm = m.logTerm;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i] as Entry;
    if (e.index !== m.index + 1 + i) return `entry ${i} has index ${e.index}, not ${m.index + 1 + i}`;
    if (e.term < prevTerm || e.term > m.term) return `entry ${e.index} has term ${e.term}, outside ${prevTerm}..${m.term}`;
    prevTerm = e.term;
  }
  return undefined;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
