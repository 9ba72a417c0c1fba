/**
 * Raft metrics of one node: gauges read from the node's status at scrape time, counters fed by
 * the node's typed events (node/events.ts), and three timings the events do not carry, taken by
 * wrappers the composition root puts around the node's store (fsync, snapshot writes), message
 * sink and inbox (append round trips) and writer (proposal latency).
 */
import { type Counter, type Histogram, type Registry, Counter as PromCounter, Gauge as PromGauge, Histogram as PromHistogram } from "prom-client";
import type { RaftNodeEvents } from "../node/events.js";
import type { MessageSink } from "../node/raft-node.js";
import type { Emitter } from "../common/emitter.js";
import { type Message, MessageType, type MemberProgress, type NodeId, Role, type Status } from "../raft/index.js";
import type { CompactOptions, RaftLogStore, SaveRequest, SnapshotToStore } from "../storage/index.js";
import { APPEND_PENDING_MS_MAX, APPEND_RTT_BUCKETS_SECONDS, FSYNC_BUCKETS_SECONDS, PROPOSAL_BUCKETS_SECONDS, SNAPSHOT_DURATION_BUCKETS_SECONDS, SNAPSHOT_SIZE_BUCKETS_BYTES } from "./limits.js";

/** RaftSource is what the Raft metrics read of a node (RaftNode fits it). */
export interface RaftSource {
  readonly events: Emitter<RaftNodeEvents>;
  status(): Status;
  progress(): Map<NodeId, MemberProgress>;
  snapshotBytesHeld(): number;
}

/** ROLES are the values of raftmesh_raft_role's label, each series 1 for the node's role and 0 for the others. */
const ROLES: readonly Role[] = [Role.Follower, Role.PreCandidate, Role.Candidate, Role.Leader];


/** RaftMetrics registers the Raft series of one node: the timings at construction (the store and sink are wrapped before the node exists), the rest when it follows the node. */
export class RaftMetrics {
  private readonly proposals: Counter<"result">;
  private readonly proposalSeconds: Histogram;
  private readonly fsyncSeconds: Histogram;
  private readonly snapshotSeconds: Histogram<"kind">;
  private readonly appendRtt: Histogram<"peer">;
  private readonly impossibleMessages: Counter<"peer" | "type">;
  /** pending: per peer, the first unanswered append (its last index, when it left), so each round trip is timed without a map of every message. */
  private readonly pending = new Map<string, { index: number; t0: number }>();
  /** synced: the term and vote of the last hard state saved; a save that changes neither and has no entries is not synced (LogStore.save). */
  private synced = { term: -1, vote: "" };

  /** now is a monotonic clock in ms (performance.now; tests pass their own). */
  constructor(
    private readonly reg: Registry,
    private readonly now: () => number = () => performance.now(),
  ) {
    const registers = [reg];
    this.proposals = new PromCounter({ name: "raftmesh_raft_proposals_total", help: "Registry writes proposed by this node, by result (ok: applied; error: refused, lost or timed out).", labelNames: ["result"], registers });
    for (const result of ["ok", "error"]) this.proposals.inc({ result }, 0);
    this.proposalSeconds = new PromHistogram({ name: "raftmesh_raft_proposal_duration_seconds", help: "Time from proposing a registry write to its result (applied here).", buckets: [...PROPOSAL_BUCKETS_SECONDS], registers });
    this.fsyncSeconds = new PromHistogram({ name: "raftmesh_storage_fsync_duration_seconds", help: "Time of one synced write of the Raft log (one batch per Ready).", buckets: [...FSYNC_BUCKETS_SECONDS], registers });
    this.snapshotSeconds = new PromHistogram({ name: "raftmesh_raft_snapshot_duration_seconds", help: "Time to write a snapshot durably: taken (file + log compaction) or installed (file + batch).", labelNames: ["kind"], buckets: [...SNAPSHOT_DURATION_BUCKETS_SECONDS], registers });
    // Labelled by the sender's member id (only members get past the transport's checks), so the series stay bounded.
    this.impossibleMessages = new PromCounter({ name: "raftmesh_peer_impossible_messages_total", help: "Peer messages no correct peer sends, dropped with the sender's stream (DESIGN note at Raft.step), by claimed sender and message type.", labelNames: ["peer", "type"], registers });
    this.appendRtt = new PromHistogram({ name: "raftmesh_raft_append_round_trip_seconds", help: "Time from sending an append to a peer to its acknowledgement (includes the peer's fsync).", labelNames: ["peer"], buckets: [...APPEND_RTT_BUCKETS_SECONDS], registers });
  }

