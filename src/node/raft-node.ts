import { randomBytes, randomInt } from "node:crypto";
import {
  type ConfChange,
  type Entry,
  type LogIndex,
  ImpossibleMessageError,
  type Message,
  NO_NODE,
  type NodeId,
  PENDING_READS_MAX,
  type PersistedState,
  type ProposalRef,
  type RaftOptions,
  type RandomSource,
  RawNode,
  ReadLimitError,
  ReadRejectReason,
  type Ready,
  SNAPSHOT_DATA_RELEASED,
  SnapshotRejectedError,
  Role,
  type Status,
  type Snapshot,
  type SnapshotMeta,
  splitForEarlySend,
  type Term,
} from "../raft/index.js";
import { type RaftLogStore, SnapshotOutOfDateError, StorageClosedError, snapshotByteLength } from "../storage/index.js";
import {
  NodeStoppedError,
  ProposalLostError,
  ProposalOutcomeUnknownError,
  ReadCancelledError,
  ReadRejectedError,
  ReadTimeoutError,
  RemovedFromClusterError,
} from "./errors.js";
import { encodeAppCommand } from "./cluster-state-machine.js";
import { NodeEventEmitter } from "./events.js";
import { type Cancel, type HostScheduler, NODE_SCHEDULER } from "./scheduler.js";
import { joinChunks, type SnapshotJob, type StateMachine, wholeSnapshot } from "./state-machine.js";
import type { Logger } from "../common/logger.js";

/** SNAPSHOT_EVERY_ENTRIES_DEFAULT: a local snapshot every 10,000 applied entries bounds the in-memory log and restart replay. */
export const SNAPSHOT_EVERY_ENTRIES_DEFAULT = 10_000;

/**
 * snapshotDue tells whether a member whose last snapshot is at `last` should snapshot at `applied`:
 * once the applied index has reached a boundary phase + k·every that lies at least half an interval
 * past `last`. A snapshot installed from the leader (or taken before a membership change moved the
 * phase) is off the member's phase; the next one then waits for a boundary far enough from it, so
 * snapshots stay on the phase. With phase 0 this is every multiple of `every`, as before the stagger.
 */
export function snapshotDue(applied: LogIndex, last: LogIndex, every: number, phase: number): boolean {
  const boundary = (i: number) => Math.floor((i - phase) / every);
  return boundary(applied) > boundary(last + Math.ceil(every / 2) - 1);
}

/** READ_TIMEOUT_MS_DEFAULT bounds how long a linearizable read waits for its read index. */
export const READ_TIMEOUT_MS_DEFAULT = 5_000;

/**
 * READS_ANSWERED_PER_TASK bounds how many waiting reads are answered in one task; the rest are
 * answered on the next ones. A heartbeat round confirms every read that waited for it at once, and
 * answering thousands of them (each a state-machine read and a gRPC reply, ~0.2 ms) in one go held
 * a leader's event loop for over a second: no tick, so no heartbeat, and its followers elected
 * another leader (test/bench/raft/burst.ts). Between two slices the timers and peer I/O run.
 */
export const READS_ANSWERED_PER_TASK = 256;

/** NodeLogger is the part of the project's Logger (src/common/logger.ts) the node uses. */
export type NodeLogger = Pick<Logger, "info" | "warn" | "error" | "debug">;

/** MessageSink sends messages to peers; it must never block or throw for network reasons. */
export interface MessageSink {
  send(messages: readonly Message[]): void;
}

/** RaftNodeOptions configures one node's host loop. */
export interface RaftNodeOptions {
  readonly id: NodeId;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly store: RaftLogStore;
  /** state is what the store loaded: the core starts from it. */
  readonly state: PersistedState;
  readonly machine: StateMachine;
  readonly sink: MessageSink;
  readonly logger: NodeLogger;
  readonly snapshotEveryEntries?: number;
  /** pendingReadsMax bounds the reads this node waits on and the reads its core holds as leader (default: PENDING_READS_MAX). */
  readonly pendingReadsMax?: number;
  /** scheduler runs the tick timer, read deadlines and the pump (default: Node's timers). */
  readonly scheduler?: HostScheduler;
  /** random seeds the core's election jitter (default: the OS's, since production nodes need no replay). */
  readonly random?: RandomSource;
  /** readContext makes the unique context of one read (default: 12 random bytes from the OS). */
  readonly readContext?: () => Uint8Array;
  /** core passes further options to the Raft core (limits, test switches); the node sets the rest. */
  readonly core?: Omit<Partial<RaftOptions>, "id" | "electionTick" | "heartbeatTick" | "random" | "pendingReadsMax">;
  /**
   * releaseSnapshotChunks, when given, is handed a local snapshot's chunks once the store has
   * written them (or refused them) and no send holds them, to free their memory at once (the agent
   * passes releaseBuffers). Only for a store that keeps no view on them: the durable store writes
   * them to a file (the in-memory store copies them too, but the simulator has no use for it).
   */
  readonly releaseSnapshotChunks?: (chunks: readonly Uint8Array[]) => void;
  /**
   * peerSnapshotReadMax, when given, is the newest snapshot format a member reads (the agent: what
   * the member said on the peer call it has open now, else what the builds before that claim read).
   * The node then writes its snapshots in a format every other member reads (StateMachine.beginSnapshot's
   * readMax; what they last said, with peerSnapshotReadMaxLastSaid) and never sends a member a
   * snapshot in a newer format than it reads (StateMachine.snapshotFormat): it takes one the member
   * reads instead. This is what keeps a rolling upgrade going.
   */
  readonly peerSnapshotReadMax?: (peer: NodeId) => number;
  /**
   * peerSnapshotReadMaxLastSaid, with peerSnapshotReadMax, is what a member said it reads on its
   * latest Raft call even when that call has ended (the agent: since this process started; else what
   * builds before the claim read). It equals peerSnapshotReadMax while the member has a call open.
   * A member that is down or reconnecting is not taken for an older build meanwhile: the node goes
   * on writing the format it last said it reads, and holds back (without replacing) a snapshot of
   * that format until the member says again on a new call what its build reads. Without it the
   * node writes the oldest format while any member is down, and a member brought back through a
   * snapshot installs that.
   */
  readonly peerSnapshotReadMaxLastSaid?: (peer: NodeId) => number;
}

