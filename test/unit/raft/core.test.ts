import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvariantError } from "../../../src/raft/errors.js";
import { Inflights } from "../../../src/raft/inflights.js";
import {
  bootstrapEntries,
  ConfChangeRejectedError,
  ConfChangeType,
  disjointMajoritiesPossible,
  type Entry,
  EntryKind,
  type Message,
  MessageType,
  majority,
  NO_NODE,
  type NodeId,
  NotLeaderError,
  nodeId,
  ProposalDroppedError,
  RaftError,
  type RaftOptions,
  RawNode,
  ReadLimitError,
  type ReadReject,
  type Ready,
  ReadRejectReason,
  TransferRejectedError,
  UncommittedLimitError,
} from "../../../src/raft/index.js";
import { RaftLog } from "../../../src/raft/log.js";
import { committedIndex, hasQuorum, voteResult } from "../../../src/raft/quorum.js";
import { MemoryStorage } from "../../sim/memory-storage.js";

const enc = new TextEncoder();
const n1 = nodeId("n1");
const n2 = nodeId("n2");
const n3 = nodeId("n3");
const n4 = nodeId("n4");

// ------------------------------------------------------------------------------------------ a tiny host

/** Overrides replace the tiny host's defaults; a `random` given here is shared by every node (identical draws). */
type Overrides = Partial<Omit<RaftOptions, "id">>;

/**
 * TestCluster is the least host that drives RawNodes: persist to MemoryStorage, queue messages,
 * apply nothing, advance. `isolated` nodes neither send nor receive.
 */
class TestCluster {
  readonly nodes = new Map<NodeId, RawNode>();
  readonly storages = new Map<NodeId, MemoryStorage>();
  readonly isolated = new Set<NodeId>();
  /** cuts are one-way links that lose every message, as "from>to". */
  readonly cuts = new Set<string>();
  /** sent records every message handed to the network, for assertions. */
  readonly sent: Message[] = [];
  /** readRejects records every read refused to its own node, with that node's id. */
  readonly readRejects: (ReadReject & { readonly id: NodeId })[] = [];
  /** readyLog keeps every node's readies, for assertions on read states. */
  readonly readyLog = new Map<NodeId, Ready[]>();
  private queue: Message[] = [];

  constructor(ids: readonly NodeId[], overrides: Overrides = {}, learners: readonly NodeId[] = []) {
    const voters = ids.filter((id) => !learners.includes(id));
    const boot = bootstrapEntries(voters);
    for (const l of learners) {
      boot.push({
        term: 1,
        index: boot.length + 1,
        kind: EntryKind.ConfChange,
        data: enc.encode(JSON.stringify({ type: ConfChangeType.AddLearner, node: l })),
      });
    }
    ids.forEach((id, k) => {
      const storage = new MemoryStorage({ hardState: { term: 1, vote: NO_NODE, commit: boot.length }, entries: boot });
      this.storages.set(id, storage);
      const raw = new RawNode(
        { id, electionTick: 10, heartbeatTick: 1, random: { nextInt: (max) => k % max }, ...overrides },
        storage.load(),
      );
      this.nodes.set(id, raw);
    });
  }

  node(id: NodeId): RawNode {
    const raw = this.nodes.get(id);
    if (!raw) throw new Error(`no ${id}`);
    return raw;
  }

  /** processReady runs one ready of every node that has one; it returns whether any did. */
  processReady(): boolean {
    let busy = false;
    for (const [id, raw] of this.nodes) {
      if (!raw.hasReady()) continue;
      busy = true;
      const rd = raw.ready();
      this.readyLog.set(id, [...(this.readyLog.get(id) ?? []), rd]);
      this.storages.get(id)?.save(rd);
      for (const r of rd.readRejects) this.readRejects.push({ id, ...r });
      for (const m of rd.messages) {
        this.sent.push(m);
        if (!this.isolated.has(m.from) && !this.isolated.has(m.to) && !this.cuts.has(`${m.from}>${m.to}`)) this.queue.push(m);
      }
      raw.advance(rd);
    }
    return busy;
  }

  deliver(): boolean {
    const q = this.queue;
    this.queue = [];
    for (const m of q) this.node(m.to).step(m);
    return q.length > 0;
  }

  settle(): void {
    for (let i = 0; i < 100; i++) {
      const a = this.processReady();
      const b = this.deliver();
      if (!a && !b) return;
    }
    throw new Error("cluster did not settle");
  }

  elect(id: NodeId): RawNode {
    this.node(id).campaign();
    this.settle();
    const raw = this.node(id);
    expect(raw.status().role).toBe("leader");
    return raw;
  }
}

/** readIndexFrom is the ReadIndex message a follower sends its leader for the read named ctx. */
function readIndexFrom(from: NodeId, to: NodeId, term: number, ctx: string): Message {
  return {
    type: MessageType.ReadIndex,
    from,
    to,
    term,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: enc.encode(ctx),
  };
}

/** readRejectsSent lists the rejected ReadIndexResps sent so far as "to ctx reason". */
function readRejectsSent(c: TestCluster): string[] {
  return c.sent
    .filter((m) => m.type === MessageType.ReadIndexResp && m.reject)
    .map((m) => `${m.to} ${new TextDecoder().decode(m.context)} ${m.readReject}`);
}

function caught(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error("expected an error");
}

// ------------------------------------------------------------------------------------------ errors

