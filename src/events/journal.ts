import { EventsCompactedError, EventsLaggingError } from "./errors.js";
import { EVENT_FOLLOWER_QUEUE_MAX, EVENT_RING_MAX } from "./limits.js";
import { type EventInput, LOCAL_KINDS, type MeshEvent, type MeshEventKind } from "./types.js";

/** JournalOptions name the node and, for tests, the clock and the bounds. */
export interface JournalOptions {
  readonly node: string;
  readonly nowMs?: () => number;
  readonly ringMax?: number;
  /** seqBase is the seq before the first event; by default the start time in ms × SEQ_PER_MS. */
  readonly seqBase?: number;
}

/**
 * SEQ_PER_MS: seqs start at the journal's start time in ms times this, so a node that restarts
 * numbers on above its previous life (unless it recorded more than this many events per ms of its
 * life), and a follower's resume point from before a restart is simply "older than the ring".
 * Below 2^53 until the year 2255.
 */
export const SEQ_PER_MS = 1_000;

/**
 * EventJournal is a node's event stream: it numbers and stamps each event, keeps the last
 * EVENT_RING_MAX in a ring for replay, and hands each new one to its followers synchronously (the
 * alert rules, the gRPC stream, the status page). Recording never blocks: a follower that cannot
 * keep up queues on its own side (followEvents) and is ended when it lags too far.
 */
export class EventJournal {
  private readonly ring: MeshEvent[] = [];
  private start = 0;
  private seq = 0;
  private readonly followers: ((e: MeshEvent) => void)[] = [];
  private readonly now: () => number;
  readonly ringMax: number;

  constructor(private readonly opts: JournalOptions) {
    this.now = opts.nowMs ?? Date.now;
    this.ringMax = opts.ringMax ?? EVENT_RING_MAX;
    this.seq = opts.seqBase ?? Math.floor(this.now()) * SEQ_PER_MS;
  }

  /** record numbers an event, keeps it and tells every follower. */
  record(input: EventInput): MeshEvent {
    const e: MeshEvent = {
      seq: ++this.seq,
      kind: input.kind,
      index: input.index ?? 0,
      local: LOCAL_KINDS.has(input.kind),
      node: this.opts.node,
      atMs: this.now(),
      service: input.service ?? "",
      instance: input.instance ?? "",
      member: input.member ?? "",
      message: input.message,
      details: input.details ?? {},
    };
    if (this.ring.length < this.ringMax) this.ring.push(e);
    else {
      this.ring[this.start] = e;
      this.start = (this.start + 1) % this.ringMax;
    }
    for (const fn of [...this.followers]) fn(e);
    return e;
  }

  /** lastSeq is the seq of the newest event (seqBase before the first). */
  get lastSeq(): number {
    return this.seq;
  }

  /** oldestSeq is the seq of the oldest event the ring holds (lastSeq + 1 when empty). */
  get oldestSeq(): number {
    return this.ring.length === 0 ? this.seq + 1 : this.seq - this.ring.length + 1;
  }

  /** since lists the held events after fromSeq, oldest first; 0 is all of them. A seq the ring has dropped is an EventsCompactedError. */
  since(fromSeq: number): MeshEvent[] {
    if (fromSeq > 0 && fromSeq < this.oldestSeq - 1) throw new EventsCompactedError(fromSeq, this.oldestSeq);
    const all = [...this.ring.slice(this.start), ...this.ring.slice(0, this.start)];
    return all.filter((e) => e.seq > fromSeq);
  }

  /** recent is the newest n events, oldest first. */
  recent(n: number): MeshEvent[] {
    const all = this.since(0);
    return all.slice(Math.max(0, all.length - n));
  }

  /** follow hears every event recorded from now on; it returns the function that stops it. */
  follow(fn: (e: MeshEvent) => void): () => void {
    this.followers.push(fn);
    return () => {
      const i = this.followers.indexOf(fn);
      if (i >= 0) this.followers.splice(i, 1);
    };
  }
}

/** EventSink is where followEvents writes: a gRPC server stream or an HTTP response. */
export interface EventSink {
  /** write sends one event; false means "full, wait for onDrain" (the stream's backpressure). */
  write(e: MeshEvent): boolean;
  /** onDrain calls fn once when the sink can take more. */
  onDrain(fn: () => void): void;
  /** end closes the sink, with the reason when it is an error. */
  end(err?: Error): void;
}

/** FollowRequest is what a follower asks for. */
export interface FollowRequest {
  /** fromSeq: replay the events after this seq first (0: all the ring holds). */
  readonly fromSeq: number;
  /** follow: keep streaming new events after the replay (else end after it). */
  readonly follow: boolean;
  /** kinds keeps only these kinds (empty: all). */
  readonly kinds?: readonly MeshEventKind[];
  /** queueMax overrides EVENT_FOLLOWER_QUEUE_MAX (tests). */
  readonly queueMax?: number;
}

/**
 * followEvents replays and streams events into a sink, respecting its backpressure. Live events
 * wait in the follower's own queue while the sink is full; more than EVENT_FOLLOWER_QUEUE_MAX of
 * them end the follower with EventsLaggingError naming the last seq it was sent, so it resumes
 * from the ring instead of holding the node's memory. It throws EventsCompactedError at once for
 * a fromSeq the ring no longer holds. It returns the function that stops following.
 */
export function followEvents(journal: EventJournal, req: FollowRequest, sink: EventSink): () => void {
  const kinds = req.kinds && req.kinds.length > 0 ? new Set(req.kinds) : undefined;
  const wanted = (e: MeshEvent) => kinds === undefined || kinds.has(e.kind);
  const queueMax = req.queueMax ?? EVENT_FOLLOWER_QUEUE_MAX;
  const queue = journal.since(req.fromSeq).filter(wanted);
  let replayLeft = queue.length;
  let lastSent = req.fromSeq;
  let blocked = false;
  let done = false;
  let unfollow = () => {};
  const finish = (err?: Error) => {
    if (done) return;
    done = true;
    unfollow();
    sink.end(err);
  };
  const pump = () => {
    while (!done && !blocked && queue.length > 0) {
      const e = queue.shift() as MeshEvent;
      if (replayLeft > 0) replayLeft--;
      lastSent = e.seq;
      if (!sink.write(e)) {
        blocked = true;
        sink.onDrain(() => {
          blocked = false;
          pump();
        });
      }
    }
    if (!done && !req.follow && queue.length === 0) finish();
  };
  if (req.follow) {
    unfollow = journal.follow((e) => {
      if (done || !wanted(e)) return;
      queue.push(e);
      if (queue.length - replayLeft > queueMax) return finish(new EventsLaggingError(lastSent, queueMax));
      pump();
    });
  }
  pump();
  return () => {
    done = true;
    unfollow();
  };
}
