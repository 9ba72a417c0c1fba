import { describe, expect, it } from "vitest";
import {
  bootstrapEntries,
  DamagedStateError,
  type Entry,
  EntryKind,
  ImpossibleMessageError,
  type Message,
  MessageType,
  NO_NODE,
  type NodeId,
  nodeId,
  RawNode,
} from "../../../src/raft/index.js";
import { MemoryStorage } from "../../sim/memory-storage.js";

// The DESIGN note "Impossible peer messages" at Raft.step: each message no correct peer sends is
// refused with ImpossibleMessageError and leaves the node as it was, except a heartbeat commit
// beyond the node's own log from its leader, which means this node's log is damaged.

const enc = new TextEncoder();
const n1 = nodeId("n1");
const n2 = nodeId("n2");
const n3 = nodeId("n3");

/** Trio is three RawNodes on one in-memory network, n1 elected and one entry committed. */
class Trio {
  readonly nodes = new Map<NodeId, RawNode>();
  private readonly storages = new Map<NodeId, MemoryStorage>();
  private queue: Message[] = [];

  constructor() {
    const boot = bootstrapEntries([n1, n2, n3]);
    [n1, n2, n3].forEach((id, k) => {
      const storage = new MemoryStorage({ hardState: { term: 1, vote: NO_NODE, commit: boot.length }, entries: boot });
      this.storages.set(id, storage);
      this.nodes.set(id, new RawNode({ id, electionTick: 10, heartbeatTick: 1, random: { nextInt: (max) => k % max } }, storage.load()));
    });
    this.node(n1).campaign();
    this.settle();
    this.node(n1).propose([enc.encode("x")]);
    this.settle();
  }

  node(id: NodeId): RawNode {
    const raw = this.nodes.get(id);
    if (!raw) throw new Error(`no ${id}`);
    return raw;
  }

  settle(): void {
    for (let i = 0; i < 100; i++) {
      let busy = false;
      for (const [id, raw] of this.nodes) {
        if (!raw.hasReady()) continue;
        busy = true;
        const rd = raw.ready();
        this.storages.get(id)?.save(rd);
        this.queue.push(...rd.messages);
        raw.advance(rd);
      }
      const q = this.queue;
      this.queue = [];
      for (const m of q) this.node(m.to).step(m);
      if (!busy && q.length === 0) return;
    }
    throw new Error("cluster did not settle");
  }

  /** snapshot is what a test compares before and after a refused message. */
  view(id: NodeId) {
    const raw = this.node(id);
    const st = raw.status();
    return { term: st.term, lead: st.lead, role: st.role, commit: st.commit, last: st.lastIndex, hasReady: raw.hasReady() };
  }

}

function msg(fields: Partial<Message> & Pick<Message, "type" | "from" | "to" | "term">): Message {
  return { logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...fields };
}

function refusal(f: () => void): ImpossibleMessageError {
  try {
    f();
  } catch (err) {
    if (err instanceof ImpossibleMessageError) return err;
    throw err;
  }
  throw new Error("expected an ImpossibleMessageError");
}

