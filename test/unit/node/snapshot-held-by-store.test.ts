/**
 * Snapshot bytes live in the store, not in the Raft core: once a snapshot is stored (taken here or
 * installed from the leader) the core keeps its metadata only, and a Snap message is filled from
 * the store before it leaves. Real RaftNodes on MemoryLogStores, on virtual time.
 */
import { describe, expect, it } from "vitest";
import { type NodeId, nodeId, type Snapshot, type SnapshotMeta } from "../../../src/raft/index.js";
import { MemoryLogStore } from "../../../src/storage/index.js";
import { RaftNode } from "../../../src/node/raft-node.js";
import { KvStateMachine } from "../../integration/kv-state-machine.js";
import { Rng } from "../../sim/rng.js";
import { SimScheduler } from "../../sim/sim-scheduler.js";
import { Cluster, silent, TICK_MS } from "./tick-cluster.js";

const IDS = ["n1", "n2", "n3"].map(nodeId);

/** StoreThatLoses is a MemoryLogStore whose first `lose` reads of a snapshot find nothing, as after a newer one replaced it. */
class StoreThatLoses extends MemoryLogStore {
  reads = 0;
  constructor(
    state: ConstructorParameters<typeof MemoryLogStore>[0],
    private lose: number,
  ) {
    super(state);
  }
  override loadSnapshot(meta: Pick<SnapshotMeta, "term" | "index">): Promise<Snapshot | undefined> {
    this.reads++;
    if (this.lose > 0) {
      this.lose--;
      return Promise.resolve(undefined);
    }
    return super.loadSnapshot(meta);
  }
}

/** kvOf is a node's whole key-value state, for comparing two nodes. */
function kvOf(c: Cluster, id: NodeId): string {
  return Buffer.from(c.member(id).machine.snapshot()).toString("hex");
}