describe("raft: typed errors", () => {
  it("raft: a follower refuses proposals, changes, transfers with NotLeaderError naming the leader", () => {
    const c = new TestCluster([n1, n2, n3]);
    c.elect(n1);
    const f = c.node(n2);
    for (const op of [
      () => f.propose([enc.encode("x")]),
      () => f.proposeConfChange({ type: ConfChangeType.AddLearner, node: n4 }),
      () => f.transferLeadership(n3),
    ]) {
      const err = caught(op);
      expect(err).toBeInstanceOf(NotLeaderError);
      expect(err).toBeInstanceOf(RaftError);
      expect((err as NotLeaderError).leader).toBe(n1);
      expect((err as Error).message).toContain("n1");
    }
  });

  it("raft: a node that knows no leader reports NotLeaderError with an empty leader, also for reads", () => {
    const c = new TestCluster([n1, n2, n3]);
    const err = caught(() => c.node(n1).propose([enc.encode("x")]));
    expect(err).toBeInstanceOf(NotLeaderError);
    expect((err as NotLeaderError).leader).toBe(NO_NODE);
    expect(caught(() => c.node(n1).readIndex(enc.encode("r")))).toBeInstanceOf(NotLeaderError);
  });

  it("raft: a leader refuses proposals and changes with ProposalDroppedError while a transfer is pending", () => {
    const c = new TestCluster([n1, n2, n3]);
    const leader = c.elect(n1);
    leader.transferLeadership(n2);
    expect(leader.status().leadTransferee).toBe(n2);
    const err = caught(() => leader.propose([enc.encode("x")]));
    expect(err).toBeInstanceOf(ProposalDroppedError);
    expect((err as ProposalDroppedError).reason).toContain("n2");
    expect(caught(() => leader.proposeConfChange({ type: ConfChangeType.AddLearner, node: n4 }))).toBeInstanceOf(
      ProposalDroppedError,
    );
    c.settle();
    expect(c.node(n2).status().role).toBe("leader");
    expect(c.node(n1).status().role).toBe("follower");
  });

  it("raft: the leader throws UncommittedLimitError once the uncommitted tail would pass the limit, and takes proposals again after commit", () => {
    const c = new TestCluster([n1, n2, n3], { uncommittedBytesMax: 10 });
    const leader = c.elect(n1);
    c.isolated.add(n2).add(n3);
    leader.propose([enc.encode("12345678")]);
    const err = caught(() => leader.propose([enc.encode("abc")]));
    expect(err).toBeInstanceOf(UncommittedLimitError);
    expect((err as UncommittedLimitError).uncommittedBytes).toBe(8);
    expect((err as UncommittedLimitError).limitBytes).toBe(10);
    // Within the limit is fine.
    leader.propose([enc.encode("ab")]);
    expect(caught(() => leader.propose([enc.encode("c")]))).toBeInstanceOf(UncommittedLimitError);
    c.settle();
    c.isolated.clear();
    // Heartbeat responses make the leader resend; once committed and applied, the bytes are released.
    leader.tick();
    c.settle();
    expect(leader.status().commit).toBe(leader.status().lastIndex);
    leader.propose([enc.encode("12345678")]);
  });

  it("raft: an empty uncommitted tail always takes one proposal, however large", () => {
    const c = new TestCluster([n1, n2, n3], { uncommittedBytesMax: 4 });
    const leader = c.elect(n1);
    expect(leader.propose([enc.encode("much more than four bytes")])).toHaveLength(1);
    expect(caught(() => leader.propose([enc.encode("x")]))).toBeInstanceOf(UncommittedLimitError);
  });

  it("raft: the leader throws ReadLimitError when pendingReadsMax reads wait, counting reads held for the first commit", () => {
    const c = new TestCluster([n1, n2, n3], { pendingReadsMax: 2 });
    const leader = c.elect(n1);
    c.isolated.add(n2).add(n3);
    leader.readIndex(enc.encode("a"));
    c.processReady(); // the round starts; its heartbeats are lost
    leader.readIndex(enc.encode("b"));
    const err = caught(() => leader.readIndex(enc.encode("c")));
    expect(err).toBeInstanceOf(ReadLimitError);
    expect((err as ReadLimitError).limit).toBe(2);

  });

  it("raft: reads that arrive while a read round is unanswered wait for one next round, started by its acks or after a heartbeat interval", () => {
    // heartbeatTick 3, so a round's patience is 3 ticks.
    const c = new TestCluster([n1, n2, n3], { heartbeatTick: 3 });
    const leader = c.elect(n1);
    const rounds = () => c.sent.filter((m) => m.type === MessageType.Heartbeat && m.context !== undefined && m.to === n2).length;
    const before = rounds();
    leader.readIndex(enc.encode("r1"));
    c.processReady(); // round 1 goes out; its acks are not delivered yet
    expect(rounds()).toBe(before + 1);
    // Many readies, one read each: none starts a round while round 1 is unanswered.
    for (let i = 2; i <= 20; i++) {
      leader.readIndex(enc.encode(`r${i}`));
      c.processReady();
    }
    expect(rounds()).toBe(before + 1);
    expect(leader.hasReady()).toBe(false);
    // Round 1's acks confirm r1 and start round 2 for r2…r20, whose acks confirm them all.
    c.settle();
    expect(rounds()).toBe(before + 2);
    const confirmed = (rd: { readStates: readonly { context: Uint8Array }[] }[]) => rd.flatMap((r) => r.readStates.map((s) => new TextDecoder().decode(s.context)));
    expect(confirmed(c.readyLog.get(n1) ?? []).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `r${i + 1}`).sort());
    // A round whose acks are lost does not hold the next read for ever: after the heartbeat interval
    // (3 ticks) a new round starts.
    c.isolated.add(n2).add(n3);
    leader.readIndex(enc.encode("lost"));
    c.processReady();
    const afterLost = rounds();
    leader.readIndex(enc.encode("next"));
    c.processReady();
    expect(rounds()).toBe(afterLost);
    c.isolated.clear();
    for (let t = 0; t < 3; t++) leader.tick();
    c.settle();
    expect(rounds()).toBeGreaterThan(afterLost);
    expect(confirmed(c.readyLog.get(n1) ?? [])).toEqual(expect.arrayContaining(["lost", "next"]));
  });

  it("raft: reads held by a new leader before its first commit count against pendingReadsMax", () => {
    const c = new TestCluster([n1, n2, n3], { pendingReadsMax: 1 });
    c.node(n1).campaign();
    // Run the election without delivering the no-op's acknowledgements.
    c.processReady(); // pre-votes
    c.deliver();
    c.processReady(); // pre-vote responses
    c.deliver();
    c.processReady(); // votes
    c.deliver();
    c.processReady(); // vote responses
    c.deliver();
    const leader = c.node(n1);
    expect(leader.status().role).toBe("leader");
    expect(leader.status().commit).toBeLessThan(leader.status().lastIndex);
    leader.readIndex(enc.encode("held"));
    expect(caught(() => leader.readIndex(enc.encode("more")))).toBeInstanceOf(ReadLimitError);
    // A follower's read past the limit is refused by message, never by throwing inside step.
    expect(() => leader.step(readIndexFrom(n2, n1, leader.status().term, "forwarded"))).not.toThrow();
    c.processReady();
    expect(readRejectsSent(c)).toEqual(["n2 forwarded limit"]);
    c.settle();
    expect(leader.status().commit).toBe(leader.status().lastIndex);
  });

  it("raft: membership changes are refused with ConfChangeRejectedError, each with its reason", () => {
    const c = new TestCluster([n1, n2, n3, n4], {}, [n4]);
    const leader = c.elect(n1);
    const reasons: string[] = [];
    const expectRejected = (f: () => unknown) => {
      const err = caught(f);
      expect(err).toBeInstanceOf(ConfChangeRejectedError);
      reasons.push((err as ConfChangeRejectedError).reason);
    };
    expectRejected(() => leader.proposeConfChange({ type: ConfChangeType.AddVoter, node: n2 }));
    expectRejected(() => leader.proposeConfChange({ type: ConfChangeType.AddLearner, node: n4 }));
    expectRejected(() => leader.proposeConfChange({ type: ConfChangeType.Remove, node: nodeId("n9") }));
    expectRejected(() => leader.proposeConfChange({ type: ConfChangeType.AddVoter, node: NO_NODE }));
    // A valid change, then a second one while the first is uncommitted.
    leader.proposeConfChange({ type: ConfChangeType.AddVoter, node: n4 });
    expectRejected(() => leader.proposeConfChange({ type: ConfChangeType.Remove, node: n3 }));
    expect(reasons).toEqual([
      "n2 is already a voter",
      "n4 is already a learner",
      "n9 is not a member",
      "node id is empty",
      expect.stringMatching(/not yet committed/),
    ]);
    c.settle();
    expect(leader.status().voters).toEqual([n1, n2, n3, n4]);
  });

  it("raft: a change is refused before the leader commits an entry of its term", () => {
    const c = new TestCluster([n1, n2, n3]);
    c.node(n1).campaign();
    for (let i = 0; i < 4; i++) {
      c.processReady();
      c.deliver();
    }
    const leader = c.node(n1);
    expect(leader.status().role).toBe("leader");
    const err = caught(() => leader.proposeConfChange({ type: ConfChangeType.AddLearner, node: n4 }));
    expect(err).toBeInstanceOf(ConfChangeRejectedError);
    expect((err as ConfChangeRejectedError).reason).toMatch(/not yet committed an entry of its term/);
    c.settle();
    leader.proposeConfChange({ type: ConfChangeType.AddLearner, node: n4 });
  });

  it("raft: the last voter can be neither removed nor demoted", () => {
    const c = new TestCluster([n1]);
    const leader = c.elect(n1);
    for (const type of [ConfChangeType.Remove, ConfChangeType.AddLearner]) {
      const err = caught(() => leader.proposeConfChange({ type, node: n1 }));
      expect(err).toBeInstanceOf(ConfChangeRejectedError);
      expect((err as ConfChangeRejectedError).reason).toBe("removing n1 would leave no voter");
    }
  });

  it("raft: leadership cannot be transferred to a learner or a stranger", () => {
    const c = new TestCluster([n1, n2, n3, n4], {}, [n4]);
    const leader = c.elect(n1);
    for (const to of [n4, nodeId("n9")]) {
      const err = caught(() => leader.transferLeadership(to));
      expect(err).toBeInstanceOf(TransferRejectedError);
      expect((err as TransferRejectedError).reason).toBe(`${to} is not a voter`);
    }
    expect(leader.status().leadTransferee).toBe(NO_NODE);
  });
});

