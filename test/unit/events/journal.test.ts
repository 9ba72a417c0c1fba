import { describe, expect, it } from "vitest";
import { EventsCompactedError, EventsLaggingError } from "../../../src/events/errors.js";
import { EventJournal, type EventSink, followEvents } from "../../../src/events/journal.js";
import { EVENT_FOLLOWER_QUEUE_MAX, EVENT_RING_MAX } from "../../../src/events/limits.js";
import type { MeshEvent } from "../../../src/events/types.js";

const journal = () => new EventJournal({ node: "n1", nowMs: () => 1_000, seqBase: 0 });
const snap = (j: EventJournal, n: number) => {
  for (let i = 0; i < n; i++) j.record({ kind: "snapshot-taken", message: `s${i}` });
};

/** TestSink is a sink whose buffer takes `room` events before it reports full. */
class TestSink implements EventSink {
  readonly got: MeshEvent[] = [];
  ended: Error | undefined | null = null;
  private drain: (() => void) | undefined;
  constructor(public room = Number.POSITIVE_INFINITY) {}
  write(e: MeshEvent): boolean {
    this.got.push(e);
    return this.got.length < this.room;
  }
  onDrain(fn: () => void): void {
    this.drain = fn;
  }
  end(err?: Error): void {
    this.ended = err;
  }
  release(more: number): void {
    this.room += more;
    const fn = this.drain;
    this.drain = undefined;
    fn?.();
  }
}

describe("event journal", () => {
  it("numbers events, marks local kinds, and keeps the newest EVENT_RING_MAX (at the limit and one past it)", () => {
    const j = journal();
    snap(j, EVENT_RING_MAX);
    expect(j.since(0)).toHaveLength(EVENT_RING_MAX);
    expect(j.oldestSeq).toBe(1);
    j.record({ kind: "member-joined", index: 7, member: "n4", message: "n4 is a voter" });
    const all = j.since(0);
    expect(all).toHaveLength(EVENT_RING_MAX);
    expect(all[0]?.seq).toBe(2);
    expect(all.at(-1)).toMatchObject({ seq: EVENT_RING_MAX + 1, kind: "member-joined", index: 7, local: false, node: "n1", atMs: 1_000 });
    expect(all[0]?.local).toBe(true);
    expect(j.recent(2).map((e) => e.seq)).toEqual([EVENT_RING_MAX, EVENT_RING_MAX + 1]);
  });

  it("replays after a seq; a seq the ring dropped is EventsCompactedError naming the oldest", () => {
    const j = new EventJournal({ node: "n1", seqBase: 0, ringMax: 4 });
    snap(j, 6);
    expect(j.since(4).map((e) => e.seq)).toEqual([5, 6]);
    expect(j.since(2).map((e) => e.seq)).toEqual([3, 4, 5, 6]); // 2 is just before the oldest: nothing lost
    expect(() => j.since(1)).toThrow(EventsCompactedError);
    expect(() => j.since(1)).toThrow(/oldest event \(seq 3\)/);
  });

  it("seqs of a restarted node continue above its previous life's (start time × SEQ_PER_MS)", () => {
    const first = new EventJournal({ node: "n1", nowMs: () => 5_000 });
    snap(first, 3);
    const second = new EventJournal({ node: "n1", nowMs: () => 5_001 });
    expect(second.record({ kind: "snapshot-taken", message: "x" }).seq).toBeGreaterThan(first.lastSeq);
    expect(() => second.since(first.lastSeq)).toThrow(EventsCompactedError);
  });
});

describe("followEvents", () => {
  it("replays, then streams live events, filtered by kind; without follow it ends after the replay", () => {
    const j = journal();
    j.record({ kind: "leader-elected", member: "n1", message: "a" });
    snap(j, 1);
    const once = new TestSink();
    followEvents(j, { fromSeq: 0, follow: false }, once);
    expect(once.got.map((e) => e.seq)).toEqual([1, 2]);
    expect(once.ended).toBeUndefined();
    const live = new TestSink();
    const stop = followEvents(j, { fromSeq: 1, follow: true, kinds: ["snapshot-taken"] }, live);
    j.record({ kind: "leader-elected", member: "n2", message: "b" });
    snap(j, 1);
    expect(live.got.map((e) => e.seq)).toEqual([2, 4]);
    stop();
    snap(j, 1);
    expect(live.got).toHaveLength(2);
    expect(live.ended).toBeNull();
  });

  it("holds live events while the sink is full and ends the follower one event past EVENT_FOLLOWER_QUEUE_MAX with EventsLaggingError", () => {
    const j = journal();
    const sink = new TestSink(1);
    followEvents(j, { fromSeq: 0, follow: true }, sink);
    snap(j, 1); // written; the sink is now full
    snap(j, EVENT_FOLLOWER_QUEUE_MAX); // exactly the bound waits
    expect(sink.ended).toBeNull();
    sink.release(5);
    expect(sink.got).toHaveLength(6);
    expect(sink.ended).toBeNull();
    snap(j, 5); // back at the bound
    expect(sink.ended).toBeNull();
    snap(j, 1); // one past it
    expect(sink.ended).toBeInstanceOf(EventsLaggingError);
    expect((sink.ended as EventsLaggingError).lastSent).toBe(6);
    snap(j, 1);
    expect(sink.got).toHaveLength(6); // ended: nothing more
  });

  it("does not count the replay against the bound: a slow reader of a full ring is not ended for it", () => {
    const j = journal();
    snap(j, EVENT_RING_MAX);
    const sink = new TestSink(1);
    followEvents(j, { fromSeq: 0, follow: true }, sink);
    snap(j, EVENT_FOLLOWER_QUEUE_MAX);
    expect(sink.ended).toBeNull();
    sink.release(Number.POSITIVE_INFINITY);
    expect(sink.got).toHaveLength(EVENT_RING_MAX + EVENT_FOLLOWER_QUEUE_MAX);
  });
});