interface PendingProposal {
  readonly term: number;
  resolve(result: unknown): void;
  reject(err: Error): void;
}

interface PendingRead {
  index: LogIndex | undefined;
  /** askedLeader is the leader the core sent the request to (this node itself when it leads). */
  readonly askedLeader: NodeId;
  readonly cancelTimer: Cancel;
  /** unlisten stops listening to the caller's abort signal. */
  readonly unlisten: () => void;
  resolve(index: LogIndex): void;
  reject(err: Error): void;
}

/** cryptoRandom seeds the core's election jitter from the OS, since production nodes need no replay. */
const cryptoRandom: RandomSource = { nextInt: (maxExclusive: number) => randomInt(maxExclusive) };

/** cryptoReadContext makes a read's context from the OS's randomness: unique across restarts without any state. */
const cryptoReadContext = (): Uint8Array => randomBytes(12);

/**
 * RaftNode is the host loop around one Raft core: a tick timer; a single pump that takes each
 * Ready, persists it in one synced batch, then sends its messages, then applies committed entries
 * to the state machine, then calls advance. Proposals resolve when their entry is applied, matched
 * by (index, term); reads resolve once the read index is applied. It reports what happens through
 * `events` (see events.ts). Time, randomness and storage are injected, so the simulator runs this
 * same loop on virtual time (test/sim).
 */
export class RaftNode {
  private readonly raw: RawNode;
  private readonly proposals = new Map<LogIndex, PendingProposal>();
  private readonly reads = new Map<string, PendingRead>();
  /** confirmed holds the keys of reads whose read index is known, oldest first (releaseReads walks these only). */
  private confirmed: string[] = [];
  /** confirmedHead: confirmed[0 … confirmedHead) were looked at already (answered or gone). */
  private confirmedHead = 0;
  /** answering is the timer that answers the next slice of applied reads (READS_ANSWERED_PER_TASK). */
  private answering: Cancel | undefined;
  private cancelTicks: Cancel | undefined;
  /** events is where observers hear of role and leader changes, applied entries, snapshots and failure. */
  readonly events = new NodeEventEmitter();
  private readonly scheduler: HostScheduler;
  private readonly readContext: () => Uint8Array;
  private pumping = false;
  private pumpAgain = false;
  private stopped = false;
  private lastSnapshotIndex: LogIndex;
  /**
   * lastSnapshotReadMax is the readMax the current snapshot was written for, when this node wrote
   * it (undefined: loaded at start or installed from the leader, format unknown to this field).
   */
  private lastSnapshotReadMax: number | undefined;
  /** persistedTerm is the term in the durable hard state (see splitForEarlySend). */
  private persistedTerm: Term;
  private failure: Error | undefined;
  private readonly snapshotEvery: number;
  /** snapshotJob is the local snapshot being written a slice at a time, at `index`, while applies go on. */
  private snapshotJob: { readonly index: LogIndex; readonly readMax: number | undefined; readonly job: SnapshotJob } | undefined;
  /** snapshotDone is a written local snapshot (its chunks, in order, never joined) waiting for the pump to hand it to the core and the store. */
  private snapshotDone: { readonly index: LogIndex; readonly readMax: number | undefined; readonly chunks: readonly Uint8Array[] } | undefined;
  /**
   * snapshotStoring is the local snapshot the store is writing: the core has compacted to it and
   * holds only its metadata, so a send of it before its file exists is served from these chunks.
   */
  private snapshotStoring: { readonly key: string; readonly meta: SnapshotMeta; readonly chunks: readonly Uint8Array[]; readonly bytes: number } | undefined;
  /** lastSnapshotRead is the last snapshot read back to send, while something (a send in flight) still holds it. */
  private lastSnapshotRead: { readonly key: string; readonly ref: WeakRef<Snapshot> } | undefined;
  /**
   * replaceSnapshot: the current snapshot cannot be sent (it could not be read back, or a member
   * cannot read its format); take a new one at the next chance.
   */
  private replaceSnapshot = false;
  /** formatRefusals are the sends refused for their format, "peer@index", each logged once. */
  private readonly formatRefusals = new Set<string>();
  /** snapshotReads are the store reads of snapshots to send under way, by "term/index" (sendStoredSnapshot). */
  private readonly snapshotReads = new Map<string, Promise<Snapshot | undefined>>();
  /** storing is the store's compaction to the last local snapshot, while it runs (finishSnapshot). */
  private storing: Promise<void> | undefined;
  /**
   * role is the role the last Ready reported. The core changes role inside step (a leader that
   * removed itself steps down the moment the removal commits), before the host takes the Ready
   * that reports it, so the role before a change must be remembered here, not read from the core.
   */
  private role: Role;
  private readonly pendingReadsMax: number;
  /** knownLeader is the leader of the last soft state seen, so a change of leader is noticed once. */
  private knownLeader: NodeId = NO_NODE;

