import type { LogIndex, NodeId } from "./types.js";

/** ReadRequest is one ReadIndex request: `from` is the node to answer (the leader itself or a follower). */
export interface ReadRequest {
  readonly from: NodeId;
  readonly context: Uint8Array;
}

/** PendingRead is a read the leader holds, with the tick it arrived at, so that its age is bounded. */
export interface PendingRead extends ReadRequest {
  readonly tick: number;
}

/** ReadRound is one heartbeat round that confirms leadership for every read it carries. */
interface ReadRound {
  readonly id: number;
  /** tick is the leader's tick count when the round started. */
  readonly tick: number;
  /** index is the leader's commit index when the round started: the read index of its reads. */
  readonly index: LogIndex;
  readonly acks: Set<NodeId>;
  readonly reads: PendingRead[];
}

/** ReleasedRead is a read whose leadership check passed, with its read index. */
export interface ReleasedRead extends ReadRequest {
  readonly index: LogIndex;
}

/**
 * ReadOnly batches ReadIndex requests into heartbeat rounds. Reads that arrive while a round is in
 * flight wait together for the next one, which the leader starts once no round is unanswered (or
 * the newest has waited a heartbeat interval: see roundDue); a quorum of acks for a round also
 * confirms every earlier round, since the leader was still leading when the later one started.
 * One round per round trip, not one per ready: a burst of thousands of reads once started a round
 * per ready, and the leader's heartbeats and their acks (each looked up among all open rounds)
 * held its event loop past the election timeout (test/bench/raft/burst.ts).
 */
export class ReadOnly {
  private nextId = 1;
  private batch: PendingRead[] = [];
  private rounds: ReadRound[] = [];
  /** count is the number of reads in the batch and in rounds (kept, so size() is O(1)). */
  private count = 0;

  /** size is the number of reads waiting in the batch and in rounds. */
  size(): number {
    return this.count;
  }

  /** add queues a read for the next round. Reads are added in arrival order (their ticks never decrease). */
  add(read: PendingRead): void {
    this.batch.push(read);
    this.count++;
  }

  /**
   * roundDue says whether a round should start now: reads wait, and no round is unanswered, or the
   * newest has waited `patienceTicks` (its acks may be lost; a new round must not wait forever).
   */
  roundDue(now: number, patienceTicks: number): boolean {
    if (this.batch.length === 0) return false;
    const newest = this.rounds[this.rounds.length - 1];
    return newest === undefined || now - newest.tick >= patienceTicks;
  }

  /** startRound moves the batch into a new round at the given commit index and tick, and returns its id. */
  startRound(index: LogIndex, self: NodeId, tick: number): number {
    const round: ReadRound = { id: this.nextId++, tick, index, acks: new Set([self]), reads: this.batch };
    this.batch = [];
    this.rounds.push(round);
    return round.id;
  }

  /** ack records that `from` answered round `id`; it returns the reads now confirmed by a quorum. */
  ack(id: number, from: NodeId, quorum: (acks: ReadonlySet<NodeId>) => boolean): ReleasedRead[] {
    const round = this.rounds.find((r) => r.id === id);
    if (!round) return [];
    round.acks.add(from);
    if (!quorum(round.acks)) return [];
    return this.releaseThrough(id);
  }

  /** releaseThrough releases every round up to and including id. */
  releaseThrough(id: number): ReleasedRead[] {
    const out: ReleasedRead[] = [];
    while (this.rounds.length > 0 && (this.rounds[0]?.id ?? Number.POSITIVE_INFINITY) <= id) {
      const r = this.rounds.shift() as ReadRound;
      for (const read of r.reads) out.push({ ...read, index: r.index });
      this.count -= r.reads.length;
    }
    return out;
  }

  /**
   * expire removes and returns the reads that arrived before tick `before`. Reads sit in arrival
   * order (rounds oldest first, then the batch), so only the oldest ones are looked at.
   */
  expire(before: number): PendingRead[] {
    const out: PendingRead[] = [];
    while (this.rounds.length > 0) {
      const r = this.rounds[0] as ReadRound;
      const taken = takeOlder(r.reads, before);
      this.count -= taken.length;
      out.push(...taken);
      if (r.reads.length > 0) return out;
      // An empty round confirms nothing anyone waits for; an ack for it later finds no round.
      this.rounds.shift();
    }
    const taken = takeOlder(this.batch, before);
    this.count -= taken.length;
    out.push(...taken);
    return out;
  }

  /** reset drops every pending read and returns them: leadership was lost, and the readers must retry. */
  reset(): PendingRead[] {
    const dropped = [...this.rounds.flatMap((r) => r.reads), ...this.batch];
    this.batch = [];
    this.rounds = [];
    this.count = 0;
    return dropped;
  }
}

/** takeOlder removes and returns the leading reads of `reads` that arrived before tick `before`. */
function takeOlder(reads: PendingRead[], before: number): PendingRead[] {
  let n = 0;
  while (n < reads.length && (reads[n] as PendingRead).tick < before) n++;
  return reads.splice(0, n);
}

/** encodeRoundId puts a round id in a heartbeat context. */
export function encodeRoundId(id: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, id);
  return b;
}

/** decodeRoundId reads a round id from a heartbeat context; undefined when there is none. */
export function decodeRoundId(ctx: Uint8Array | undefined): number | undefined {
  if (ctx?.length !== 8) return undefined;
  return new DataView(ctx.buffer, ctx.byteOffset, 8).getFloat64(0);
}