// ------------------------------------------------------------------------------------------ options

describe("raft: pending read limits", () => {
  it("raft: at pendingReadsMax a leader refuses one more read, its own with ReadLimitError, a follower's with a rejected response", () => {
    const c = new TestCluster([n1, n2, n3], { pendingReadsMax: 2 });
    const leader = c.elect(n1);
    const term = leader.status().term;
    c.isolated.add(n2).add(n3); // the rounds' heartbeats are lost, so reads stay pending
    leader.readIndex(enc.encode("own-1"));
    leader.step(readIndexFrom(n2, n1, term, "fwd-1")); // at the limit: both held
    c.processReady();
    expect(readRejectsSent(c)).toEqual([]);
    // One past the limit: the leader's own read throws; a forwarded one is answered, never thrown.
    expect(caught(() => leader.readIndex(enc.encode("own-2")))).toBeInstanceOf(ReadLimitError);
    expect(() => leader.step(readIndexFrom(n3, n1, term, "fwd-2"))).not.toThrow();
    c.processReady();
    expect(readRejectsSent(c)).toEqual(["n3 fwd-2 limit"]);
    expect(c.readRejects).toEqual([]);
  });

  it("raft: a follower turns a rejected read response into a ReadReject with its reason (none from an older peer means not-leader)", () => {
    const c = new TestCluster([n1, n2, n3], { pendingReadsMax: 1 });
    const leader = c.elect(n1);
    c.node(n2).readIndex(enc.encode("first"));
    c.node(n3).readIndex(enc.encode("second"));
    c.node(n2).readIndex(enc.encode("third"));
    // All three reach the leader before its next ready: one is held, two are refused.
    c.processReady();
    c.deliver();
    c.settle();
    expect(c.readRejects.map((r) => `${r.id} ${new TextDecoder().decode(r.context)} ${r.reason}`).sort()).toEqual([
      "n2 third limit",
      "n3 second limit",
    ]);
    const old = { ...readIndexFrom(n1, n2, leader.status().term, "old"), type: MessageType.ReadIndexResp, reject: true };
    c.node(n2).step(old);
    c.processReady();
    expect(c.readRejects.at(-1)).toEqual({ id: n2, context: enc.encode("old"), reason: ReadRejectReason.NotLeader });
  });

  it("raft: a leader refuses reads held pendingReadTicksMax ticks, its own and forwarded, and not one tick sooner", () => {
    const c = new TestCluster([n1, n2, n3], { pendingReadTicksMax: 3 });
    const leader = c.elect(n1);
    c.isolated.add(n2).add(n3);
    leader.readIndex(enc.encode("own"));
    leader.step(readIndexFrom(n2, n1, leader.status().term, "fwd"));
    c.processReady();
    for (let i = 0; i < 3; i++) leader.tick();
    c.processReady();
    expect(c.readRejects).toEqual([]);
    expect(readRejectsSent(c)).toEqual([]);
    leader.tick();
    c.processReady();
    expect(leader.status().role).toBe("leader");
    expect(c.readRejects).toEqual([{ id: n1, context: enc.encode("own"), reason: ReadRejectReason.Expired }]);
    expect(readRejectsSent(c)).toEqual(["n2 fwd expired"]);
    // The expired reads no longer count: the limit has room again.
    expect(() => leader.readIndex(enc.encode("again"))).not.toThrow();
  });

  it("raft: reads held before the first commit of a term also expire", () => {
    const c = new TestCluster([n1, n2, n3], { pendingReadTicksMax: 2 });
    c.node(n1).campaign();
    for (let i = 0; i < 4; i++) {
      c.processReady();
      c.deliver();
    }
    const leader = c.node(n1);
    expect(leader.status().commit).toBeLessThan(leader.status().lastIndex);
    c.isolated.add(n2).add(n3);
    leader.readIndex(enc.encode("held"));
    for (let i = 0; i < 3; i++) leader.tick();
    c.processReady();
    expect(c.readRejects).toEqual([{ id: n1, context: enc.encode("held"), reason: ReadRejectReason.Expired }]);
  });

  it("raft: a leader that steps down refuses every read it held, so no reader waits for its deadline", () => {
    const c = new TestCluster([n1, n2, n3]);
    const leader = c.elect(n1);
    const term = leader.status().term;
    c.isolated.add(n2).add(n3);
    leader.readIndex(enc.encode("own"));
    leader.step(readIndexFrom(n2, n1, term, "fwd"));
    c.processReady();
    // Check-quorum: within two election timeouts without hearing a quorum, the leader steps down.
    for (let i = 0; i < 20 && leader.status().role === "leader"; i++) leader.tick();
    expect(leader.status().role).toBe("follower");
    c.processReady();
    expect(c.readRejects).toEqual([{ id: n1, context: enc.encode("own"), reason: ReadRejectReason.NotLeader }]);
    expect(readRejectsSent(c)).toEqual(["n2 fwd not-leader"]);
    // A node that does not lead refuses forwarded reads at once too.
    leader.step(readIndexFrom(n3, n1, term, "late"));
    c.processReady();
    expect(readRejectsSent(c)).toEqual(["n2 fwd not-leader", "n3 late not-leader"]);
  });
});

