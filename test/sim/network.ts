import type { Message, NodeId } from "../../src/raft/index.js";
import type { Rng } from "./rng.js";

/** NetworkFaults are the per-seed rates of a simulated network. */
export interface NetworkFaults {
  dropRate: number;
  duplicateRate: number;
  /** delayTicksMax: each message waits 0..delayTicksMax ticks, so messages also reorder. */
  delayTicksMax: number;
}

interface InFlight {
  readonly deliverAt: number;
  readonly seq: number;
  readonly msg: Message;
}

/**
 * SimNetwork delivers messages between simulated nodes with drops, duplicates, delays (and so
 * reordering) and directed cuts, all drawn from one Rng.
 */
export class SimNetwork {
  private inFlight: InFlight[] = [];
  private seq = 0;
  private readonly cuts = new Set<string>();
  faults: NetworkFaults = { dropRate: 0, duplicateRate: 0, delayTicksMax: 0 };
  sent = 0;
  dropped = 0;

  constructor(private readonly rng: Rng) {}

  /** cut stops messages from `from` to `to` (one way). */
  cut(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}>${to}`);
  }

  /** isCut says whether messages from `from` to `to` are dropped. */
  isCut(from: NodeId, to: NodeId): boolean {
    return this.cuts.has(`${from}>${to}`);
  }

  /** heal removes every cut. */
  heal(): void {
    this.cuts.clear();
  }

  /** cutCount is the number of directed cuts in place. */
  cutCount(): number {
    return this.cuts.size;
  }

  /** send puts a message on the wire at time now. */
  send(msg: Message, now: number): void {
    this.sent++;
    if (this.isCut(msg.from, msg.to) || this.rng.chance(this.faults.dropRate)) {
      this.dropped++;
      return;
    }
    this.enqueue(msg, now);
    if (this.rng.chance(this.faults.duplicateRate)) this.enqueue(msg, now);
  }

  private enqueue(msg: Message, now: number): void {
    const deliverAt = now + this.rng.nextInt(this.faults.delayTicksMax + 1);
    this.inFlight.push({ deliverAt, seq: this.seq++, msg });
  }

  /** redeliverAt puts a message back for delivery at a later tick (its receiver is paused). */
  redeliverAt(msg: Message, at: number): void {
    this.inFlight.push({ deliverAt: at, seq: this.seq++, msg });
  }

  /** due removes and returns the messages to deliver at time now, in (time, send order). */
  due(now: number): Message[] {
    const ready = this.inFlight.filter((f) => f.deliverAt <= now);
    if (ready.length === 0) return [];
    this.inFlight = this.inFlight.filter((f) => f.deliverAt > now);
    ready.sort((x, y) => x.deliverAt - y.deliverAt || x.seq - y.seq);
    // A cut made while a message was in flight also stops it.
    return ready.filter((f) => !this.isCut(f.msg.from, f.msg.to)).map((f) => f.msg);
  }
}