  /** follow registers the series read from the node and subscribes to its events (once, after the node is built). */
  follow(node: RaftSource): void {
    const reg = this.reg;
    const registers = [reg];
    const st = () => node.status();
    gauge(reg, "raftmesh_raft_term", "The node's current Raft term.", () => st().term);
    gauge(reg, "raftmesh_raft_commit_index", "The highest log index known committed.", () => st().commit);
    gauge(reg, "raftmesh_raft_applied_index", "The highest log index applied to the state machine.", () => st().applied);
    gauge(reg, "raftmesh_raft_last_index", "The last index of the node's log.", () => st().lastIndex);
    gauge(reg, "raftmesh_raft_has_leader", "1 while the node knows a leader, 0 otherwise.", () => (st().lead !== "" ? 1 : 0));
    gauge(reg, "raftmesh_raft_voters", "Voting members in the node's configuration.", () => st().voters.length);
    gauge(reg, "raftmesh_raft_snapshot_bytes_held", "Bytes of a snapshot this node holds in memory: 0 once the store has it (it is read back to send), the size while it is being stored.", () => node.snapshotBytesHeld());
    new PromGauge({
      name: "raftmesh_raft_role",
      help: "The node's role: 1 for the role it has, 0 for the others.",
      labelNames: ["role"],
      registers,
      collect() {
        const role = st().role;
        for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    new PromGauge({
      name: "raftmesh_raft_peer_recent_active",
      help: "On the leader, 1 for each member heard from in the last election timeout, 0 for an unreachable one (no series on followers).",
      labelNames: ["peer"],
      registers,
      collect() {
        this.reset();
        const self = st().id;
        for (const [id, p] of node.progress()) if (id !== self) this.set({ peer: id }, p.recentActive ? 1 : 0);
      },
    });
    const leaderChanges = new PromCounter({ name: "raftmesh_raft_leader_changes_total", help: "Changes of the leader this node knows (to none included).", registers });
    const snapshots = new PromCounter({ name: "raftmesh_raft_snapshots_total", help: "Snapshots taken locally (kind=taken) or installed from the leader (kind=installed).", labelNames: ["kind"], registers });
    const snapshotBytes = new PromHistogram({ name: "raftmesh_raft_snapshot_size_bytes", help: "Size of the snapshots taken or installed.", labelNames: ["kind"], buckets: [...SNAPSHOT_SIZE_BUCKETS_BYTES], registers });
    for (const kind of ["taken", "installed"]) snapshots.inc({ kind }, 0);
    node.events.on("leader", () => leaderChanges.inc());
    node.events.on("role", (e) => {
      if (e.role !== Role.Leader) this.pending.clear();
    });
    node.events.on("snapshotTaken", (e) => {
      snapshots.inc({ kind: "taken" });
      snapshotBytes.observe({ kind: "taken" }, e.bytes);
    });
    node.events.on("snapshotInstalled", (e) => {
      snapshots.inc({ kind: "installed" });
      snapshotBytes.observe({ kind: "installed" }, e.bytes);
    });
  }

  /** since is the time since t0 (a now() reading), in seconds. */
  private since(t0: number): number {
    return (this.now() - t0) / 1000;
  }

  /** store wraps the node's log store to time synced writes and snapshot writes. */
  store<S extends RaftLogStore>(inner: S): RaftLogStore {
    return {
      save: async (req: SaveRequest) => {
        const t0 = this.now();
        await inner.save(req);
        const hs = req.hardState;
        const voted = hs !== undefined && (hs.term !== this.synced.term || hs.vote !== this.synced.vote);
        if (hs !== undefined) this.synced = { term: hs.term, vote: hs.vote };
        if (req.snapshot !== undefined) this.snapshotSeconds.observe({ kind: "installed" }, this.since(t0));
        else if (req.entries.length > 0 || voted) this.fsyncSeconds.observe(this.since(t0));
      },
      compact: async (snap: SnapshotToStore, options?: CompactOptions) => {
        const t0 = this.now();
        await inner.compact(snap, options);
        this.snapshotSeconds.observe({ kind: "taken" }, this.since(t0));
      },
      loadSnapshot: (meta) => inner.loadSnapshot(meta),
    };
  }

  /** sink wraps the node's message sink to start an append's round-trip clock. */
  sink(inner: MessageSink): MessageSink {
    return {
      send: (messages) => {
        const now = this.now();
        for (const m of messages) {
          if (m.type !== MessageType.App || m.entries.length === 0) continue;
          // An append that was never answered (peer down, message dropped) is forgotten after a
          // while, so its outage does not show up as one enormous round trip.
          const p = this.pending.get(m.to);
          if (p !== undefined && now - p.t0 < APPEND_PENDING_MS_MAX) continue;
          this.pending.set(m.to, { index: m.index + m.entries.length, t0: now });
        }
        inner.send(messages);
      },
    };
  }

  /** received stops the clock of a peer's append when its acknowledgement covers it (call for every message in). */
  received(m: Message): void {
    if (m.type !== MessageType.AppResp) return;
    const p = this.pending.get(m.from);
    if (p === undefined) return;
    if (m.reject) {
      this.pending.delete(m.from);
      return;
    }
    if (m.index < p.index) return;
    this.pending.delete(m.from);
    this.appendRtt.observe({ peer: m.from }, this.since(p.t0));
  }

  /** impossible counts one peer message the core refused as impossible (the sender's fault). */
  impossible(from: NodeId, type: MessageType): void {
    this.impossibleMessages.inc({ peer: from, type });
  }

  /** proposed records one registry write's outcome and duration. */
  proposed(ok: boolean, seconds: number): void {
    this.proposals.inc({ result: ok ? "ok" : "error" });
    this.proposalSeconds.observe(seconds);
  }
}

function gauge(reg: Registry, name: string, help: string, read: () => number): void {
  new PromGauge({
    name,
    help,
    registers: [reg],
    collect() {
      this.set(read());
    },
  });
}
