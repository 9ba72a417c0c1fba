/**
 * The typed events a RaftNode emits (src/node/events.ts): real RaftNodes on MemoryLogStores, with
 * the simulator's virtual-time scheduler, so elections and deliveries happen in a fixed order.
 */
import { describe, expect, it } from "vitest";
import { READS_ANSWERED_PER_TASK } from "../../../src/node/raft-node.js";
import { bootstrapEntries, type NodeId, nodeId, Role } from "../../../src/raft/index.js";
import { MemoryLogStore, StorageFailedError } from "../../../src/storage/index.js";
import { KvStateMachine } from "../../integration/kv-state-machine.js";
import { Cluster, type Seen } from "./tick-cluster.js";

const names = (seen: readonly Seen[]) => seen.map((s) => s.name);

describe("node: typed events", () => {
  it("node: a lone node reports its election, each applied entry in order, and its local snapshots", async () => {
    const n1 = nodeId("n1");
    const c = new Cluster([n1], { snapshotEveryEntries: 3 });
    await c.until("leader", () => c.leader() === n1);
    const { seen } = c.member(n1);
    const roles = seen.flatMap((s) => (s.name === "role" ? [s.event] : []));
    expect(roles.at(-1)?.role).toBe(Role.Leader);
    expect(roles.at(-1)?.status.lead).toBe(n1);
    // Each role event names the role before it: together they form one chain from follower.
    expect(roles[0]?.previous).toBe(Role.Follower);
    for (let i = 1; i < roles.length; i++) expect(roles[i]?.previous).toBe(roles[i - 1]?.role);
    const leaders = seen.flatMap((s) => (s.name === "leader" ? [s.event] : []));
    expect(leaders).toEqual([{ leader: n1, previous: "", term: roles.at(-1)?.term }]);
    for (let i = 0; i < 5; i++) await c.write(n1, `k${i}`);
    const applied = seen.flatMap((s) => (s.name === "applied" ? [s.event.index] : []));
    expect(applied).toEqual(Array.from({ length: applied.length }, (_, i) => (applied[0] ?? 0) + i));
    expect(applied.at(-1)).toBe(c.member(n1).machine.applied);
    const taken = seen.flatMap((s) => (s.name === "snapshotTaken" ? [s.event] : []));
    expect(taken.length).toBeGreaterThan(0);
    expect(taken.every((t) => t.bytes > 0 && t.index % 3 === 0)).toBe(true);
    expect(names(seen)).not.toContain("failure");
  });

  it("node: reads confirmed together are answered a slice per task, so a burst never holds the loop for all of them", async () => {
    const ids = ["n1", "n2", "n3"].map(nodeId);
    const c = new Cluster(ids);
    await c.until("leader", () => c.leader() !== undefined);
    const leader = c.leader() as NodeId;
    await c.write(leader, "before");
    const total = 2 * READS_ANSWERED_PER_TASK + 88;
    let answered = 0;
    const reads = Array.from({ length: total }, () =>
      c
        .member(leader)
        .node.readIndex()
        .then(() => {
          answered++;
        }),
    );
    const perTick: number[] = [];
    await c.until("every read answered", () => {
      perTick.push(answered - perTick.reduce((a, b) => a + b, 0));
      return answered === total;
    });
    await Promise.all(reads);
    expect(Math.max(...perTick)).toBe(READS_ANSWERED_PER_TASK);
    expect(perTick.filter((n) => n > 0).length).toBeGreaterThanOrEqual(3);
  });

  it("node: a follower behind a compacted log reports the installed snapshot before the entries after it", async () => {
    const ids = ["n1", "n2", "n3"].map(nodeId);
    const c = new Cluster(ids, { snapshotEveryEntries: 4 });
    await c.until("leader", () => c.leader() !== undefined);
    const leader = c.leader() as NodeId;
    const behind = ids.find((id) => id !== leader) as NodeId;
    c.cut.add(behind);
    for (let i = 0; i < 10; i++) await c.write(leader, `k${i}`);
    const before = c.member(behind).seen.length;
    c.cut.delete(behind);
    await c.until("caught up", () => c.member(behind).machine.applied === c.member(leader).machine.applied);
    const after = c.member(behind).seen.slice(before);
    const at = after.findIndex((s) => s.name === "snapshotInstalled");
    expect(at).toBeGreaterThanOrEqual(0);
    const installed = after[at] as Extract<Seen, { name: "snapshotInstalled" }>;
    expect(installed.event.meta.index).toBeGreaterThan(0);
    expect(installed.event.meta.conf.voters).toEqual(expect.arrayContaining(ids));
    // No entry at or below the snapshot is reported as applied after it.
    for (const s of after.slice(at + 1)) if (s.name === "applied") expect(s.event.index).toBeGreaterThan(installed.event.meta.index);
  });

  it("node: a sliced install runs a step per task, with ticks between the steps and no entry applied before its last step", async () => {
    const ids = ["n1", "n2", "n3"].map(nodeId);
    const RESTORE_STEPS = 5;
    const log: { what: "step" | "apply"; tick: number; applied: number }[] = [];
    let c: Cluster | undefined;
    /** SlicedKv restores in RESTORE_STEPS steps, the state taken on in the last, and logs each step and apply. */
    class SlicedKv extends KvStateMachine {
      override apply(entry: Parameters<KvStateMachine["apply"]>[0]) {
        log.push({ what: "apply", tick: c?.ticks ?? 0, applied: this.applied });
        return super.apply(entry);
      }
      beginRestore(data: Uint8Array) {
        let n = 0;
        return {
          step: () => {
            log.push({ what: "step", tick: c?.ticks ?? 0, applied: this.applied });
            if (++n < RESTORE_STEPS) return false;
            this.restore(data);
            return true;
          },
        };
      }
    }
    c = new Cluster(ids, { snapshotEveryEntries: 4, machine: () => new SlicedKv() });
    await c.until("leader", () => c.leader() !== undefined);
    const leader = c.leader() as NodeId;
    const behind = ids.find((id) => id !== leader) as NodeId;
    c.cut.add(behind);
    for (let i = 0; i < 10; i++) await c.write(leader, `k${i}`);
    const from = log.length;
    c.cut.delete(behind);
    await c.until("caught up", () => c.member(behind).machine.applied === c.member(leader).machine.applied);
    const after = log.slice(from);
    const steps = after.flatMap((e, i) => (e.what === "step" ? [i] : []));
    expect(steps.length).toBeGreaterThanOrEqual(RESTORE_STEPS);
    const first = steps[0] as number;
    const last = steps[RESTORE_STEPS - 1] as number;
    // The steps of one install are consecutive (no apply between them) and each ran in a later task than the one before.
    expect(after.slice(first, last + 1).every((e) => e.what === "step")).toBe(true);
    for (let i = first + 1; i <= last; i++) expect((after[i] as { tick: number }).tick).toBeGreaterThan((after[i - 1] as { tick: number }).tick);
    const installed = c.member(behind).seen.find((s) => s.name === "snapshotInstalled") as Extract<Seen, { name: "snapshotInstalled" }> | undefined;
    expect(installed).toBeDefined();
    // Entries applied after it come after the snapshot's index.
    for (const e of after.slice(last + 1)) if (e.what === "apply") expect(e.applied).toBeGreaterThanOrEqual(installed?.event.meta.index ?? 0);
    expect(c.member(behind).machine.get("k9")).toBe("v");
    expect(names(c.member(behind).seen)).not.toContain("failure");
  });

  it("node: while the store writes a local snapshot, the node keeps its leadership, commits writes and stays live; the snapshot is reported when stored", async () => {
    const ids = [nodeId("n1"), nodeId("n2"), nodeId("n3")];
    // Every store's compaction waits for the gate, as a large snapshot file takes its time to write.
    let open: () => void = () => {};
    const gate = new Promise<void>((r) => {
      open = r;
    });
    let compactions = 0;
    const boot = bootstrapEntries(ids);
    const slow = () => {
      const store = new MemoryLogStore({ hardState: { term: 1, vote: "" as NodeId, commit: boot.length }, entries: boot });
      const compact = store.compact.bind(store);
      store.compact = async (snap, options) => {
        compactions++;
        await gate;
        return compact(snap, options);
      };
      return store;
    };
    const c = new Cluster(ids, { snapshotEveryEntries: 4, store: slow });
    await c.until("a leader", () => c.leader() !== undefined);
    const leader = c.leader() as NodeId;
    const term = c.member(leader).node.status().term;
    for (let i = 0; i < 5; i++) await c.write(leader, `k${i}`);
    await c.until("a compaction under way", () => compactions > 0);
    // Ten election timeouts with the compaction held: writes still commit, nobody takes over.
    for (let i = 0; i < 20; i++) await c.write(leader, `during-${i}`);
    for (let i = 0; i < 200; i++) await c.tick();
    expect(c.leader()).toBe(leader);
    expect(c.member(leader).node.status().term).toBe(term);
    expect(names(c.member(leader).seen)).not.toContain("snapshotTaken");
    open();
    await c.until("the snapshot stored", () => names(c.member(leader).seen).includes("snapshotTaken"));
    for (const id of ids) expect(names(c.member(id).seen)).not.toContain("failure");
  });

  it("node: a storage failure stops the node and is reported once, as failure", async () => {
    const n1 = nodeId("n1");
    const cause = new Error("disk gone");
    const failing = () => {
      const store = new MemoryLogStore();
      store.save = () => Promise.reject(new StorageFailedError({ cause }));
      return store;
    };
    const c = new Cluster([n1], { store: failing });
    await c.until("failure", () => !c.member(n1).node.running());
    const failures = c.member(n1).seen.filter((s) => s.name === "failure");
    expect(failures).toHaveLength(1);
    expect((failures[0] as Extract<Seen, { name: "failure" }>).event.error).toBeInstanceOf(StorageFailedError);
  });

  it("node: a listener removed by the function on() returned hears nothing more", async () => {
    const n1 = nodeId("n1");
    const c = new Cluster([n1]);
    const heard: number[] = [];
    const off = c.member(n1).node.events.on("applied", (e) => heard.push(e.index));
    await c.until("leader", () => c.leader() === n1);
    await c.write(n1, "a");
    off();
    const count = heard.length;
    expect(count).toBeGreaterThan(0);
    await c.write(n1, "b");
    expect(heard).toHaveLength(count);
  });
});