  /** opts are the options but the initial state: kept, it would hold a restart's snapshot bytes for the node's life. */
  private readonly opts: Omit<RaftNodeOptions, "state">;

  constructor(options: RaftNodeOptions) {
    const { state: _state, ...opts } = options;
    this.opts = opts;
    const raftOptions: RaftOptions = {
      ...opts.core,
      id: opts.id,
      electionTick: opts.electionTicks,
      heartbeatTick: opts.heartbeatTicks,
      random: opts.random ?? cryptoRandom,
      pendingReadsMax: opts.pendingReadsMax,
      // A leader holds a read no longer than a reader waits for it; older ones have no caller left.
      pendingReadTicksMax: Math.ceil(READ_TIMEOUT_MS_DEFAULT / opts.tickMs),
    };
    this.raw = new RawNode(raftOptions, options.state);
    const snap = options.state.snapshot;
    if (snap && snap.data.length > 0) opts.machine.restore(snap.data);
    // The store it came from keeps it: the core need not hold a second copy (see releaseSnapshotData).
    if (snap) this.raw.releaseSnapshotData(snap.meta.index);
    this.lastSnapshotIndex = snap?.meta.index ?? 0;
    this.persistedTerm = options.state.hardState.term;
    this.snapshotEvery = opts.snapshotEveryEntries ?? SNAPSHOT_EVERY_ENTRIES_DEFAULT;
    this.role = this.raw.role();
    this.pendingReadsMax = opts.pendingReadsMax ?? PENDING_READS_MAX;
    this.scheduler = opts.scheduler ?? NODE_SCHEDULER;
    this.readContext = opts.readContext ?? cryptoReadContext;
  }

  /** start begins ticking. */
  start(): void {
    if (this.stopped || this.cancelTicks) return;
    this.cancelTicks = this.scheduler.every(this.opts.tickMs, () => {
      try {
        this.raw.tick();
      } catch (err) {
        this.fail(err);
        return;
      }
      this.schedule();
    });
    this.schedule();
  }

  /** status describes the core now. */
  status(): Status {
    return this.raw.status();
  }

  /**
   * appliedIndex is the state machine's applied index: what reads and status report. The core's
   * status().applied jumps to a leader's snapshot index as soon as the snapshot is stepped in,
   * while the machine installs it slice by slice for a second or more after that.
   */
  appliedIndex(): LogIndex {
    return this.opts.machine.applied;
  }

  /** snapshotIndex is the index of the latest snapshot this node holds (0 when none). */
  snapshotIndex(): LogIndex {
    return this.lastSnapshotIndex;
  }

  /**
   * snapshotBytesHeld is the size of the snapshot bytes this node holds in memory: a snapshot from
   * the leader the core has not yet released, or a local one whose file is still being written (0
   * once the store keeps them; see releaseSnapshotData and finishSnapshot).
   */
  snapshotBytesHeld(): number {
    return this.raw.snapshotDataBytes() + (this.snapshotStoring?.bytes ?? 0);
  }

  /** logEntry is the entry at index in the core's log, if it holds it (for checks and tools). */
  logEntry(index: LogIndex): Entry | undefined {
    return this.raw.logEntry(index);
  }

  /** progress is the leader's view of each member, with whether the leader heard from it lately (empty on a follower). */
  progress() {
    return this.raw.progress();
  }

  /**
   * step hands a message from a peer to the core. A message no correct peer sends (the core's
   * ImpossibleMessageError) is dropped and returned, so the transport can close that peer's stream;
   * this node carries on.
   */
  step(m: Message): ImpossibleMessageError | undefined {
    if (this.stopped) return undefined;
    try {
      this.raw.step(m);
    } catch (err) {
      if (err instanceof ImpossibleMessageError) return err;
      // A broken invariant (e.g. a leader's commit index beyond this node's log, which means this
      // node lost data it had acknowledged) stops the node; carrying on would risk safety.
      this.fail(err);
      return undefined;
    }
    this.schedule();
    return undefined;
  }

  /**
   * peerDisconnected hands the core the news that the connection from a peer ended (closed or
   * reset: the transport saw it, no timeout involved). A follower whose leader that was campaigns
   * early (RawNode.peerDisconnected); for anyone else it changes nothing.
   */
  peerDisconnected(id: NodeId): void {
    if (this.stopped) return;
    const wasLeader = this.raw.leader() === id;
    this.raw.peerDisconnected(id);
    // Logged only for the leader: that is when this node campaigns early, and when a failover is slow
    // this line says whether the notice came and when.
    if (wasLeader) this.opts.logger.info({ peer: id, campaigns: this.raw.leader() !== id }, "the leader's connection ended");
    this.schedule();
  }

  /** propose replicates data and resolves with the state machine's result once applied here. */
  propose(data: Uint8Array): Promise<unknown> {
    return this.track(this.raw.propose([data])[0]);
  }

  /**
   * proposeApp replicates an application command, wrapped in the app-command envelope the
   * ClusterStateMachine routes to the application (so callers never build envelopes); it resolves
   * with the application's result once applied here. Only for nodes whose machine is a ClusterStateMachine.
   */
  proposeApp(data: Uint8Array): Promise<unknown> {
    return this.propose(encodeAppCommand(data));
  }

  /** proposeAppNoWait is proposeNoWait for an application command (negative controls only). */
  proposeAppNoWait(data: Uint8Array): { index: LogIndex } {
    return this.proposeNoWait(encodeAppCommand(data));
  }