describe("raft: recent activity", () => {
  it("raft: progress says which members answered within the last check-quorum rounds, and it survives one round boundary", () => {
    const c = new TestCluster([n1, n2, n3]);
    const leader = c.elect(n1);
    const active = () => [...leader.progress()].filter(([, p]) => p.recentActive).map(([id]) => id);
    expect(active()).toEqual([n1, n2, n3]);
    c.isolated.add(n3);
    // One check-quorum round: n3's earlier answers still count (heard within the last round).
    for (let i = 0; i < 10; i++) leader.tick();
    c.settle();
    expect(active()).toEqual([n1, n2, n3]);
    // A second round without an answer: n3 is no longer recently active; n2 keeps answering.
    for (let i = 0; i < 10; i++) {
      leader.tick();
      c.settle();
    }
    expect(leader.status().role).toBe("leader");
    expect(active()).toEqual([n1, n2]);
    expect(c.node(n2).progress().size).toBe(0);
  });
});

describe("raft: option validation", () => {
  const base: RaftOptions = { id: n1, electionTick: 10, heartbeatTick: 1, random: { nextInt: () => 0 } };
  const persisted = { hardState: { term: 0, vote: NO_NODE, commit: 0 }, entries: [] as Entry[] };

  it("raft: the RawNode constructor accepts sane options", () => {
    expect(() => new RawNode(base, persisted)).not.toThrow();
    expect(() => new RawNode({ ...base, electionTick: 2, heartbeatTick: 1 }, persisted)).not.toThrow();
  });

  it.each([
    ["heartbeatTick 0", { heartbeatTick: 0 }, "options.heartbeatTick"],
    ["heartbeatTick -1", { heartbeatTick: -1 }, "options.heartbeatTick"],
    ["heartbeatTick 1.5", { heartbeatTick: 1.5 }, "options.heartbeatTick"],
    ["heartbeatTick NaN", { heartbeatTick: Number.NaN }, "options.heartbeatTick"],
    ["electionTick equal to heartbeatTick", { electionTick: 3, heartbeatTick: 3 }, "options.electionTick"],
    ["electionTick below heartbeatTick", { electionTick: 3, heartbeatTick: 5 }, "options.electionTick"],
    ["electionTick 1", { electionTick: 1, heartbeatTick: 1 }, "options.electionTick"],
    ["electionTick 0", { electionTick: 0 }, "options.electionTick"],
    ["electionTick 10.5", { electionTick: 10.5 }, "options.electionTick"],
    ["an empty id", { id: NO_NODE }, "options.id"],
    ["pendingReadsMax 0", { pendingReadsMax: 0 }, "options.pendingReadsMax"],
    ["pendingReadTicksMax 0", { pendingReadTicksMax: 0 }, "options.pendingReadTicksMax"],
    ["pendingReadTicksMax 2.5", { pendingReadTicksMax: 2.5 }, "options.pendingReadTicksMax"],
  ] as const)("raft: the RawNode constructor rejects %s with a RaftError naming the field", (_name, bad, field) => {
    const err = caught(() => new RawNode({ ...base, ...bad }, persisted));
    expect(err).toBeInstanceOf(RaftError);
    expect(err).not.toBeInstanceOf(InvariantError);
    expect((err as Error).message).toContain(field);
  });
});

// ------------------------------------------------------------------------------------------ inflights

