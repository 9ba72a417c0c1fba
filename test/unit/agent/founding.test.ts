import { describe, expect, it } from "vitest";
import { ClusterExistsError } from "../../../src/agent/errors.js";
import { decideFounding, Founding, FOUNDING_LOG_INTERVAL_MS, FOUNDING_ROUND_INTERVAL_MS, type ProbeResult } from "../../../src/agent/founding.js";
import { type NodeId, nodeId } from "../../../src/raft/index.js";
import type { ProbeAnswer } from "../../../src/transport/index.js";

const n1 = nodeId("n1");
const n2 = nodeId("n2");
const n3 = nodeId("n3");
const SELF = { id: n1, session: "s1" };

const founding = (session: string): ProbeAnswer => ({ state: "founding", session });
const existing = (founders: Record<string, string> = {}, term = 5, lastIndex = 40): ProbeAnswer => ({
  state: "existing",
  term,
  lastIndex,
  founders: new Map(Object.entries(founders).map(([id, s]) => [nodeId(id), s])),
});
const down = new Error("peer n3 did not answer the probe (UNAVAILABLE)");
const round = (results: Record<string, ProbeResult>) => new Map(Object.entries(results).map(([id, r]) => [nodeId(id), r]));

describe("founding: one round of answers", () => {
  it("founding: every other member empty and founding too: found, with every session seen", () => {
    const decision = decideFounding(SELF, round({ n2: founding("s2"), n3: founding("s3") }));
    expect(decision).toEqual({ kind: "found", founders: new Map([[n1, "s1"], [n2, "s2"], [n3, "s3"]]) });
  });

  it("founding: a single-member cluster founds at once", () => {
    expect(decideFounding(SELF, new Map())).toEqual({ kind: "found", founders: new Map([[n1, "s1"]]) });
  });

  it("founding: a member holding state refuses, naming it, even when the rest are empty", () => {
    expect(decideFounding(SELF, round({ n2: founding("s2"), n3: existing() }))).toEqual({ kind: "refuse", peer: n3, term: 5, lastIndex: 40 });
    expect(decideFounding(SELF, round({ n2: down, n3: existing() }))).toMatchObject({ kind: "refuse", peer: n3 });
  });

  it("founding: a founder that saw this very session empty lets it found, whatever the others say", () => {
    const founders = { n1: "s1", n2: "s2", n3: "s3" };
    const decision = decideFounding(SELF, round({ n2: existing(founders, 1, 3), n3: existing({}, 2, 9) }));
    expect(decision).toEqual({ kind: "found", founders: new Map([[n1, "s1"], [n2, "s2"], [n3, "s3"]]) });
    expect(decideFounding(SELF, round({ n2: down, n3: existing(founders) }))).toMatchObject({ kind: "found" });
  });

  it("founding: a founder that saw an earlier process of this node (which may have lost its data) does not vouch for it", () => {
    const decision = decideFounding(SELF, round({ n2: existing({ n1: "s1-earlier", n2: "s2", n3: "s3" }), n3: founding("s3") }));
    expect(decision).toMatchObject({ kind: "refuse", peer: n2 });
  });

  it("founding: an unreachable member means wait, not a majority found (it may hold the cluster)", () => {
    const decision = decideFounding(SELF, round({ n2: founding("s2"), n3: down }));
    expect(decision).toEqual({ kind: "wait", waitingFor: new Map([[n3, down.message]]) });
  });

  it("founding: a member waiting to be added (bootstrap off) means wait", () => {
    const decision = decideFounding(SELF, round({ n2: founding("s2"), n3: { state: "joining" } }));
    expect(decision).toMatchObject({ kind: "wait" });
    expect(decideFounding(SELF, round({ n2: down, n3: down }))).toMatchObject({ kind: "wait" });
  });
});

/** FakeMembers answers probes from a table the test changes between rounds, and counts the rounds. */
class FakeMembers {
  answers = new Map<NodeId, ProbeResult>();
  rounds = 0;
  readonly logs: { fields: object; message: string }[] = [];
  nowMs = 0;

  founding(self: NodeId = n1): Founding {
    return new Founding({
      selfId: self,
      peers: [n2, n3].filter((p) => p !== self),
      probe: async (peer) => {
        const answer = this.answers.get(peer) ?? down;
        if (answer instanceof Error) throw answer;
        return answer;
      },
      logger: { info: (fields, message) => this.logs.push({ fields, message }) },
      sleep: async (ms) => {
        expect(ms).toBe(FOUNDING_ROUND_INTERVAL_MS);
        this.rounds++;
        this.nowMs += ms;
        if (this.rounds > 1000) throw new Error("founding never decided");
        this.onRound(this.rounds);
      },
      nowMs: () => this.nowMs,
    });
  }

  onRound: (round: number) => void = () => {};
}

