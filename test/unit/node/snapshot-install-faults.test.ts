/**
 * Faults while a follower installs a snapshot from the leader. The node restores the snapshot into
 * its machine (a slice per task) while its store writes it, and acknowledges only after both. Two
 * schedules that break that if it is wrong: a crash after the write is durable but before the
 * restore ends, and a store write that fails while the restore runs. Real RaftNodes on
 * MemoryLogStores, on virtual time.
 */
import { describe, expect, it } from "vitest";
import { RaftNode } from "../../../src/node/raft-node.js";
import { type NodeId, nodeId } from "../../../src/raft/index.js";
import { type LoadedState, MemoryLogStore, type SaveRequest } from "../../../src/storage/index.js";
import { KvStateMachine } from "../../integration/kv-state-machine.js";
import { Rng } from "../../sim/rng.js";
import { SimScheduler } from "../../sim/sim-scheduler.js";
import { Cluster, silent, TICK_MS } from "./tick-cluster.js";

const IDS = ["n1", "n2", "n3"].map(nodeId);

/** HeldKv restores a slice per step, but does not finish while `held` is true (a slow restore held open by the test). */
class HeldKv extends KvStateMachine {
  held = false;
  steps = 0;
  beginRestore(data: Uint8Array) {
    return {
      step: () => {
        this.steps++;
        if (this.held) return false;
        this.restore(data);
        return true;
      },
    };
  }
}

/** FailingStore refuses, once armed, any write that carries a snapshot from the leader (a full disk, say). */
class FailingStore extends MemoryLogStore {
  armed = false;
  override save(request: SaveRequest): Promise<void> {
    if (this.armed && request.snapshot !== undefined) return Promise.reject(new Error("disk full"));
    return super.save(request);
  }
}

/** behindCluster starts three nodes on stores made by `make`, cuts one off, writes until the leader stored a snapshot, and returns them with the cut-off node's machine and store. */
async function behindCluster<S extends MemoryLogStore>(make: (state: LoadedState) => S) {
  const stores = new Map<NodeId, S>();
  const c = new Cluster(IDS, {
    snapshotEveryEntries: 4,
    store: (id, state) => {
      const s = make(state);
      stores.set(id, s);
      return s;
    },
    machine: () => new HeldKv(),
  });
  const { leader, behind, snapIndex } = await c.leaveOneBehind(12);
  return { c, leader, behind, machine: c.member(behind).machine as HeldKv, store: stores.get(behind) as S, snapIndex };
}

const matchOf = (c: Cluster, leader: NodeId, id: NodeId) => c.member(leader).node.progress().get(id)?.match ?? 0;

describe("node: faults during a snapshot install", () => {
  it("node: a crash after the snapshot is durable but before the restore ends acknowledged nothing, and the restart finds the snapshot whole", async () => {
    const { c, leader, behind, machine, store, snapIndex } = await behindCluster((state) => new MemoryLogStore(state));
    machine.held = true;
    c.cut.delete(behind);
    await c.until("the snapshot durable on the follower", () => (store.snapshotMeta()?.index ?? 0) >= snapIndex);
    // The restore is still running: several slices, some after the write landed.
    const stepsAtDurable = machine.steps;
    for (let i = 0; i < 20; i++) await c.tick();
    expect(machine.steps).toBeGreaterThan(stepsAtDurable);
    expect(machine.get("k0")).toBeUndefined();
    // Nothing the node said moved the leader's view of it to the snapshot: it acknowledges after the restore.
    expect(matchOf(c, leader, behind)).toBeLessThan(snapIndex);
    // Crash: the process dies with the restore half done; what the store made durable is what it finds.
    await c.member(behind).node.stop();
    store.crash();
    const state = store.load();
    expect(state.snapshot?.meta.index).toBeGreaterThanOrEqual(snapIndex);
    const restarted = new KvStateMachine();
    const again = new RaftNode({ id: behind, tickMs: TICK_MS, electionTicks: 10, heartbeatTicks: 2, store, state, machine: restarted, sink: { send() {} }, logger: silent, scheduler: new SimScheduler(TICK_MS), random: new Rng(9) });
    expect(restarted.get("k0")).toBe("v");
    expect(restarted.applied).toBe(state.snapshot?.meta.index);
    // The whole state the leader sent, not a part of it.
    expect(Buffer.from(restarted.snapshot()).toString("hex")).toBe(Buffer.from(state.snapshot?.data ?? []).toString("hex"));
    expect(restarted.size()).toBeGreaterThan(4);
    await again.stop();
  });

  it("node: a store write that fails during the restore stops the node; the restore ends and nothing is acknowledged", async () => {
    const { c, leader, behind, machine, store, snapIndex } = await behindCluster((state) => new FailingStore(state));
    store.armed = true;
    machine.held = true;
    c.cut.delete(behind);
    const member = c.member(behind);
    await c.until("the follower stopped on the failed write", () => member.seen.some((s) => s.name === "failure"));
    const failure = member.seen.find((s) => s.name === "failure");
    expect(String((failure?.event as { error?: unknown } | undefined)?.error ?? failure?.event)).toContain("disk full");
    // The restore stops at its next slice rather than running on in a stopped node.
    const steps = machine.steps;
    for (let i = 0; i < 20; i++) await c.tick();
    expect(machine.steps).toBeLessThanOrEqual(steps + 1);
    machine.held = false;
    for (let i = 0; i < 20; i++) await c.tick();
    expect(machine.get("k0")).toBeUndefined();
    expect(member.node.running()).toBe(false);
    expect(store.snapshotMeta()?.index ?? 0).toBeLessThan(snapIndex);
    expect(matchOf(c, leader, behind)).toBeLessThan(snapIndex);
    // The two others carry on.
    await c.write(leader, "after");
    expect(c.member(leader).machine.get("after")).toBe("v");
  });
});