describe("raft: inflight window", () => {
  it("raft: the window is full at its message count", () => {
    const w = new Inflights(3, 1_000_000);
    w.add(1, 10);
    w.add(2, 10);
    expect(w.full()).toBe(false);
    w.add(5, 10);
    expect(w.full()).toBe(true);
    expect(w.count()).toBe(3);
    expect(() => w.add(6, 10)).toThrow(InvariantError);
    w.freeLE(2);
    expect(w.count()).toBe(1);
    expect(w.full()).toBe(false);
    w.freeLE(4); // frees nothing: the remaining append ends at 5
    expect(w.count()).toBe(1);
    w.freeFirst();
    expect(w.count()).toBe(0);
  });

  it("raft: the window is full at its byte size, and freeing gives the bytes back", () => {
    const w = new Inflights(100, 50);
    w.add(1, 30);
    expect(w.full()).toBe(false);
    w.add(2, 20);
    expect(w.full()).toBe(true);
    w.freeFirst();
    expect(w.full()).toBe(false);
    w.add(3, 29);
    expect(w.full()).toBe(false);
    w.add(4, 1);
    expect(w.full()).toBe(true);
    w.reset();
    expect(w.count()).toBe(0);
    expect(w.full()).toBe(false);
  });

  it("raft: a single append larger than the byte limit is still allowed into an empty window", () => {
    const w = new Inflights(10, 50);
    w.add(1, 500);
    expect(w.full()).toBe(true);
    w.freeLE(1);
    expect(w.full()).toBe(false);
  });

  it("raft: appends must have growing last indexes", () => {
    const w = new Inflights(10, 1000);
    w.add(4, 1);
    expect(() => w.add(4, 1)).toThrow(InvariantError);
    expect(() => w.add(3, 1)).toThrow(InvariantError);
  });

  it("raft: a leader keeps at most inflightMessagesMax appends in flight to a silent follower", () => {
    const c = new TestCluster([n1, n2, n3], { inflightMessagesMax: 2 });
    const leader = c.elect(n1);
    c.isolated.add(n3); // n3 answers nothing, n2 keeps the quorum
    const before = c.sent.length;
    for (let i = 0; i < 6; i++) {
      leader.propose([enc.encode(`p${i}`)]);
      c.settle();
    }
    const toN3 = c.sent.slice(before).filter((m) => m.to === n3 && m.type === MessageType.App && m.entries.length > 0);
    expect(toN3).toHaveLength(2);
    const toN2 = c.sent.slice(before).filter((m) => m.to === n2 && m.type === MessageType.App && m.entries.length > 0);
    expect(toN2).toHaveLength(6);
    expect(leader.status().commit).toBe(leader.status().lastIndex);
  });

  it("raft: a leader stops streaming to a silent follower once inflightBytesMax bytes are in flight", () => {
    // Each entry costs 24 bytes of overhead plus its data: 10 bytes of data make 34.
    const c = new TestCluster([n1, n2, n3], { inflightBytesMax: 60 });
    const leader = c.elect(n1);
    c.isolated.add(n3);
    const before = c.sent.length;
    for (let i = 0; i < 5; i++) {
      leader.propose([enc.encode(`0123456789`)]);
      c.settle();
    }
    const toN3 = c.sent.slice(before).filter((m) => m.to === n3 && m.type === MessageType.App && m.entries.length > 0);
    expect(toN3).toHaveLength(2); // 34 bytes: not full; 68 bytes: full
  });
});

// ------------------------------------------------------------------------------------------ quorum

const ID_POOL = ["n1", "n2", "n3", "n4", "n5", "n6", "n7"].map(nodeId);
const idSet = fc.subarray(ID_POOL).map((ids) => new Set(ids));

function subsets<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let mask = 0; mask < 1 << items.length; mask++) out.push(items.filter((_, i) => mask & (1 << i)));
  return out;
}

describe("raft: quorum math", () => {
  it("raft: majority is more than half", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(majority)).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
  });

  it("raft: committedIndex is the highest index a majority of voters has matched (brute force)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.constantFrom(...ID_POOL), { minLength: 0, maxLength: 7 }),
        fc.array(fc.nat(20), { minLength: 7, maxLength: 7 }),
        (ids, matchValues) => {
          const voters = new Set(ids);
          const match = (id: NodeId) => matchValues[ID_POOL.indexOf(id)] ?? 0;
          let want = 0;
          for (let i = 0; i <= 20; i++) {
            const n = ids.filter((id) => match(id) >= i).length;
            if (ids.length > 0 && n >= majority(ids.length)) want = i;
          }
          expect(committedIndex(voters, match)).toBe(want);
        },
      ),
    );
  });

  it("raft: voteResult wins with a majority of grants, loses once a majority is out of reach (brute force)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.constantFrom(...ID_POOL), { maxLength: 7 }),
        fc.array(fc.constantFrom<boolean | undefined>(true, false, undefined), { minLength: 7, maxLength: 7 }),
        (ids, votesArr) => {
          const votes = new Map<NodeId, boolean>();
          // Votes may also come from non-voters; they must not count.
          ID_POOL.forEach((id, i) => {
            const v = votesArr[i];
            if (v !== undefined) votes.set(id, v);
          });
          const voters = new Set(ids);
          // Brute force: could the outstanding voters still complete a majority of grants?
          const granted = ids.filter((id) => votes.get(id) === true).length;
          const pending = ids.filter((id) => !votes.has(id)).length;
          const need = majority(ids.length);
          const want = granted >= need ? "won" : granted + pending >= need ? "pending" : "lost";
          expect(voteResult(voters, votes)).toBe(want);
        },
      ),
    );
  });

  it("raft: hasQuorum counts only voters", () => {
    fc.assert(
      fc.property(idSet, idSet, (voters, acked) => {
        const n = [...voters].filter((id) => acked.has(id)).length;
        expect(hasQuorum(voters, (id) => acked.has(id))).toBe(n >= majority(voters.size));
      }),
    );
  });

  it("raft: disjointMajoritiesPossible agrees with enumerating every pair of majorities", () => {
    fc.assert(
      fc.property(idSet, idSet, (a, b) => {
        const majA = subsets([...a]).filter((s) => s.length >= majority(a.size));
        const majB = subsets([...b]).filter((s) => s.length >= majority(b.size));
        const want = majA.some((x) => majB.some((y) => !x.some((id) => y.includes(id))));
        expect(disjointMajoritiesPossible(a, b)).toBe(want);
      }),
      { numRuns: 500 },
    );
  });

  it("raft: configurations one server apart never allow disjoint majorities", () => {
    fc.assert(
      fc.property(idSet, fc.constantFrom(...ID_POOL), (a, x) => {
        fc.pre(a.size > 0);
        const b = new Set(a);
        if (b.has(x)) b.delete(x);
        else b.add(x);
        fc.pre(b.size > 0);
        expect(disjointMajoritiesPossible(a, b)).toBe(false);
      }),
    );
  });
});