describe("founding: rounds", () => {
  it("founding: waits while a member is down, then founds once it answers empty", async () => {
    const members = new FakeMembers();
    members.answers.set(n2, founding("s2"));
    members.onRound = (r) => {
      if (r === 40) members.answers.set(n3, founding("s3"));
    };
    const f = members.founding();
    expect(f.answer()).toBeUndefined();
    const done = f.awaitFounding();
    expect(f.answer()).toEqual({ state: "founding", session: f.session });
    const founders = await done;
    expect(members.rounds).toBe(40);
    expect([...founders.keys()].sort()).toEqual([n1, n2, n3]);
    // One line when it starts waiting, then one per FOUNDING_LOG_INTERVAL_MS (10 s = 40 rounds of 250 ms).
    expect(members.logs).toHaveLength(1);
    expect(members.logs[0]?.fields).toEqual({ waitingFor: { n3: down.message } });
  });

  it("founding: a node that waits says so again every FOUNDING_LOG_INTERVAL_MS, not every round", async () => {
    const members = new FakeMembers();
    members.answers.set(n2, founding("s2"));
    const roundsPerLog = FOUNDING_LOG_INTERVAL_MS / FOUNDING_ROUND_INTERVAL_MS;
    members.onRound = (r) => {
      if (r === 2 * roundsPerLog + 1) members.answers.set(n3, founding("s3"));
    };
    await members.founding().awaitFounding();
    // Logged at 0 ms, 10 s and 20 s of waiting.
    expect(members.logs).toHaveLength(3);
  });

  it("founding: refuses with ClusterExistsError naming the member and the repair procedure", async () => {
    const members = new FakeMembers();
    members.answers.set(n2, existing({}, 7, 123));
    const error = await members
      .founding()
      .awaitFounding()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClusterExistsError);
    expect(error).toMatchObject({ nodeId: n1, peer: n2, term: 7, lastIndex: 123 });
    const message = (error as Error).message;
    expect(message).toContain("raftmesh members remove n1");
    expect(message).toContain("--bootstrap false");
    expect(message).toContain("raftmesh members add n1");
    expect(message).toContain("raftmesh members promote n1");
    expect(message).toContain("Growing and repairing a cluster");
  });

  it("founding: answers say what the node holds, and a founder vouches only for the sessions it saw", () => {
    const f = new FakeMembers().founding();
    f.started(() => ({ term: 0, lastIndex: 0 }));
    expect(f.answer()).toEqual({ state: "joining" });
    const founders = new Map([[n1, f.session], [n2, "s2"], [n3, "s3"]]);
    f.started(() => ({ term: 1, lastIndex: 3 }), founders);
    expect(f.answer()).toEqual({ state: "existing", term: 1, lastIndex: 3, founders });
    f.follow(() => ({ term: 4, lastIndex: 17 }));
    expect(f.answer()).toEqual({ state: "existing", term: 4, lastIndex: 17, founders });
  });

  it("founding: three empty nodes starting together all found, the last one vouched for by a founder", async () => {
    const nodes = new Map<NodeId, Founding>();
    // c answers probes from the start, but its own probes get through only once `cReaches` is
    // set: its rounds come after a and b founded and wrote their entries (a slow machine).
    let cReaches = false;
    const make = (self: NodeId) =>
      new Founding({
        selfId: self,
        peers: [n1, n2, n3].filter((p) => p !== self),
        probe: async (peer) => {
          const answer = nodes.get(peer)?.answer();
          if (answer === undefined || (self === n3 && !cReaches)) throw down;
          return answer;
        },
        logger: { info: () => {} },
        sleep: () => new Promise((resolve) => setTimeout(resolve, 1)),
      });
    for (const id of [n1, n2, n3]) nodes.set(id, make(id));
    const [a, b, c] = [nodes.get(n1), nodes.get(n2), nodes.get(n3)] as [Founding, Founding, Founding];
    const cFounders = c.awaitFounding();
    const [foundersA, foundersB] = await Promise.all([a.awaitFounding(), b.awaitFounding()]);
    expect(foundersA.get(n3)).toBe(c.session);
    a.started(() => ({ term: 2, lastIndex: 5 }), foundersA);
    b.started(() => ({ term: 2, lastIndex: 5 }), foundersB);
    cReaches = true;
    // c now meets two members that hold state, and founds because they saw this very process empty.
    expect(await cFounders).toBe(foundersA);
  });

  it("founding: a node that lost its data after founding is a new session: the founders refuse it", async () => {
    const members = new FakeMembers();
    const restarted = members.founding();
    members.answers.set(n2, existing({ n1: "session-before-the-wipe", n2: "s2", n3: "s3" }, 3, 50));
    members.answers.set(n3, existing({}, 3, 50));
    await expect(restarted.awaitFounding()).rejects.toMatchObject({ name: "ClusterExistsError", peer: n2 });
  });
});