describe("node: snapshot bytes held by the store", () => {
  it("node: once stored, a snapshot's bytes leave the core; a follower behind still gets the whole state, read back from the store", async () => {
    const stores = new Map<NodeId, StoreThatLoses>();
    const c = new Cluster(IDS, {
      snapshotEveryEntries: 4,
      store: (id, state) => {
        const s = new StoreThatLoses(state, 0);
        stores.set(id, s);
        return s;
      },
    });
    const { leader, behind } = await c.leaveOneBehind(12);
    c.cut.delete(behind);
    await c.until("caught up", () => c.member(behind).machine.applied === c.member(leader).machine.applied);
    expect(c.member(behind).seen.some((s) => s.name === "snapshotInstalled")).toBe(true);
    expect(stores.get(leader)?.reads).toBeGreaterThan(0);
    expect(kvOf(c, behind)).toBe(kvOf(c, leader));
    expect(c.member(behind).machine.get("k0")).toBe("v");
    // The follower released the installed snapshot's bytes too; nobody holds a copy beside its store.
    for (const id of IDS) expect(c.member(id).node.snapshotBytesHeld()).toBe(0);
  });

  it("node: a local snapshot whose file is still being written is sent from its chunks, not reported unreadable", async () => {
    const lines: { id: NodeId; msg: string }[] = [];
    let hold = false;
    let open: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    const reads: number[] = [];
    /** chunkBytes: by node, the size of each local snapshot handed to its store as chunks (a whole one counts -1). */
    const chunkBytes = new Map<NodeId, number[]>();
    /** SlowFileStore holds every local snapshot's write while `hold` is set, as a slow disk does a 27 MB file. */
    class SlowFileStore extends MemoryLogStore {
      constructor(
        state: ConstructorParameters<typeof MemoryLogStore>[0],
        private readonly id: NodeId,
      ) {
        super(state);
      }
      override async compact(...args: Parameters<MemoryLogStore["compact"]>): Promise<void> {
        const s = args[0];
        const mine = chunkBytes.get(this.id) ?? [];
        chunkBytes.set(this.id, mine);
        mine.push("chunks" in s ? s.chunks.reduce((n, c) => n + c.length, 0) : -1);
        if (hold) await gate;
        return super.compact(...args);
      }
      override loadSnapshot(meta: Pick<SnapshotMeta, "term" | "index">): Promise<Snapshot | undefined> {
        reads.push(meta.index);
        return super.loadSnapshot(meta);
      }
    }
    const c = new Cluster(IDS, {
      snapshotEveryEntries: 4,
      store: (id, state) => new SlowFileStore(state, id),
      logger: (id) => ({ ...silent, info: (_f: object, msg: string) => lines.push({ id, msg }), error: (_f: object, msg: string) => lines.push({ id, msg }) }),
    });
    await c.until("leader", () => c.leader() !== undefined);
    const leader = c.leader() as NodeId;
    const behind = IDS.find((id) => id !== leader) as NodeId;
    const lead = c.member(leader).node;
    c.cut.add(behind);
    hold = true;
    for (let i = 0; i < 12; i++) await c.write(leader, `k${i}`);
    await c.until("the leader's core compacted to a snapshot", () => lead.snapshotIndex() > 0);
    // The file is not written yet: the node holds the chunks the store was handed, never joined.
    const handed = chunkBytes.get(leader) ?? [];
    expect(handed.length).toBeGreaterThan(0);
    expect(handed[0]).toBeGreaterThan(0);
    expect(lead.snapshotBytesHeld()).toBe(handed[0]);
    c.cut.delete(behind);
    await c.until("caught up while the file is still being written", () => c.member(behind).machine.applied === c.member(leader).machine.applied, 1_000);
    expect(c.member(behind).seen.some((s) => s.name === "snapshotInstalled")).toBe(true);
    expect(kvOf(c, behind)).toBe(kvOf(c, leader));
    expect(reads).toEqual([]);
    expect(lines.filter((l) => l.id === leader && l.msg.includes("cannot be read back"))).toEqual([]);
    // Once written, the node holds no bytes of it.
    hold = false;
    open();
    await c.until("stored", () => lead.snapshotBytesHeld() === 0);
    expect(lines.some((l) => l.id === leader && l.msg === "took snapshot and compacted the log")).toBe(true);
  });

  it("node: a local snapshot's chunks are released only once stored: a follower sent the snapshot while its file was written, and one sent it after the release, both get the whole state", async () => {
    // Fails when the release comes before the store has the bytes (the stored snapshot is empty).
    const ids5 = ["n1", "n2", "n3", "n4", "n5"].map(nodeId);
    let hold = false;
    let open: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    /** FileLikeStore copies the chunks it is handed (as a file does) and holds the write while `hold` is set. */
    class FileLikeStore extends MemoryLogStore {
      override async compact(...args: Parameters<MemoryLogStore["compact"]>): Promise<void> {
        if (hold) await gate;
        return super.compact(...args);
      }
    }
    const released: { id: NodeId; chunks: Uint8Array[] }[] = [];
    const c = new Cluster(ids5, {
      snapshotEveryEntries: 4,
      store: (_id, state) => new FileLikeStore(state),
      // Detach every chunk, however small (releaseBuffers leaves small ones): the worst case for a send that shares them.
      releaseSnapshotChunks: (id) => (chunks) => {
        released.push({ id, chunks: [...chunks] });
        for (const ch of chunks) if (ch.byteLength > 0) structuredClone(ch.buffer, { transfer: [ch.buffer] });
      },
    });
    await c.until("leader", () => c.leader() !== undefined);
    const leader = c.leader() as NodeId;
    const [first, second] = ids5.filter((id) => id !== leader) as [NodeId, NodeId];
    const lead = c.member(leader).node;
    c.cut.add(first);
    c.cut.add(second);
    // A snapshot taken while the cluster formed (the configuration entries) was released already.
    await c.until("earlier snapshots stored", () => lead.snapshotBytesHeld() === 0);
    const before = released.filter((r) => r.id === leader).length;
    const compactedBefore = lead.snapshotIndex();
    hold = true;
    for (let i = 0; i < 12; i++) await c.write(leader, `k${i}`);
    await c.until("the leader's core compacted to a new snapshot", () => lead.snapshotIndex() > compactedBefore);
    expect(released.filter((r) => r.id === leader).length).toBe(before);
    // The first follower is sent the snapshot from its chunks while the file is written.
    c.cut.delete(first);
    await c.until("the first caught up", () => c.member(first).machine.applied === c.member(leader).machine.applied, 1_000);
    // Now the write ends and the chunks are released: emptied.
    hold = false;
    open();
    await c.until("stored", () => lead.snapshotBytesHeld() === 0);
    const leaderReleases = released.filter((r) => r.id === leader).slice(before);
    expect(leaderReleases.length).toBeGreaterThan(0);
    for (const r of leaderReleases) for (const ch of r.chunks) expect(ch.byteLength).toBe(0);
    // The second follower is sent the same snapshot after the release: whole, from the copy the
    // first send made or from the store, never from the emptied chunks.
    c.cut.delete(second);
    await c.until("the second caught up", () => c.member(second).machine.applied === c.member(leader).machine.applied, 1_000);
    for (const id of [first, second]) {
      expect(c.member(id).seen.some((e) => e.name === "snapshotInstalled")).toBe(true);
      expect(kvOf(c, id)).toBe(kvOf(c, leader));
      expect(c.member(id).seen.some((e) => e.name === "failure")).toBe(false);
    }
  });

  it("node: a snapshot the store cannot give back is not sent; the leader retries and the follower catches up", async () => {
    const lines: { id: NodeId; msg: string }[] = [];
    const c = new Cluster(IDS, {
      snapshotEveryEntries: 4,
      store: (_id, state) => new StoreThatLoses(state, 2),
      logger: (id) => ({ ...silent, info: (_fields: object, msg: string) => lines.push({ id, msg }), error: (_fields: object, msg: string) => lines.push({ id, msg }) }),
    });
    const { leader, behind } = await c.leaveOneBehind(12);
    c.cut.delete(behind);
    const t0 = c.ticks;
    await c.until("caught up", () => c.member(behind).machine.applied === c.member(leader).machine.applied, 1_000);
    // The current snapshot, not a replaced one: each failed read is logged as an error (a damaged file).
    const dropped = lines.filter((l) => l.id === leader && l.msg.startsWith("this node's current snapshot cannot be read back"));
    expect(dropped.length).toBe(2);
    // Each drop costs a snapshot retry (electionTicks = 10 ticks here): at least two of them.
    expect(c.ticks - t0).toBeGreaterThanOrEqual(20);
    expect(kvOf(c, behind)).toBe(kvOf(c, leader));
  });

  it("node: a current snapshot that cannot be read back (a damaged file) is replaced by a new one, which the follower gets", async () => {
    const lines: { id: NodeId; level: string; msg: string }[] = [];
    const damaged = new Map<NodeId, number>();
    /** DamagedStore cannot read back the first snapshot it is asked for, ever. */
    class DamagedStore extends MemoryLogStore {
      constructor(
        state: ConstructorParameters<typeof MemoryLogStore>[0],
        private readonly id: NodeId,
      ) {
        super(state);
      }
      override loadSnapshot(meta: Pick<SnapshotMeta, "term" | "index">): Promise<Snapshot | undefined> {
        if (!damaged.has(this.id)) damaged.set(this.id, meta.index);
        return damaged.get(this.id) === meta.index ? Promise.resolve(undefined) : super.loadSnapshot(meta);
      }
    }
    // Snapshots every 8 entries: the replacement must come at once, not at the next due one (4+ entries later).
    const c = new Cluster(IDS, {
      snapshotEveryEntries: 8,
      store: (id, state) => new DamagedStore(state, id),
      logger: (id) => ({ ...silent, info: (_f: object, msg: string) => lines.push({ id, level: "info", msg }), error: (_f: object, msg: string) => lines.push({ id, level: "error", msg }) }),
    });
    const { leader, behind, lead, snapIndex: first } = await c.leaveOneBehind(16);
    c.cut.delete(behind);
    await c.until("the damage noticed", () => lines.some((l) => l.id === leader && l.level === "error"));
    // One entry past the damaged snapshot is enough to take the new one at.
    await c.write(leader, "after");
    await c.until("a new snapshot", () => lead.snapshotIndex() > first, 10);
    await c.until("caught up", () => c.member(behind).machine.applied === c.member(leader).machine.applied, 1_000);
    expect(damaged.get(leader)).toBe(first);
    expect(kvOf(c, behind)).toBe(kvOf(c, leader));
    expect(lines.find((l) => l.id === leader && l.level === "error")?.msg).toBe("this node's current snapshot cannot be read back from the store; taking a new one to send instead");
  });

  it("node: a snapshot replaced by newer ones while it is read back is dropped, and the follower gets the newest", async () => {
    const lines: { id: NodeId; msg: string; index?: number }[] = [];
    /** GatedStore holds every snapshot read until the test opens the gate, while `held` is set. */
    let held = false;
    let open: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    const asked: number[] = [];
    class GatedStore extends MemoryLogStore {
      override async loadSnapshot(meta: Pick<SnapshotMeta, "term" | "index">): Promise<Snapshot | undefined> {
        asked.push(meta.index);
        if (held) await gate;
        return super.loadSnapshot(meta);
      }
    }
    const c = new Cluster(IDS, {
      snapshotEveryEntries: 4,
      store: (_id, state) => new GatedStore(state),
      logger: (id) => ({
        ...silent,
        info: (f: { index?: number }, msg: string) => lines.push({ id, msg, index: f.index }),
        error: (f: { index?: number }, msg: string) => lines.push({ id, msg, index: f.index }),
      }),
    });
    const { leader, behind, lead, snapIndex: first } = await c.leaveOneBehind(12);
    held = true;
    c.cut.delete(behind);
    await c.until("the leader reading its snapshot back", () => asked.includes(first));
    // While that read waits, the leader takes newer snapshots, each replacing the one before in its store.
    for (let i = 0; i < 12; i++) await c.write(leader, `later${i}`);
    await c.until("newer snapshots stored", () => lead.snapshotIndex() >= first + 8 && lead.snapshotBytesHeld() === 0);
    held = false;
    open();
    await c.until("caught up", () => c.member(behind).machine.applied === c.member(leader).machine.applied, 1_000);
    const gone = lines.filter((l) => l.id === leader && l.msg === "the snapshot to send is no longer stored; the leader sends its newest when it retries");
    expect(gone.map((l) => l.index)).toContain(first);
    expect(lines.some((l) => l.id === leader && l.msg.startsWith("this node's current snapshot cannot be read back"))).toBe(false);
    const installed = c.member(behind).seen.flatMap((s) => (s.name === "snapshotInstalled" ? [s.event.meta.index] : []));
    expect(installed.length).toBeGreaterThan(0);
    expect(Math.min(...installed)).toBeGreaterThan(first);
    expect(kvOf(c, behind)).toBe(kvOf(c, leader));
    expect(c.member(behind).machine.get("later11")).toBe("v");
  });

  it("node: a node restarted from its store restores the snapshot and holds no copy of its bytes", async () => {
    const n1 = nodeId("n1");
    let store: MemoryLogStore | undefined;
    const c = new Cluster([n1], {
      snapshotEveryEntries: 4,
      store: (_id, state) => {
        store = new MemoryLogStore(state);
        return store;
      },
    });
    await c.until("leader", () => c.leader() === n1);
    for (let i = 0; i < 12; i++) await c.write(n1, `k${i}`);
    const node = c.member(n1).node;
    await c.until("stored", () => node.snapshotIndex() > 0 && node.snapshotBytesHeld() === 0);
    await node.stop();
    const state = (store as MemoryLogStore).load();
    expect(state.snapshot?.data.length).toBeGreaterThan(0);
    const machine = new KvStateMachine();
    const again = new RaftNode({
      id: n1,
      tickMs: TICK_MS,
      electionTicks: 10,
      heartbeatTicks: 2,
      store: store as MemoryLogStore,
      state,
      machine,
      sink: { send() {} },
      logger: silent,
      scheduler: new SimScheduler(TICK_MS),
      random: new Rng(1),
    });
    expect(machine.get("k0")).toBe("v");
    expect(again.snapshotIndex()).toBe(state.snapshot?.meta.index);
    expect(again.snapshotBytesHeld()).toBe(0);
    await again.stop();
  });
});
