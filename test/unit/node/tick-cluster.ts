/**
 * A few real RaftNodes on MemoryLogStores for unit tests of the host loop, with the simulator's
 * virtual-time scheduler, so elections and deliveries happen in a fixed order: messages are
 * delivered at the next tick unless a member is cut off.
 */
import type { RaftNodeEvents } from "../../../src/node/events.js";
import { type NodeLogger, RaftNode } from "../../../src/node/raft-node.js";
import { bootstrapEntries, type Message, type NodeId } from "../../../src/raft/index.js";
import { type LoadedState, MemoryLogStore } from "../../../src/storage/index.js";
import { encodeKvCommand, KvStateMachine } from "../../integration/kv-state-machine.js";
import { Rng } from "../../sim/rng.js";
import { SimScheduler } from "../../sim/sim-scheduler.js";

export const silent = { info() {}, warn() {}, error() {}, debug() {} };
export const TICK_MS = 10;

export type Seen = { [K in keyof RaftNodeEvents]: { name: K; event: RaftNodeEvents[K] } }[keyof RaftNodeEvents];

export interface Member {
  readonly node: RaftNode;
  readonly sched: SimScheduler;
  readonly machine: KvStateMachine;
  readonly seen: Seen[];
}

/** Cluster is a few RaftNodes whose messages are delivered at the next tick unless the link is cut. */
export class Cluster {
  readonly members = new Map<NodeId, Member>();
  readonly cut = new Set<NodeId>();
  private inFlight: Message[] = [];
  private now = 0;

  constructor(
    ids: NodeId[],
    opts: { snapshotEveryEntries?: number; store?: (id: NodeId, state: LoadedState) => MemoryLogStore; machine?: () => KvStateMachine; logger?: (id: NodeId) => NodeLogger; releaseSnapshotChunks?: (id: NodeId) => (chunks: readonly Uint8Array[]) => void; peerSnapshotReadMax?: (id: NodeId) => ((peer: NodeId) => number) | undefined; peerSnapshotReadMaxLastSaid?: (id: NodeId) => ((peer: NodeId) => number) | undefined } = {},
  ) {
    const boot = bootstrapEntries(ids);
    for (const [i, id] of ids.entries()) {
      const sched = new SimScheduler(TICK_MS);
      const machine = opts.machine?.() ?? new KvStateMachine();
      const state = { hardState: { term: 1, vote: "" as NodeId, commit: boot.length }, entries: boot };
      const node = new RaftNode({
        id,
        tickMs: TICK_MS,
        electionTicks: 10,
        heartbeatTicks: 2,
        store: opts.store?.(id, state) ?? new MemoryLogStore(state),
        state,
        machine,
        sink: { send: (msgs) => this.inFlight.push(...msgs) },
        logger: opts.logger?.(id) ?? silent,
        snapshotEveryEntries: opts.snapshotEveryEntries,
        releaseSnapshotChunks: opts.releaseSnapshotChunks?.(id),
        peerSnapshotReadMax: opts.peerSnapshotReadMax?.(id),
        peerSnapshotReadMaxLastSaid: opts.peerSnapshotReadMaxLastSaid?.(id),
        scheduler: sched,
        random: new Rng(i + 1),
      });
      const seen: Seen[] = [];
      for (const name of ["role", "leader", "applied", "snapshotTaken", "snapshotInstalled", "failure"] as const) {
        node.events.on(name, (event) => seen.push({ name, event } as Seen));
      }
      this.members.set(id, { node, sched, machine, seen });
      node.start();
    }
  }

  member(id: NodeId): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  /** ticks is how many ticks have run. */
  get ticks(): number {
    return this.now;
  }

  /** tick delivers what was sent, ticks every node and lets the host loops run. */
  async tick(): Promise<void> {
    this.now++;
    const due = this.inFlight;
    this.inFlight = [];
    for (const m of due) if (!this.cut.has(m.from) && !this.cut.has(m.to)) this.members.get(m.to)?.node.step(m);
    for (const m of this.members.values()) {
      m.sched.runDue(this.now * TICK_MS);
      m.sched.tick();
    }
    await new Promise((r) => setImmediate(r));
  }

  async until(what: string, f: () => boolean, ticksMax = 500): Promise<void> {
    for (let i = 0; !f(); i++) {
      if (i > ticksMax) throw new Error(`no ${what} within ${ticksMax} ticks`);
      await this.tick();
    }
  }

  /** write proposes on the leader and ticks until it is applied there. */
  async write(leader: NodeId, key: string): Promise<void> {
    let done = false;
    void this.member(leader)
      .node.propose(encodeKvCommand({ op: "put", key, value: "v" }))
      .then(() => {
        done = true;
      });
    await this.until(`write ${key}`, () => done);
  }

  /**
   * leaveOneBehind elects a leader, cuts one follower off, writes keys k0..k<writes-1> and waits
   * until the leader has stored a snapshot (its core holding no bytes of it), so the follower can
   * only catch up through that snapshot once the cut is healed (delete `behind` from `cut`).
   */
  async leaveOneBehind(writes: number): Promise<{ leader: NodeId; behind: NodeId; lead: RaftNode; snapIndex: number }> {
    await this.until("leader", () => this.leader() !== undefined);
    const leader = this.leader() as NodeId;
    const behind = [...this.members.keys()].find((id) => id !== leader) as NodeId;
    this.cut.add(behind);
    for (let i = 0; i < writes; i++) await this.write(leader, `k${i}`);
    const lead = this.member(leader).node;
    await this.until("the leader's snapshot stored", () => lead.snapshotIndex() > 0 && lead.snapshotBytesHeld() === 0);
    return { leader, behind, lead, snapIndex: lead.snapshotIndex() };
  }

  leader(): NodeId | undefined {
    return [...this.members].find(([, m]) => m.node.isLeader())?.[0];
  }
}

