import {
  type Entry,
  type LogIndex,
  Membership,
  type NodeId,
  type PersistedState,
  type RaftOptions,
  RawNode,
  type ReadState,
  type Ready,
  type Message,
} from "../../src/raft/index.js";
import type { LogView } from "./checker.js";
import type { MemoryStorage } from "./memory-storage.js";
import { type MachineKind, makeMachine, type SimMachine } from "./sim-machine.js";

/** HeldReady is a ready whose disk write is still under way (a slow fsync). */
export interface HeldReady {
  readonly rd: Ready;
  /** late are the ready's messages that wait for the write (see splitForEarlySend). */
  readonly late: readonly Message[];
  /** applied says whether its committed entries were applied when the write began. */
  readonly applied: boolean;
  readonly until: number;
}

/**
 * SimNode is one simulated host: a RawNode, its durable MemoryStorage and its state machine.
 * Crashing drops everything but the storage; restarting rebuilds from it.
 */
export class SimNode {
  raw: RawNode;
  sm: SimMachine;
  alive = true;
  held: HeldReady | undefined;
  readStates: ReadState[] = [];
  lastSnapshotIndex: LogIndex = 0;
  /** skipTickRate makes this node's clock run slow by that share (clock skew). */
  skipTickRate = 0;
  /** pausedUntil freezes the node (no ticks, no deliveries) until that tick. */
  pausedUntil = 0;
  /** wasMember is set once this node applied a configuration that includes it. */
  wasMember = false;
  /** applied is the configuration of the entries the state machine applied (committed ones only). */
  appliedConf = new Membership();

  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
    private readonly makeOptions: () => RaftOptions,
    readonly machine: MachineKind = "kv",
  ) {
    this.sm = makeMachine(machine);
    this.raw = new RawNode(makeOptions(), storage.load());
    this.restoreMachine();
  }

  /** crash loses everything not written to storage. */
  crash(): void {
    this.alive = false;
    this.pausedUntil = 0;
    this.held = undefined;
    this.readStates = [];
  }

  /** restart rebuilds the node from what its storage kept. */
  restart(): void {
    const persisted: PersistedState = this.storage.load();
    this.raw = new RawNode(this.makeOptions(), persisted);
    this.sm = makeMachine(this.machine);
    this.restoreMachine();
    this.alive = true;
  }

  private restoreMachine(): void {
    const snap = this.storage.snapshot;
    if (snap && snap.data.length > 0) this.sm.restore(snap.data);
    this.lastSnapshotIndex = snap?.meta.index ?? 0;
    this.appliedConf = new Membership(snap?.meta.conf);
  }

  /** logView exposes the node's log to the checker. */
  logView(): LogView {
    const st = this.raw.status();
    const raw = this.raw;
    const snapshotIndex = this.storage.snapshot?.meta.index ?? 0;
    return {
      id: this.id,
      commit: st.commit,
      lastIndex: st.lastIndex,
      snapshotIndex,
      snapshotTerm: this.storage.snapshot?.meta.term ?? 0,
      entry: (i: LogIndex): Entry | undefined => raw.logEntry(i),
    };
  }
}