describe("raft: impossible peer messages are the sender's fault", () => {
  it("raft: a heartbeat from a non-leader in the leader's term, committing beyond the follower's log, is refused and the follower carries on", () => {
    const c = new Trio();
    const before = c.view(n2);
    expect(before.lead).toBe(n1);
    const err = refusal(() => c.node(n2).step(msg({ type: MessageType.Heartbeat, from: n3, to: n2, term: before.term, commit: before.last + 1000 })));
    expect(err.from).toBe(n3);
    expect(err.type).toBe(MessageType.Heartbeat);
    expect(err.message).toContain("one leader");
    expect(c.view(n2)).toEqual(before);
  });

  it("raft: an append from a non-leader in the leader's term (a forged write) is refused and not appended", () => {
    const c = new Trio();
    const before = c.view(n2);
    const forged: Entry = { term: before.term, index: before.last + 1, kind: EntryKind.Normal, data: enc.encode("forged") };
    const lastTerm = c.node(n2).logEntry(before.last)?.term ?? 0;
    refusal(() =>
      c.node(n2).step(msg({ type: MessageType.App, from: n3, to: n2, term: before.term, index: before.last, logTerm: lastTerm, entries: [forged], commit: before.last + 1 })),
    );
    expect(c.view(n2)).toEqual(before);
    expect(c.node(n2).logEntry(before.last + 1)).toBeUndefined();
  });

  it("raft: the same heartbeat from the leader itself is taken (the rule is about the sender, not the message)", () => {
    const c = new Trio();
    const before = c.view(n2);
    c.node(n2).step(msg({ type: MessageType.Heartbeat, from: n1, to: n2, term: before.term, commit: before.commit }));
    expect(c.node(n2).hasReady()).toBe(true);
  });

  it("raft: a snap from a non-leader in the leader's term is refused", () => {
    const c = new Trio();
    const before = c.view(n2);
    const err = refusal(() => c.node(n2).step(msg({ type: MessageType.Snap, from: n3, to: n2, term: before.term })));
    expect(err.type).toBe(MessageType.Snap);
    expect(c.view(n2)).toEqual(before);
  });

  it("raft: the leader's term survives a lost pre-vote: an append from another node in that term is still refused", () => {
    const c = new Trio();
    const term = c.view(n2).term;
    // n2 loses contact and campaigns (pre-vote keeps the term): it no longer names a leader, but term `term` had one.
    c.node(n2).campaign();
    expect(c.node(n2).status().lead).toBe(NO_NODE);
    refusal(() => c.node(n2).step(msg({ type: MessageType.Heartbeat, from: n3, to: n2, term })));
  });

  it("raft: an append whose entries are not contiguous after (index, logTerm), or whose terms go backwards or pass the message's, is refused", () => {
    const c = new Trio();
    const before = c.view(n2);
    const last = before.last;
    const t = before.term;
    const logTerm = c.node(n2).logEntry(last)?.term ?? 0;
    expect(logTerm).toBe(t);
    expect(t).toBeGreaterThan(1);
    const e = (index: number, term: number): Entry => ({ term, index, kind: EntryKind.Normal, data: new Uint8Array(0) });
    const shapes: { entries: Entry[]; logTerm: number; want: string }[] = [
      { entries: [e(last + 2, t)], logTerm, want: "not" },
      { entries: [e(last + 1, t), e(last + 3, t)], logTerm, want: "not" },
      { entries: [e(last + 1, t + 1)], logTerm, want: "outside" },
      { entries: [e(last + 1, t - 1)], logTerm: t, want: "outside" },
      { entries: [], logTerm: t + 1, want: "later than" },
    ];
    for (const s of shapes) {
      const err = refusal(() => c.node(n2).step(msg({ type: MessageType.App, from: n1, to: n2, term: t, index: last, logTerm: s.logTerm, entries: s.entries })));
      expect(err.reason).toContain(s.want);
      expect(c.view(n2)).toEqual(before);
    }
  });

  it("raft: a timeout-now from a member that does not lead the term is refused: no election", () => {
    const c = new Trio();
    const before = c.view(n2);
    const err = refusal(() => c.node(n2).step(msg({ type: MessageType.TimeoutNow, from: n3, to: n2, term: before.term })));
    expect(err.message).toContain("only the leader");
    expect(c.view(n2)).toEqual(before);
  });

  it("raft: a timeout-now from a later term is refused before the term moves", () => {
    const c = new Trio();
    const before = c.view(n2);
    refusal(() => c.node(n2).step(msg({ type: MessageType.TimeoutNow, from: n1, to: n2, term: before.term + 5 })));
    expect(c.view(n2)).toEqual(before);
  });

  it("raft: a timeout-now from the term's leader still starts the transfer election", () => {
    const c = new Trio();
    const term = c.view(n2).term;
    c.node(n2).step(msg({ type: MessageType.TimeoutNow, from: n1, to: n2, term }));
    expect(c.node(n2).status().role).toBe("candidate");
    expect(c.node(n2).status().term).toBe(term + 1);
  });

  it("raft: an append response beyond the leader's last index is refused and the leader keeps leading", () => {
    const c = new Trio();
    const before = c.view(n1);
    const err = refusal(() => c.node(n1).step(msg({ type: MessageType.AppResp, from: n2, to: n1, term: before.term, index: before.last + 1 })));
    expect(err.message).toContain("beyond this leader's last index");
    expect(c.view(n1)).toEqual(before);
    // The leader still replicates and commits.
    c.node(n1).propose([enc.encode("after")]);
    c.settle();
    expect(c.node(n1).status().role).toBe("leader");
    expect(c.node(n1).status().commit).toBe(before.commit + 1);
  });

  it("raft: an append response at exactly the leader's last index is an ordinary acknowledgement", () => {
    const c = new Trio();
    const before = c.view(n1);
    c.node(n1).step(msg({ type: MessageType.AppResp, from: n2, to: n1, term: before.term, index: before.last }));
    expect(c.node(n1).status().role).toBe("leader");
  });

  it("raft: a rejection whose hint is beyond the index it rejects is refused", () => {
    const c = new Trio();
    const before = c.view(n1);
    refusal(() =>
      c.node(n1).step(msg({ type: MessageType.AppResp, from: n2, to: n1, term: before.term, index: 1, reject: true, rejectHint: before.last })),
    );
    expect(c.view(n1)).toEqual(before);
  });

  it("raft: a granted read index from a member that does not lead the term is refused; from a later term too", () => {
    const c = new Trio();
    const before = c.view(n2);
    const ctx = enc.encode("r1");
    refusal(() => c.node(n2).step(msg({ type: MessageType.ReadIndexResp, from: n3, to: n2, term: before.term, index: 1, context: ctx })));
    refusal(() => c.node(n2).step(msg({ type: MessageType.ReadIndexResp, from: n1, to: n2, term: before.term + 1, index: 1, context: ctx })));
    expect(c.view(n2)).toEqual(before);
  });

  it("raft: a message that names the receiver as its sender is refused", () => {
    const c = new Trio();
    const before = c.view(n2);
    refusal(() => c.node(n2).step(msg({ type: MessageType.Heartbeat, from: n2, to: n2, term: before.term })));
    expect(c.view(n2)).toEqual(before);
  });
});

describe("raft: impossible peer messages that mean this node's own state is damaged", () => {
  it("raft: a heartbeat from the term's leader committing beyond this node's last index stops it with DamagedStateError", () => {
    const c = new Trio();
    const before = c.view(n2);
    let err: unknown;
    try {
      c.node(n2).step(msg({ type: MessageType.Heartbeat, from: n1, to: n2, term: before.term, commit: before.last + 1 }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DamagedStateError);
    expect(String(err)).toContain("lost entries");
  });

  it("raft: an append's commit beyond what it verified is clamped, never fatal (as etcd)", () => {
    const c = new Trio();
    const before = c.view(n2);
    const lastTerm = c.node(n2).logEntry(before.last)?.term ?? 0;
    c.node(n2).step(msg({ type: MessageType.App, from: n1, to: n2, term: before.term, index: before.last, logTerm: lastTerm, commit: before.last + 1000 }));
    expect(c.node(n2).status().commit).toBe(before.last);
  });
});