  /** proposeNoWait appends data on the leader and returns its index without waiting for commit (negative controls only). */
  proposeNoWait(data: Uint8Array): { index: LogIndex } {
    this.throwIfStopped();
    const ref = this.raw.propose([data])[0];
    if (!ref) throw new Error("no proposal reference");
    this.schedule();
    return { index: ref.index };
  }

  /** proposeConfChange replicates one membership change and resolves once it is applied here. */
  proposeConfChange(cc: ConfChange): Promise<unknown> {
    return this.track(this.raw.proposeConfChange(cc));
  }

  /** transferLeadership asks this leader to hand over to `to`. */
  transferLeadership(to: NodeId): void {
    this.raw.transferLeadership(to);
    this.schedule();
  }

  /** campaign starts an election at once (used by tests and `raftmesh transfer-leader`). */
  campaign(): void {
    this.raw.campaign();
    this.schedule();
  }

  private track(ref: ProposalRef | undefined): Promise<unknown> {
    if (!ref) return Promise.reject(new Error("no proposal reference"));
    this.throwIfStopped();
    const p = new Promise<unknown>((resolve, reject) => {
      this.proposals.set(ref.index, { term: ref.term, resolve, reject });
    });
    this.schedule();
    return p;
  }

  /**
   * readIndex resolves with an index such that local state at or past it reflects every write
   * acknowledged before the call (ReadIndex, Raft dissertation §6.4); it waits until it is applied.
   * It fails with ReadLimitError when pendingReadsMax reads already wait here or on the leader, with
   * ReadRejectedError when the leader refuses the read, and with ReadCancelledError once `signal`
   * aborts: a read whose caller is gone is forgotten at once.
   */
  readIndex(timeoutMs = READ_TIMEOUT_MS_DEFAULT, signal?: AbortSignal): Promise<LogIndex> {
    this.throwIfStopped();
    if (this.reads.size >= this.pendingReadsMax) throw new ReadLimitError(this.pendingReadsMax);
    if (signal?.aborted) throw new ReadCancelledError();
    const ctx = this.readContext();
    const key = Buffer.from(ctx).toString("hex");
    const p = new Promise<LogIndex>((resolve, reject) => {
      const cancelTimer = this.scheduler.after(timeoutMs, () => this.finishRead(key, new ReadTimeoutError(timeoutMs, this.raw.leader())));
      const onAbort = () => this.finishRead(key, new ReadCancelledError());
      signal?.addEventListener("abort", onAbort, { once: true });
      const unlisten = () => signal?.removeEventListener("abort", onAbort);
      this.reads.set(key, { index: undefined, askedLeader: this.raw.leader(), cancelTimer, unlisten, resolve, reject });
    });
    try {
      this.raw.readIndex(ctx);
    } catch (err) {
      this.finishRead(key, undefined);
      throw err;
    }
    this.schedule();
    return p;
  }

  /** finishRead forgets a pending read and fails it with err (or only forgets it, when err is undefined). */
  private finishRead(key: string, err: Error | undefined): void {
    const r = this.reads.get(key);
    if (!r) return;
    this.reads.delete(key);
    r.cancelTimer();
    r.unlisten();
    if (err) r.reject(err);
  }

  private throwIfStopped(): void {
    if (this.failure) throw this.failure;
    if (this.stopped) throw new NodeStoppedError();
  }

  /**
   * send hands messages to the sink, but a Snap message whose bytes the core released
   * (releaseSnapshotData) is first filled from the store (sendStoredSnapshot).
   */
  private send(messages: readonly Message[]): void {
    if (!messages.some((m) => m.snapshot !== undefined)) {
      this.opts.sink.send(messages);
      return;
    }
    const ready = messages.filter((m) => m.snapshot === undefined || (!carriesReleasedSnapshot(m) && this.readableBy(m.to, m.snapshot)));
    if (ready.length > 0) this.opts.sink.send(ready);
    for (const m of messages) if (carriesReleasedSnapshot(m)) void this.sendStoredSnapshot(m);
  }

  /**
   * readableBy says whether member `to` reads the snapshot's format. When it does not, the send is
   * dropped (as a network may drop it: the leader retries after its snapshot retry ticks) and the
   * node takes a new snapshot at its next chance, which it writes in a format every member reads
   * (maybeSnapshot), so the retry sends that one. A snapshot in a format the member last said it
   * reads, while it has no call open to say so now, is held back: dropped, not replaced, logged once.
   */
  private readableBy(to: NodeId, snapshot: Snapshot): boolean {
    const readMax = this.opts.peerSnapshotReadMax?.(to);
    const formatOf = this.opts.machine.snapshotFormat;
    if (readMax === undefined || formatOf === undefined) return true;
    let format: number | undefined;
    try {
      format = formatOf.call(this.opts.machine, snapshot.data);
    } catch {
      // Bytes whose format cannot be told are sent as before: the receiver checks them and refuses damage.
      return true;
    }
    if (format === undefined || format <= readMax) return true;
    // Not connected now, and it read this format when it last said: it may be back on another build,
    // so nothing is sent until it says again, and nothing is replaced meanwhile (the core retries).
    const lastSaid = this.opts.peerSnapshotReadMaxLastSaid?.(to) ?? readMax;
    const key = `${to}@${snapshot.meta.index}`;
    if (format <= lastSaid) {
      if (!this.formatRefusals.has(`held ${key}`)) {
        this.formatRefusals.add(`held ${key}`);
        this.opts.logger.info({ to, index: snapshot.meta.index, format, lastSaid }, "holding back a snapshot until this member says again which formats it reads (no Raft call of it is open)");
      }
      return false;
    }
    // Written for readers of readMax or older already and still too new: no format this machine
    // writes is one the member reads. Taking more snapshots would not help (one per entry, for ever).
    const hopeless = snapshot.meta.index === this.lastSnapshotIndex && this.lastSnapshotReadMax !== undefined && this.lastSnapshotReadMax <= readMax;
    if (!this.formatRefusals.has(key)) {
      this.formatRefusals.add(key);
      const fields = { to, index: snapshot.meta.index, format, readMax };
      if (hopeless) this.opts.logger.error(fields, "not sending a snapshot in a format this member cannot read; this node writes none it reads");
      else this.opts.logger.warn(fields, "not sending a snapshot in a format this member cannot read; taking one it reads to send instead");
    }
    if (!hopeless) this.replaceSnapshotSoon(snapshot.meta.index);
    return false;
  }

