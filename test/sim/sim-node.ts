import { type Entry, type LogIndex, Membership, type NodeId, type Status } from "../../src/raft/index.js";
import type { RaftNode } from "../../src/node/raft-node.js";
import type { LeaseDriver } from "../../src/registry/lease-driver.js";
import type { MemoryLogStore } from "../../src/storage/index.js";
import type { LogView } from "./checker.js";
import { type MachineKind, makeMachine, type SimMachine } from "./sim-machine.js";
import type { SimScheduler } from "./sim-scheduler.js";

/**
 * SimNode is one simulated host: its durable MemoryLogStore, and the incarnation running on it (a
 * production RaftNode with its scheduler and state machine). Crashing drops the incarnation and
 * every write the store had not made durable; restarting builds a new RaftNode from the store.
 */
export class SimNode {
  /** node is the current incarnation (after a crash, the dead one, whose status still reads). */
  node!: RaftNode;
  sm: SimMachine;
  sched!: SimScheduler;
  /** leases is the incarnation's lease driver (registry machine only). */
  leases: LeaseDriver | undefined;
  alive = true;
  /** skipTickRate makes this node's clock run slow by that share (clock skew). */
  skipTickRate = 0;
  /** pausedUntil freezes the node (no ticks, no timers, no deliveries) until that tick. */
  pausedUntil = 0;
  /**
   * memberAt is the highest applied index at which this node's configuration included it (-1
   * before it ever did). It survives crashes: a restarted node applies its log again from its
   * snapshot, and until it passes memberAt again its configuration may predate its own addition.
   */
  memberAt = -1;
  /** appliedConf is the configuration of the entries the state machine applied (committed ones only). */
  appliedConf = new Membership();

  constructor(
    readonly id: NodeId,
    readonly store: MemoryLogStore,
    readonly machine: MachineKind = "kv",
  ) {
    this.sm = makeMachine(machine);
  }

  /** crash stops the incarnation and loses everything the store had not made durable. */
  crash(): void {
    this.alive = false;
    this.pausedUntil = 0;
    this.sched.cancelAll();
    this.leases?.stop();
    this.leases = undefined;
    void this.node.stop();
    this.store.crash();
  }

  /** fresh prepares a new incarnation's machine and configuration from what the store kept. */
  fresh(): void {
    this.sm = makeMachine(this.machine);
    this.appliedConf = new Membership(this.store.snapshotMeta()?.conf);
    this.alive = true;
  }

  /** logView exposes the node's log to the checker. */
  logView(st: Status = this.node.status()): LogView {
    const node = this.node;
    const meta = this.store.snapshotMeta();
    return {
      id: this.id,
      commit: st.commit,
      lastIndex: st.lastIndex,
      snapshotIndex: meta?.index ?? 0,
      snapshotTerm: meta?.term ?? 0,
      entry: (i: LogIndex): Entry | undefined => node.logEntry(i),
    };
  }
}
