/**
 * Members take their local snapshots at different indexes (RaftNode.snapshotPhase), so while one
 * serialises and writes the state the other two still form a quorum that is not doing so.
 */
import { describe, expect, it } from "vitest";
import { type RaftNode, snapshotDue } from "../../../src/node/raft-node.js";
import type { NodeId } from "../../../src/raft/index.js";
import { encodeKvCommand } from "../../integration/kv-state-machine.js";
import { drive, IDS, leaderOf, fakeClusterPerTest, until } from "./fake-cluster.js";

describe("snapshotDue", () => {
  it("with phase 0, due at each multiple of the interval", () => {
    const due = [];
    let last = 0;
    for (let i = 1; i <= 40; i++) {
      if (snapshotDue(i, last, 10, 0)) {
        due.push(i);
        last = i;
      }
    }
    expect(due).toEqual([10, 20, 30, 40]);
  });

  it("with a phase, due at phase + k·every, never sooner than half an interval after the last", () => {
    const walk = (phase: number, start: number) => {
      const due = [];
      let last = start;
      for (let i = start + 1; i <= 45; i++) {
        if (snapshotDue(i, last, 10, phase)) {
          due.push(i);
          last = i;
        }
      }
      return due;
    };
    expect(walk(3, 0)).toEqual([13, 23, 33, 43]);
    expect(walk(6, 0)).toEqual([6, 16, 26, 36]);
    // A snapshot installed at 15 or 22 (off the phase): the next is the first boundary at least 5 later.
    expect(walk(3, 15)).toEqual([23, 33, 43]);
    expect(walk(3, 22)).toEqual([33, 43]);
  });

  it("an applied index that jumps over several boundaries gives one snapshot", () => {
    expect(snapshotDue(95, 10, 10, 3)).toBe(true);
    expect(snapshotDue(96, 95, 10, 3)).toBe(false);
  });
});

describe("node: staggered snapshots", { timeout: 30_000 }, () => {
  const clusters = fakeClusterPerTest();

  it("three members snapshotting every 30 entries do so at three different indexes, 10 apart", async () => {
    const every = 30;
    const cl = clusters.start(every);
    await until("leader", () => leaderOf(cl) !== undefined);
    const leader = cl.nodes.get(leaderOf(cl) as NodeId) as RaftNode;
    const taken = new Map<NodeId, number[]>(IDS.map((id) => [id, []]));
    for (let i = 0; i < 100; i++) {
      await drive(`put ${i}`, leader.propose(encodeKvCommand({ op: "put", key: `k${i}`, value: "v" })));
      // One entry at a time, so each member is caught up (and may start a snapshot) at every index.
      await until("all applied", () => IDS.every((id) => (cl.nodes.get(id) as RaftNode).status().applied === leader.status().applied));
      for (const id of IDS) {
        const at = (cl.nodes.get(id) as RaftNode).snapshotIndex();
        const seen = taken.get(id) as number[];
        if (at > 0 && seen.at(-1) !== at) seen.push(at);
      }
    }
    // The k-th member by id snapshots 10·k entries past each multiple of 30.
    const residues = IDS.map((id) => new Set((taken.get(id) as number[]).slice(1).map((i) => i % every)));
    for (const [k, r] of residues.entries()) expect([...r], IDS[k]).toEqual([(k * every) / IDS.length]);
    for (const id of IDS) expect((taken.get(id) as number[]).length, id).toBeGreaterThanOrEqual(3);
  });
});