  /**
   * sendStoredSnapshot reads the snapshot a Snap message names back from the store and sends it.
   * Concurrent sends of one snapshot share one read, and a snapshot still held by a send in flight
   * (the transport streams it) is reused rather than read again. When the store no longer has it (a
   * newer one replaced it meanwhile) or cannot read it, the message is dropped, as a network may
   * drop it: the leader resends after its snapshot retry ticks. If it is this node's current
   * snapshot that cannot be read (a damaged file), resending it would fail forever: the node takes
   * a new snapshot as soon as it has applied past it (maybeSnapshot), and the retry sends that one.
   * A leader that lost its term meanwhile still sends it: a Snap from an old term is refused.
   */
  private async sendStoredSnapshot(m: Message): Promise<void> {
    const meta = (m.snapshot as Snapshot).meta;
    let stored: Snapshot | undefined;
    try {
      stored = await this.readBack(meta);
    } catch (err) {
      if (!this.stopped) this.opts.logger.warn({ err, to: m.to, index: meta.index }, "could not read the snapshot to send back from the store; the leader retries");
      this.replaceSnapshotSoon(meta.index);
      return;
    }
    if (this.stopped) return;
    if (stored === undefined) {
      if (meta.index === this.lastSnapshotIndex) {
        this.opts.logger.error({ to: m.to, index: meta.index }, "this node's current snapshot cannot be read back from the store; taking a new one to send instead");
        this.replaceSnapshotSoon(meta.index);
      } else this.opts.logger.info({ to: m.to, index: meta.index }, "the snapshot to send is no longer stored; the leader sends its newest when it retries");
      return;
    }
    if (!this.readableBy(m.to, stored)) return;
    try {
      this.opts.sink.send([{ ...m, snapshot: stored }]);
    } catch (err) {
      // As in the pump: a sink that throws is a host bug, which stops the node rather than escape as an unhandled rejection.
      this.fail(err);
    }
  }

  /** readBack is the stored snapshot of meta: the one a send in flight still holds, a read under way, or a new read. */
  private async readBack(meta: SnapshotMeta): Promise<Snapshot | undefined> {
    const key = snapshotKey(meta);
    const held = this.lastSnapshotRead?.key === key ? this.lastSnapshotRead.ref.deref() : undefined;
    if (held !== undefined) return held;
    const storing = this.snapshotStoring;
    if (storing?.key === key) {
      // Its file is still being written: joined here, for this rare send only (a follower that fell
      // behind the log in the moments after a snapshot), and kept for the sends that follow. Always
      // a copy (joinChunks returns a lone chunk itself, and a Buffer's own slice() is a view): the
      // chunks are released once written.
      const whole: Snapshot = { meta: storing.meta, data: storing.chunks.length === 1 ? Uint8Array.prototype.slice.call(storing.chunks[0] as Uint8Array) : joinChunks(storing.chunks) };
      this.lastSnapshotRead = { key, ref: new WeakRef(whole) };
      return whole;
    }
    let loading = this.snapshotReads.get(key);
    if (loading === undefined) {
      // Through a promise chain, so a store that throws rather than rejects is handled alike.
      loading = Promise.resolve(meta).then((x) => this.opts.store.loadSnapshot(x));
      this.snapshotReads.set(key, loading);
      void loading.then(
        (stored) => {
          this.snapshotReads.delete(key);
          if (stored !== undefined) this.lastSnapshotRead = { key, ref: new WeakRef(stored) };
        },
        () => this.snapshotReads.delete(key),
      );
    }
    return loading;
  }

  /**
   * replaceSnapshotSoon asks for a new local snapshot when the current one (at index) cannot be
   * sent. The new one needs an entry past the current (the store refuses two at one index): a
   * leader whose log holds nothing past it (a quiet cluster) appends an empty entry, which every
   * machine skips, rather than leave the member waiting for a client's write. Once appended, the
   * log holds something past the snapshot, so the core's retries append no more.
   */
  private replaceSnapshotSoon(index: LogIndex): void {
    if (index !== this.lastSnapshotIndex || this.stopped) return;
    this.replaceSnapshot = true;
    if (this.isLeader() && this.raw.status().lastIndex <= index) {
      try {
        this.raw.propose([EMPTY_ENTRY]);
      } catch {
        // Not leader any more, or proposals refused: the next leader's own entries do the same.
      }
    }
    this.schedule();
  }

  /** schedule runs the pump soon; calls while it runs make it go round once more. */
  private schedule(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    this.scheduler.soon(() => void this.pump());
  }