// ------------------------------------------------------------------------------------------ log

/** makeLog builds a RaftLog holding entries with the given terms after a snapshot at snapIndex. */
function makeLog(snapIndex: number, snapTerm: number, terms: readonly number[]): RaftLog {
  const entries: Entry[] = terms.map((term, i) => ({
    term,
    index: snapIndex + 1 + i,
    kind: EntryKind.Normal,
    data: new Uint8Array(0),
  }));
  const snapshot =
    snapIndex > 0
      ? { meta: { index: snapIndex, term: snapTerm, conf: { voters: [n1], learners: [] } }, data: new Uint8Array(0) }
      : undefined;
  return new RaftLog(snapshot, entries, snapIndex);
}

/** nonDecreasing turns increments into a non-decreasing sequence of terms starting at `from`. */
function nonDecreasing(from: number, steps: readonly number[]): number[] {
  let t = from;
  return steps.map((s) => (t += s));
}

describe("raft: log conflict search", () => {
  it("raft: findConflictByTerm returns the largest index <= index whose term is <= term (reference)", () => {
    fc.assert(
      fc.property(
        fc.nat(5),
        fc.nat(3),
        fc.array(fc.nat(2), { maxLength: 12 }),
        fc.nat(25),
        fc.nat(10),
        (snapIndex, snapTermRaw, steps, index, term) => {
          const snapTerm = snapIndex === 0 ? 0 : snapTermRaw + 1;
          const terms = nonDecreasing(Math.max(snapTerm, 1), steps.map((s, i) => (i === 0 ? 0 : s)));
          const log = makeLog(snapIndex, snapTerm, terms);
          // Reference: walk down from min(index, last); a compacted or zero position stops the walk.
          const termAt = (i: number): number | undefined => (i <= snapIndex ? undefined : terms[i - snapIndex - 1]);
          let want = Math.min(index, snapIndex + terms.length);
          while (want > snapIndex && (termAt(want) ?? 0) > term) want--;
          const got = log.findConflictByTerm(index, term);
          expect(got).toBe(want);
          // And the defining properties.
          expect(got).toBeLessThanOrEqual(Math.min(index, log.lastIndex()));
          if (got > snapIndex) expect(log.term(got)).toBeLessThanOrEqual(term);
          for (let k = got + 1; k <= Math.min(index, log.lastIndex()); k++) expect(log.term(k)).toBeGreaterThan(term);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("raft: the reject hint protocol repairs any diverged follower at exactly the longest common prefix", () => {
    // Valid Raft logs: a common prefix, then suffixes whose terms are disjoint (an entry of a term
    // comes from that term's one leader, so one term cannot appear at different positions).
    const arb = fc
      .record({
        prefix: fc.array(fc.nat(1), { maxLength: 6 }),
        terms: fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { maxLength: 6 }),
        sides: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
        runs: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 6, maxLength: 6 }),
        extendPrefixTermOn: fc.constantFrom<"leader" | "follower" | "none">("leader", "follower", "none"),
        extendLen: fc.integer({ min: 1, max: 3 }),
      })
      .map(({ prefix, terms, sides, runs, extendPrefixTermOn, extendLen }) => {
        const pre = nonDecreasing(1, prefix.map((s, i) => (i === 0 ? 0 : s)));
        const last = pre[pre.length - 1] ?? 1;
        const leader: number[] = [...pre];
        const follower: number[] = [...pre];
        if (extendPrefixTermOn !== "none" && pre.length > 0) {
          (extendPrefixTermOn === "leader" ? leader : follower).push(...new Array<number>(extendLen).fill(last));
        }
        const later = [...terms].map((t) => t + last).sort((x, y) => x - y);
        later.forEach((t, i) => {
          const side = sides[i] ? leader : follower;
          side.push(...new Array<number>(runs[i] ?? 1).fill(t));
        });
        return { leader, follower, lcp: pre.length };
      });
    fc.assert(
      fc.property(arb, ({ leader, follower, lcp }) => {
        const L = makeLog(0, 0, leader);
        const F = makeLog(0, 0, follower);
        let next = L.lastIndex() + 1;
        let rounds = 0;
        for (;;) {
          rounds++;
          expect(rounds).toBeLessThanOrEqual(leader.length + 2);
          const prev = next - 1;
          const prevTerm = L.term(prev) ?? 0;
          if (F.matchTerm(prev, prevTerm)) {
            expect(prev).toBe(lcp);
            return;
          }
          // The follower's rejection (as in handleAppend) and the leader's use of it (as in
          // handleAppendRejection and Progress.maybeDecrTo with match 0).
          const hint = F.findConflictByTerm(Math.min(prev, F.lastIndex()), prevTerm);
          const hintTerm = F.term(hint) ?? 0;
          const j = hintTerm > 0 ? L.findConflictByTerm(hint, hintTerm) : hint;
          const newNext = Math.max(Math.min(prev, j + 1), 1);
          expect(newNext).toBeLessThan(next);
          expect(newNext - 1).toBeGreaterThanOrEqual(lcp); // never skips below the common prefix
          next = newNext;
        }
      }),
      { numRuns: 1000 },
    );
  });
});

// ------------------------------------------------------------------------------------------ leader connection ended

describe("raft: peerDisconnected (the leader's connection ended)", () => {
  /** ticksUntilLeader ticks the live nodes one tick at a time, settling after each, until one of them leads. */
  function ticksUntilLeader(c: TestCluster, live: readonly NodeId[], max: number): number {
    for (let t = 1; t <= max; t++) {
      for (const id of live) c.node(id).tick();
      c.settle();
      if (live.some((id) => c.node(id).status().role === "leader")) return t;
    }
    return Number.POSITIVE_INFINITY;
  }

  it("raft: followers told that their leader's connection ended elect a new leader at the next tick, in the next term", () => {
    const c = new TestCluster([n1, n2, n3]);
    const term = c.elect(n1).status().term;
    c.isolated.add(n1); // the leader's process is gone
    c.node(n2).peerDisconnected(n1);
    c.node(n3).peerDisconnected(n1);
    expect(c.node(n2).status().lead).toBe(NO_NODE);
    // n2 ranks first among the followers: it campaigns at the next tick and wins in it.
    expect(ticksUntilLeader(c, [n2, n3], 10)).toBe(1);
    const leader = [n2, n3].find((id) => c.node(id).status().role === "leader");
    expect(leader && c.node(leader).status().term).toBe(term + 1);
  });

  it("raft: without the notice the same followers wait out their election timeout (the control)", () => {
    const c = new TestCluster([n1, n2, n3]);
    c.elect(n1);
    c.isolated.add(n1);
    expect(ticksUntilLeader(c, [n2, n3], 30)).toBeGreaterThanOrEqual(10);
  });

  it("raft: a reset connection with a live leader moves no term: the pre-vote is ignored by nodes that still hear the leader", () => {
    const c = new TestCluster([n1, n2, n3]);
    const term = c.elect(n1).status().term;
    c.node(n2).peerDisconnected(n1);
    for (let t = 0; t < 3; t++) {
      c.node(n2).tick(); // only n2's clock moves: no heartbeat reaches it before it campaigns
      c.settle();
    }
    expect(c.sent.some((m) => m.type === MessageType.PreVote && m.from === n2)).toBe(true);
    expect(c.sent.some((m) => m.type === MessageType.PreVoteResp && m.to === n2 && !m.reject)).toBe(false);
    for (const id of [n1, n2, n3]) expect(c.node(id).status().term).toBe(term);
    expect(c.node(n1).status().role).toBe("leader");
    // The leader's next heartbeat makes n2 its follower again.
    for (let t = 0; t < 2; t++) c.node(n1).tick();
    c.settle();
    expect(c.node(n2).status()).toMatchObject({ role: "follower", lead: n1, term });
  });

  /** lagOneEntry has `leader` commit one entry while `lagging` is isolated; it leaves `lagging` isolated. */
  function lagOneEntry(c: TestCluster, leader: NodeId, lagging: NodeId): void {
    c.isolated.add(lagging);
    c.node(leader).propose([new TextEncoder().encode("x")]);
    c.settle();
  }

  /** preCandidateTicks maps each node to the tick at which it first became a pre-candidate. */
  function preCandidateTicks(c: TestCluster, live: readonly NodeId[], max: number): Map<NodeId, number> {
    const first = new Map<NodeId, number>();
    for (let t = 1; t <= max && !live.some((id) => c.node(id).status().role === "leader"); t++) {
      for (const id of live) c.node(id).tick();
      for (const id of live) if (!first.has(id) && c.node(id).status().role !== "follower") first.set(id, t);
      c.settle();
    }
    return first;
  }

  it("raft: followers with identical random draws, told at the same tick, campaign in rank order and elect in one term (no split vote)", () => {
    // Every node draws the same numbers: with a random early delay both followers asked in the same
    // tick, granted each other's pre-vote, split the vote in the next term and waited out a whole
    // election timeout. At the defaults (electionTick 30) a slot is 5 ticks.
    for (const draw of [0, 1, 2, 7, 9]) {
      const c = new TestCluster([n1, n2, n3], { electionTick: 30, random: { nextInt: (max) => draw % max } });
      const term = c.elect(n1).status().term;
      c.isolated.add(n1);
      c.node(n2).peerDisconnected(n1);
      c.node(n3).peerDisconnected(n1);
      const first = preCandidateTicks(c, [n2, n3], 30);
      expect(first.get(n2)).toBe(1); // rank 0: the next tick
      expect(first.has(n3)).toBe(false); // n2 won before n3's slot (tick 6) came
      expect(c.node(n2).status()).toMatchObject({ role: "leader", term: term + 1 });
      expect(c.node(n3).status()).toMatchObject({ role: "follower", lead: n2, term: term + 1 });
    }
  });

  it("raft: two followers whose pre-votes cross (the first-ranked was told a slot late) elect in one term: the later id yields", () => {
    for (const draw of [0, 3, 8]) {
      const c = new TestCluster([n1, n2, n3], { electionTick: 30, random: { nextInt: (max) => draw % max } });
      const term = c.elect(n1).status().term;
      c.isolated.add(n1);
      c.node(n3).peerDisconnected(n1); // n3 (rank 1) campaigns 1 + 5 ticks from now
      for (let t = 0; t < 5; t++) c.node(n3).tick();
      c.node(n2).peerDisconnected(n1); // n2 (rank 0) a slot late: both now ask at the next tick
      const first = preCandidateTicks(c, [n2, n3], 30);
      expect(first.get(n2)).toBe(1);
      expect(first.get(n3)).toBe(1);
      // Each got the other's pre-vote while a pre-candidate itself: n3 granted n2's, n2 refused n3's.
      expect(c.node(n2).status()).toMatchObject({ role: "leader", term: term + 1 });
      expect(c.node(n3).status()).toMatchObject({ role: "follower", lead: n2, term: term + 1 });
    }
  });

  it("raft: a pre-candidate grants a later id's crossing pre-vote when that log is better, and that one leads", () => {
    const c = new TestCluster([n1, n2, n3], { electionTick: 30, random: { nextInt: () => 0 } });
    const term = c.elect(n1).status().term;
    lagOneEntry(c, n1, n2); // n2 misses an entry that n1 and n3 commit
    c.isolated.delete(n2);
    c.isolated.add(n1);
    c.node(n3).peerDisconnected(n1);
    for (let t = 0; t < 5; t++) c.node(n3).tick();
    c.node(n2).peerDisconnected(n1);
    const first = preCandidateTicks(c, [n2, n3], 30);
    expect(first.get(n2)).toBe(1);
    expect(first.get(n3)).toBe(1);
    expect(c.node(n3).status()).toMatchObject({ role: "leader", term: term + 1 });
  });

  it("raft: property: whatever the notices' spread, the draws and which follower lags, a crashed leader's successor is elected in the next term", () => {
    const n5 = nodeId("n5");
    fc.assert(
      fc.property(
        fc.constantFrom(3, 5),
        fc.integer({ min: 0, max: 4 }),
        fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 5, maxLength: 5 }),
        fc.option(fc.integer({ min: 0, max: 3 })),
        fc.integer({ min: 0, max: 1000 }),
        (size, leaderAt, delays, laggingAt, draw) => {
          const ids = [n1, n2, n3, n4, n5].slice(0, size);
          const c = new TestCluster(ids, { electionTick: 30, random: { nextInt: (max) => draw % max } });
          const leader = ids[leaderAt % size] as NodeId;
          const term = c.elect(leader).status().term;
          const live = ids.filter((id) => id !== leader);
          const lagging = laggingAt === null ? undefined : live[laggingAt % live.length];
          if (lagging) {
            lagOneEntry(c, leader, lagging);
            c.isolated.delete(lagging);
          }
          c.isolated.add(leader);
          // Each follower hears of the crash after its own delay in ticks.
          for (let t = 0; t <= 60; t++) {
            live.forEach((id, k) => {
              if (t === delays[k]) c.node(id).peerDisconnected(leader);
            });
            for (const id of live) c.node(id).tick();
            c.settle();
            if (live.some((id) => c.node(id).status().role === "leader")) break;
          }
          const winner = live.find((id) => c.node(id).status().role === "leader");
          expect(winner).toBeDefined();
          expect(winner && c.node(winner).status().term).toBe(term + 1);
          if (lagging) expect(winner).not.toBe(lagging);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("raft: a first-ranked pre-candidate that cannot win (a one-way cut) refuses a later id only in its first round: a leader within two timeouts", () => {
    // A second reader's schedule: n5 leads, n4 is down, n5 crashes, n1 -> n3 loses every message.
    // n1 (rank 0) gets only n2's grant; n2 could win with n3 and n1, and n1 refused it. Refusing in
    // every round, n1 kept n2 from ever winning (no leader in 2,000 ticks).
    const n5 = nodeId("n5");
    const ids = [n1, n2, n3, n4, n5];
    const c = new TestCluster(ids, { electionTick: 30, random: { nextInt: () => 0 } });
    c.elect(n5);
    c.isolated.add(n4);
    c.isolated.add(n5);
    c.cuts.add(`${n1}>${n3}`);
    const live = [n1, n2, n3];
    for (const id of live) c.node(id).peerDisconnected(n5);
    // electionTick 30 and draws of 0: a timeout is 30 ticks.
    expect(ticksUntilLeader(c, live, 4 * 30)).toBeLessThanOrEqual(3 * 30);
    const leader = live.find((id) => c.node(id).status().role === "leader");
    expect(leader).toBeDefined();
  });

  it("raft: five voters with identical draws: the lowest-ranked live follower leads in the next term, within a tick", () => {
    const n5 = nodeId("n5");
    const ids = [n1, n2, n3, n4, n5];
    const c = new TestCluster(ids, { electionTick: 30, random: { nextInt: () => 0 } });
    const term = c.elect(n2).status().term;
    c.isolated.add(n2);
    const live = ids.filter((id) => id !== n2);
    for (const id of live) c.node(id).peerDisconnected(n2);
    const first = preCandidateTicks(c, live, 30);
    expect([...first]).toEqual([[n1, 1]]);
    expect(c.node(n1).status()).toMatchObject({ role: "leader", term: term + 1 });
  });

  it("raft: a rank-0 follower whose log is behind is refused, and the next rank wins a slot later in the next term", () => {
    const c = new TestCluster([n1, n2, n3], { electionTick: 30, random: { nextInt: () => 0 } });
    const term = c.elect(n1).status().term;
    lagOneEntry(c, n1, n2); // n2 misses an entry that n1 and n3 commit
    expect(c.node(n3).status().commit).toBeGreaterThan(c.node(n2).status().commit);
    c.isolated.delete(n2);
    c.isolated.add(n1); // n1 crashes before n2 catches up
    c.node(n2).peerDisconnected(n1);
    c.node(n3).peerDisconnected(n1);
    const first = preCandidateTicks(c, [n2, n3], 30);
    expect(first.get(n2)).toBe(1);
    expect(first.get(n3)).toBe(6); // 1 + one slot (30 / 6 = 5 ticks)
    expect(c.node(n3).status()).toMatchObject({ role: "leader", term: term + 1 });
  });

  it("raft: a notice about a peer that is not the leader, or to the leader itself, changes nothing", () => {
    const c = new TestCluster([n1, n2, n3]);
    const term = c.elect(n1).status().term;
    c.node(n2).peerDisconnected(n3);
    c.node(n1).peerDisconnected(n2);
    for (let t = 0; t < 9; t++) {
      c.node(n2).tick(); // below n2's election timeout (10 + 1 ticks)
      c.settle();
    }
    expect(c.sent.some((m) => m.type === MessageType.PreVote && m.from === n2)).toBe(false);
    expect(c.node(n2).status()).toMatchObject({ role: "follower", lead: n1, term });
    expect(c.node(n1).status().role).toBe("leader");
  });
});

describe("raft: cheap accessors", () => {
  it("voterRank and term agree with status(): the rank is the index among the sorted voters", () => {
    const ids = ["n3", "n1", "n4", "n2"].map(nodeId);
    const c = new TestCluster(ids, {}, [nodeId("n4")]);
    for (const id of ids) {
      const raw = c.node(id);
      const st = raw.status();
      const { rank, voters } = raw.voterRank(id);
      expect(voters).toBe(st.voters.length);
      expect(rank).toBe(st.voters.indexOf(id));
      expect(raw.term()).toBe(st.term);
    }
    expect(c.node(nodeId("n4")).voterRank(nodeId("n4")).rank).toBe(-1);
  });
});
