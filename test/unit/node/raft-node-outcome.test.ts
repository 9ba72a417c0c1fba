/**
 * What a RaftNode tells the callers of proposals it can no longer follow (a fake-timer cluster of
 * real RaftNodes, fake-cluster.ts).
 */
import { describe, expect, it, vi } from "vitest";
import { status } from "@grpc/grpc-js";
import { toStatus } from "../../../src/api/errors.js";
import { METADATA_NOT_APPLIED } from "../../../src/common/metadata.js";
import { ProposalLostError, RemovedFromClusterError } from "../../../src/node/errors.js";
import type { RaftNode } from "../../../src/node/raft-node.js";
import { ConfChangeType, type NodeId, Role } from "../../../src/raft/index.js";
import { encodeKvCommand } from "../../integration/kv-state-machine.js";
import { drive, IDS, LINK_MS, leaderOf, settle, fakeClusterPerTest, TICK_MS, until } from "./fake-cluster.js";

describe("node: outcomes of proposals the node can no longer follow", { timeout: 30_000 }, () => {
  const clusters = fakeClusterPerTest();

  it("node: a deaf leader's write that the next leader committed and compacted is outcome-unknown, never ABORTED", async () => {
    const cl = clusters.start(4);
    await until("leader", () => leaderOf(cl) !== undefined);
    const old = leaderOf(cl) as NodeId;
    const peers = IDS.filter((id) => id !== old);
    // The leader hears nothing from its peers, while they still hear it.
    for (const p of peers) cl.cut.add(`${p}>${old}`);
    const x = settle((cl.nodes.get(old) as RaftNode).propose(encodeKvCommand({ op: "put", key: "x", value: "1" })));
    // It steps down (check quorum); the peers elect one of themselves, which commits x with its own entries.
    await until("new leader", () => peers.some((p) => cl.nodes.get(p)?.isLeader()));
    const next = leaderOf(cl) as NodeId;
    await until("x applied on the new leader", () => cl.machines.get(next)?.get("x") === "1");
    for (let i = 0; i < 8; i++) await drive(`k${i}`, (cl.nodes.get(next) as RaftNode).propose(encodeKvCommand({ op: "put", key: `k${i}`, value: "v" })));
    expect((cl.nodes.get(next) as RaftNode).snapshotIndex()).toBeGreaterThan(0);
    expect(x.done).toBe(false);
    // Healed, the old leader is behind the new leader's compacted log and installs its snapshot.
    cl.cut.clear();
    await until("old leader caught up", () => cl.machines.get(old)?.get("x") === "1");
    expect((cl.nodes.get(old) as RaftNode).snapshotIndex()).toBeGreaterThan(0);
    await until("x answered", () => x.done);
    expect(x.err).toBeInstanceOf(Error);
    expect(x.err).not.toBeInstanceOf(ProposalLostError);
    const st = toStatus(x.err);
    expect(status[st.code as status]).toBe("DEADLINE_EXCEEDED");
    expect(st.metadata?.get(METADATA_NOT_APPLIED)).toEqual([]);
  });

  it("node: a leader that removed itself fails its later pending writes at once, as outcome-unknown", async () => {
    const cl = clusters.start(10_000);
    await until("leader", () => leaderOf(cl) !== undefined);
    const old = leaderOf(cl) as NodeId;
    const node = cl.nodes.get(old) as RaftNode;
    const peers = IDS.filter((id) => id !== old);
    // A write of this term must commit before a membership change may be proposed.
    await drive("a", node.propose(encodeKvCommand({ op: "put", key: "a", value: "1" })));
    const removal = settle(node.proposeConfChange({ type: ConfChangeType.Remove, node: old }));
    // The removal reaches the peers; then the leader's own messages stop, so y never leaves it.
    await vi.advanceTimersByTimeAsync(LINK_MS);
    for (const p of peers) cl.cut.add(`${old}>${p}`);
    const y = settle(node.propose(encodeKvCommand({ op: "put", key: "y", value: "1" })));
    // The peers' acknowledgements of the removal come back: it commits and the leader steps down.
    await until("removal applied", () => removal.done);
    expect(removal.err).toBeUndefined();
    expect(node.status().role).not.toBe(Role.Leader);
    // y can never commit now; its caller hears so within a few ticks, not at its deadline.
    await vi.advanceTimersByTimeAsync(3 * TICK_MS);
    expect(y.done).toBe(true);
    expect(y.err).toBeInstanceOf(RemovedFromClusterError);
    expect(toStatus(y.err).metadata?.get(METADATA_NOT_APPLIED)).toEqual([]);
  });
});