  private async pump(): Promise<void> {
    try {
      do {
        this.pumpAgain = false;
        while (!this.stopped && this.raw.hasReady()) await this.handleReady(this.raw.ready());
        if (!this.stopped && this.snapshotDone && this.storing === undefined) this.finishSnapshot();
      } while (this.pumpAgain && !this.stopped);
    } catch (err) {
      this.fail(err);
    } finally {
      this.pumping = false;
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    const prevRole = this.role;
    if (rd.softState) this.role = rd.softState.role;
    // A leader's appends go out while its own write is under way; everything else waits for it.
    const { early, late } = splitForEarlySend(rd, this.persistedTerm);
    if (early.length > 0) this.send(early);
    const entries = this.entriesAfterSnapshot(rd.entries);
    const mustSave = rd.hardState !== undefined || entries.length > 0 || rd.snapshot !== undefined;
    const saving = mustSave ? this.opts.store.save({ hardState: rd.hardState, entries, snapshot: rd.snapshot }) : undefined;
    if (rd.snapshot) {
      // A snapshot from the leader replaces the state machine. The machine restores it while the
      // store writes it (a restore is CPU on this thread, a write is the store's I/O: ~0.3 s of the
      // two at 100,000 instances): nothing this node says depends on it before `saving` is done —
      // the acknowledgement is among the late messages — and a crash before then restarts from
      // the store, with nothing acknowledged. A failed write stops the node (the pump's catch),
      // which ends the restore at its next slice.
      const [, installed] = await Promise.all([saving, this.install(rd.snapshot.data)]);
      if (this.stopped || !installed) return;
      this.lastSnapshotIndex = rd.snapshot.meta.index;
      this.lastSnapshotReadMax = undefined;
      this.replaceSnapshot = false;
      this.failProposalsThrough(rd.snapshot.meta.index);
      this.opts.logger.info({ index: rd.snapshot.meta.index, format: this.opts.machine.snapshotFormat?.(rd.snapshot.data) }, "installed snapshot from leader");
      this.events.emit("snapshotInstalled", { meta: rd.snapshot.meta, bytes: rd.snapshot.data.length });
    }
    // Committed entries are already durable on a majority (a leader counts its own copy only once
    // its write finished), so applying them — and answering their clients — need not wait for this
    // ready's write of newer entries and hard state. The state machine lives in memory: a crash
    // loses it either way, and restart rebuilds it from the snapshot and the log.
    for (const e of rd.committedEntries) this.applyEntry(e);
    for (const rs of rd.readStates) {
      const key = Buffer.from(rs.context).toString("hex");
      const r = this.reads.get(key);
      if (r && r.index === undefined) {
        r.index = rs.index;
        this.confirmed.push(key);
      }
    }
    for (const rr of rd.readRejects) {
      this.finishRead(Buffer.from(rr.context).toString("hex"), new ReadRejectedError(rr.reason, this.raw.leader()));
    }
    let previousLeader: NodeId | undefined;
    if (rd.softState && rd.softState.lead !== this.knownLeader) {
      // Reads still waiting for a read index asked the old leader, whose answer (a refusal too) may
      // never arrive or be dropped as stale: refuse them now rather than at their deadline.
      previousLeader = this.knownLeader;
      this.knownLeader = rd.softState.lead;
      for (const [key, r] of this.reads) {
        if (r.index === undefined && r.askedLeader !== this.knownLeader) {
          this.finishRead(key, new ReadRejectedError(ReadRejectReason.NotLeader, this.knownLeader));
        }
      }
    }
    this.releaseReads();
    // Entries and hard state are durable before any message that depends on them leaves.
    await saving;
    if (rd.hardState) this.persistedTerm = rd.hardState.term;
    if (this.stopped) return;
    this.send(late);
    this.raw.advance(rd);
    // Installed and durable: the store has the bytes now, the core keeps only the metadata.
    if (rd.snapshot) this.raw.releaseSnapshotData(rd.snapshot.meta.index);
    if (rd.softState) {
      const st = this.raw.status();
      if (prevRole === Role.Leader && st.role !== Role.Leader && !st.voters.includes(st.id) && !st.learners.includes(st.id)) {
        // A leader that removed itself will not hear whether its last entries commit: say so now
        // rather than let the callers wait for their deadline.
        this.failProposals(new RemovedFromClusterError(st.id));
      }
      this.opts.logger.info({ role: st.role, term: st.term, lead: st.lead }, "raft state changed");
      const role = rd.softState.role;
      if (role !== prevRole) this.events.emit("role", { role, previous: prevRole, term: st.term, status: st });
      if (previousLeader !== undefined) this.events.emit("leader", { leader: rd.softState.lead, previous: previousLeader, term: st.term });
    }
    await this.maybeSnapshot();
  }

  /**
   * install replaces the machine's state with a snapshot's, a slice per task when the machine can
   * (RestoreJob), so a large snapshot does not hold the event loop — heartbeats and votes included —
   * for the whole of it. The pump waits here, so nothing is applied before the state is whole; peer
   * messages are stepped into the core meanwhile and their Ready comes after. False when the node
   * stopped on the way (the machine still holds its old state).
   */
  private async install(data: Uint8Array): Promise<boolean> {
    const m = this.opts.machine;
    if (!m.beginRestore) {
      m.restore(data);
      return true;
    }
    const job = m.beginRestore(data);
    while (!job.step()) {
      // A timer, not a microtask: a microtask would run before any I/O, which is the point of slicing.
      await new Promise<void>((resolve) => this.scheduler.after(0, resolve));
      if (this.stopped) return false;
    }
    return true;
  }

  /**
   * entriesAfterSnapshot drops the entries at or below this node's latest local snapshot. The core
   * hands some back when a new leader's append arrived while their first write was under way: it
   * keeps the still-unstable entries before the conflict and asks for them to be written again,
   * with the new ones. If a local snapshot was taken in between, those entries are committed and
   * inside it, and the store refuses to write below its snapshot (a node stopped on this, found by
   * the simulator running this loop).
   */
  private entriesAfterSnapshot(entries: readonly Entry[]): readonly Entry[] {
    const first = entries[0];
    if (first === undefined || first.index > this.lastSnapshotIndex) return entries;
    return entries.filter((e) => e.index > this.lastSnapshotIndex);
  }

  private applyEntry(e: Entry): void {
    if (e.index <= this.opts.machine.applied) return;
    const result = this.opts.machine.apply(e);
    this.events.emit("applied", { index: e.index, entry: e, result });
    const p = this.proposals.get(e.index);
    if (!p) return;
    this.proposals.delete(e.index);
    if (p.term === e.term) p.resolve(result);
    else p.reject(new ProposalLostError(e.index));
  }

  private failProposals(err: Error): void {
    for (const p of this.proposals.values()) p.reject(err);
    this.proposals.clear();
  }

  private failProposalsThrough(index: LogIndex): void {
    // A snapshot from the leader skips entries: whether ours were among them is unknown (an entry
    // this node proposed as leader may have been committed by the next leader, then compacted).
    for (const [i, p] of this.proposals) {
      if (i > index) continue;
      this.proposals.delete(i);
      p.reject(new ProposalOutcomeUnknownError(i));
    }
  }

  /**
   * releaseReads answers the confirmed reads whose index is applied, at most
   * READS_ANSWERED_PER_TASK now; the rest on a later task (each slice schedules the next).
   */
  private releaseReads(): void {
    if (this.confirmedHead >= this.confirmed.length || this.answering) return;
    const applied = this.opts.machine.applied;
    // keep: confirmed reads whose index is not applied yet; they are looked at again next time.
    const keep: string[] = [];
    let answered = 0;
    while (this.confirmedHead < this.confirmed.length && answered < READS_ANSWERED_PER_TASK) {
      const key = this.confirmed[this.confirmedHead++] as string;
      const r = this.reads.get(key);
      // Gone: timed out, cancelled or refused meanwhile.
      if (!r || r.index === undefined) continue;
      if (r.index > applied) {
        keep.push(key);
        continue;
      }
      this.finishRead(key, undefined);
      r.resolve(r.index);
      answered++;
    }
    const more = this.confirmedHead < this.confirmed.length;
    if (keep.length > 0 || !more) {
      this.confirmed = keep.concat(this.confirmed.slice(this.confirmedHead));
      this.confirmedHead = 0;
    }
    if (more) {
      this.answering = this.scheduler.after(0, () => {
        this.answering = undefined;
        if (!this.stopped) this.releaseReads();
      });
    }
  }

  /**
   * maybeSnapshot starts a local snapshot every snapshotEvery applied entries. The machine writes it
   * a slice at a time (SnapshotJob), each slice on its own task, so a large state never holds the
   * event loop (heartbeats, client calls) for the whole of it; the pump keeps applying meanwhile,
   * and the finished snapshot is handed to the core and the store by the pump (finishSnapshot).
   */
  private async maybeSnapshot(): Promise<void> {
    if (this.snapshotJob || this.snapshotDone) return;
    const applied = this.raw.applied();
    if (this.opts.machine.applied !== applied) return;
    // A current snapshot that cannot be sent (unreadable, or in a format a member does not read):
    // replace it as soon as there is anything past it (the store refuses a snapshot at the same index).
    const replace = this.replaceSnapshot && applied > this.lastSnapshotIndex;
    // This runs after every ready: snapshotDue is false before half an interval anyway, so the
    // phase (which reads the membership) is worked out only past that.
    if (!replace && applied - this.lastSnapshotIndex < Math.ceil(this.snapshotEvery / 2)) return;
    if (!replace && !snapshotDue(applied, this.lastSnapshotIndex, this.snapshotEvery, this.snapshotPhase())) return;
    this.replaceSnapshot = false;
    this.formatRefusals.clear();
    const m = this.opts.machine;
    const readMax = this.membersSnapshotReadMax();
    this.snapshotJob = { index: applied, readMax, job: m.beginSnapshot?.(readMax) ?? wholeSnapshot(m.snapshot(readMax)) };
    this.snapshotSlice();
  }

  /** membersSnapshotReadMax is the newest snapshot format every other member said it reads (undefined: no peerSnapshotReadMax, or no other member). */
  private membersSnapshotReadMax(): number | undefined {
    // What members last said counts only beside the check on each send (peerSnapshotReadMax).
    if (this.opts.peerSnapshotReadMax === undefined) return undefined;
    const readMax = this.opts.peerSnapshotReadMaxLastSaid ?? this.opts.peerSnapshotReadMax;
    const { voters, learners } = this.raw.status();
    let min: number | undefined;
    for (const peer of [...voters, ...learners]) {
      if (peer === this.opts.id) continue;
      const r = readMax(peer);
      if (min === undefined || r < min) min = r;
    }
    return min;
  }

  /**
   * snapshotPhase staggers the members' snapshots: the k-th of n voters (by id) takes its snapshots
   * at indexes k·every/n past each multiple of every. Taken at the same index, every member
   * serialised and wrote the whole state at once, so no quorum was free of that work while it ran
   * (with 100,000 instances, seconds of a busy leader and slow followers; a profiled run lost its
   * leader there). Staggered, the leader and one follower form a quorum while the other snapshots.
   */
  private snapshotPhase(): number {
    // Every ready asks once a snapshot is half due: the rank, not a sorted copy of status().voters.
    const { rank: k, voters } = this.raw.voterRank(this.opts.id);
    return k < 0 ? 0 : Math.floor((k * this.snapshotEvery) / voters);
  }

  /** snapshotSlice runs one step of the snapshot job, then lets everything waiting run before the next. */
  private snapshotSlice(): void {
    const running = this.snapshotJob;
    if (this.stopped || !running) return;
    let chunks: readonly Uint8Array[] | undefined;
    try {
      chunks = running.job.step();
    } catch (err) {
      this.fail(err);
      return;
    }
    if (chunks === undefined) {
      // A timer, not a microtask: a microtask would run before any I/O, which is the point of slicing.
      this.scheduler.after(0, () => this.snapshotSlice());
      return;
    }
    this.snapshotJob = undefined;
    this.snapshotDone = { index: running.index, readMax: running.readMax, chunks };
    this.schedule();
  }

  /**
   * finishSnapshot compacts the core's log to a written snapshot and starts storing it, unless a
   * snapshot from the leader passed it meanwhile. The pump does not wait for the store: writing and
   * syncing the file takes hundreds of milliseconds with a large registry, and a pump that waited
   * sent no heartbeats meanwhile (a leader lost its term at every snapshot with 60,000+ instances).
   * The log store writes the file beside the log's own writes and joins its write queue only for
   * the compaction batch (RaftLogStore.compact). One store at a time: `storing` holds the next.
   * The core gets the metadata only (SNAPSHOT_DATA_RELEASED): the store writes the chunks as they
   * are, and a send of this snapshot is served from them until the file exists (readBack), then
   * from the file, as for every snapshot once stored.
   */
  private finishSnapshot(): void {
    const done = this.snapshotDone;
    this.snapshotDone = undefined;
    if (!done || done.index <= this.lastSnapshotIndex) return;
    let snap: Snapshot;
    try {
      snap = this.raw.compact(done.index, SNAPSHOT_DATA_RELEASED);
    } catch (err) {
      // The core compacted past it already (a snapshot from the leader): this one has no use.
      if (err instanceof SnapshotRejectedError) return;
      throw err;
    }
    this.lastSnapshotIndex = done.index;
    this.lastSnapshotReadMax = done.readMax;
    const toStore = { meta: snap.meta, chunks: done.chunks };
    const bytes = snapshotByteLength(toStore);
    const storing = { ...toStore, key: snapshotKey(snap.meta), bytes };
    this.snapshotStoring = storing;
    this.storing = this.opts.store.compact(toStore).then(
      () => {
        this.opts.logger.info({ index: done.index, bytes, membersReadMax: done.readMax }, "took snapshot and compacted the log");
        this.events.emit("snapshotTaken", { index: done.index, term: snap.meta.term, bytes });
      },
      (err: unknown) => {
        // A snapshot from the leader stored meanwhile makes this one old news; a store closed by stop() ends it.
        if (err instanceof SnapshotOutOfDateError || (this.stopped && err instanceof StorageClosedError)) return;
        this.fail(err);
      },
    );
    void this.storing.finally(() => {
      if (this.snapshotStoring === storing) this.snapshotStoring = undefined;
      this.storing = undefined;
      // Written (or refused) and held by no send (readBack copies): nothing reads them any more. Left
      // to the collector they would wait for a full collection, which a quiet node may not run for minutes.
      try {
        this.opts.releaseSnapshotChunks?.(storing.chunks);
      } catch (err) {
        // Only memory is at stake: the collector frees them later. The pump must go on.
        this.opts.logger.warn({ err }, "could not release a stored snapshot's chunks; left to the collector");
      }
      if (!this.stopped && this.snapshotDone) this.schedule();
    });
  }

  private fail(err: unknown): void {
    // A storage failure or a broken invariant: stop rather than carry on with unknown state.
    this.failure = err instanceof Error ? err : new Error(String(err));
    this.opts.logger.error({ err: this.failure }, "raft node failed; stopping");
    void this.stop();
    this.events.emit("failure", { error: this.failure });
  }

  /** running is true from construction until stop() or a failure. */
  running(): boolean {
    return !this.stopped;
  }

  /** leader is the leader this node knows of ("" when none). */
  leader(): NodeId {
    return this.raw.leader();
  }

  /** term is this node's current term (cheaper than status() on hot paths: every write is stamped with it). */
  term(): Term {
    return this.raw.term();
  }

  /** isLeader says whether this node leads now. */
  isLeader(): boolean {
    return this.raw.role() === Role.Leader;
  }

  /** stop halts the loop; callers still waiting get NodeStoppedError (their outcome is unknown). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // A snapshot under way holds its chunks: let them go with the node (one being stored keeps
    // them until the store's write settles).
    this.snapshotJob = undefined;
    this.snapshotDone = undefined;
    this.cancelTicks?.();
    this.answering?.();
    this.answering = undefined;
    for (const p of this.proposals.values()) p.reject(this.failure ?? new NodeStoppedError());
    this.proposals.clear();
    for (const key of [...this.reads.keys()]) this.finishRead(key, this.failure ?? new NodeStoppedError());
  }
}

/** snapshotKey names a snapshot by term and index: the key of reads back and of the one being stored. */
function snapshotKey(meta: Pick<SnapshotMeta, "term" | "index">): string {
  return `${meta.term}/${meta.index}`;
}

/** EMPTY_ENTRY is the data of an entry every machine skips (as a leader's no-op): replaceSnapshotSoon appends one. */
const EMPTY_ENTRY = new Uint8Array(0);

/** carriesReleasedSnapshot says whether m is a Snap message whose bytes the core released to the store. */
function carriesReleasedSnapshot(m: Message): boolean {
  return m.snapshot !== undefined && m.snapshot.data === SNAPSHOT_DATA_RELEASED;
}
