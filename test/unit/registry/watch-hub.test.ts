import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HISTORY_EVENTS_MAX } from "../../../src/registry/limits.js";
import type { Instance, RegistryEvent } from "../../../src/registry/types.js";
import { API_RESPONSE_BYTES_MAX } from "../../../src/api/limits.js";
import { KV_VALUE_BYTES_MAX } from "../../../src/registry/limits.js";
import { EventHistory } from "../../../src/registry/state-machine-history.js";
import { type HistorySource, WATCH_BATCH_BYTES_MAX, WATCH_BATCH_EVENTS_MAX, WATCH_MESSAGE_BYTES_MAX, WATCH_OUT_BYTES_MAX, WATCH_QUEUE_BYTES_MAX, WATCH_REPLAY_CHUNK_EVENTS, WATCHER_OUT_BYTES_MAX, WATCHER_QUEUE_BYTES_MAX, WATCHER_QUEUE_EVENTS_MAX, WATCHERS_MAX, type WatchHandle, WatchHub, type WatchKind, type WatchRequest } from "../../../src/registry/watch-hub.js";
import { CompactedError, WatcherLaggingError, WatchersLimitError, WatchResetError } from "../../../src/registry/errors.js";
import { instance as fixtureInstance } from "../../fixtures/registry.js";

/** Change is an event before the history stamps its index. */
type Change = RegistryEvent extends infer E ? (E extends RegistryEvent ? Omit<E, "index"> : never) : never;

/** MemoryHistory is the source as the state machine will be: history complete after `compactedThrough`. */
class MemoryHistory implements HistorySource {
  applied = 0;
  compactedThrough = 0;
  readonly events: RegistryEvent[] = [];
  /** apply records one entry's events (possibly none) at the next index and returns them. */
  apply(events: readonly Change[]): RegistryEvent[] {
    this.applied++;
    const stamped = events.map((e) => ({ ...e, index: this.applied }) as RegistryEvent);
    this.events.push(...stamped);
    return stamped;
  }
  /** reads counts eventsSince calls; longest is the longest answer given. */
  reads = 0;
  longest = 0;
  eventsSince(index: number, max = Number.POSITIVE_INFINITY) {
    this.reads++;
    if (index < this.compactedThrough) return { compacted: true as const, oldestIndex: this.compactedThrough };
    const after = this.events.filter((e) => e.index > index);
    // About max, ending at an index boundary (as the state machine's history answers).
    let end = Math.min(after.length, Math.max(1, max));
    while (end < after.length && after[end]?.index === after[end - 1]?.index) end++;
    this.longest = Math.max(this.longest, end);
    return { events: after.slice(0, end) };
  }
}

/** Recorder is a sink that keeps what it got and pushes back when told to; with `hold` it keeps batches unsent until flush(). */
class Recorder {
  got: RegistryEvent[] = [];
  batches = 0;
  throughs: number[] = [];
  ended: Error | undefined | null = null;
  full = false;
  hold = false;
  unsent: (() => void)[] = [];
  readonly sink = {
    events: (batch: readonly RegistryEvent[], through: number, done: () => void) => {
      expect(this.ended).toBeNull();
      this.got.push(...batch);
      this.batches++;
      this.throughs.push(through);
      if (this.hold) this.unsent.push(done);
      else done();
      return !this.full;
    },
    end: (err?: Error) => {
      expect(this.ended).toBeNull();
      this.ended = err;
    },
  };
  get indexes(): number[] {
    return this.got.map((e) => e.index);
  }
  /** flush sends every held batch. */
  flush(): void {
    const unsent = this.unsent;
    this.unsent = [];
    for (const done of unsent) done();
  }
}

/** instance is a passing instance `id` of `service`. */
const instance = (service: string, id: string): Instance => fixtureInstance(id, { service });

/** bigPut is a KV put whose value weighs `bytes` to bytesOf (the value is not really that long). */
const bigPut = (key: string, bytes: number): Change => ({ kind: "kv", type: "put", entry: { key, value: String(bytes), createIndex: 1, modIndex: 1, version: 1 } });
/** bytesOf weighs an event made by bigPut by the size it names (others weigh 100). */
const bytesOf = (e: RegistryEvent): number => (e.kind === "kv" && e.type === "put" && /^\d+$/.test(e.entry.value) ? Number(e.entry.value) : 100);
const KiB = 1024;
const MiB = 1024 * KiB;

const kvPut = (key: string): Change => ({ kind: "kv", type: "put", entry: { key, value: "", createIndex: 1, modIndex: 1, version: 1 } });
const instPut = (service: string, id = "i"): Change => ({ kind: "instance", type: "put", instance: instance(service, id), previousHealth: undefined });

/** hubWith returns a hub over a history of n entries, each one kv put of key k<index>. */
function hubWith(n: number, limits?: ConstructorParameters<typeof WatchHub>[1]) {
  const history = new MemoryHistory();
  const hub = new WatchHub(history, limits);
  for (let i = 0; i < n; i++) hub.publish(history.apply([kvPut(`k${i + 1}`)]));
  return { history, hub };
}

type Filter = Omit<WatchRequest, "fromIndex">;

/** reference is the filter of WatchRequest written out plainly, to check the hub's against. */
function reference(req: Filter, e: RegistryEvent): boolean {
  if (req.kinds && req.kinds.length > 0 && !req.kinds.includes(e.kind)) return false;
  const hasService = req.service !== undefined && req.service !== "";
  if (!hasService && req.keyPrefix === undefined) return true;
  let service: string | undefined;
  if (e.kind === "service") service = e.type === "put" ? e.service.name : e.name;
  if (e.kind === "instance") service = e.type === "put" ? e.instance.service : e.service;
  if (hasService && service === req.service) return true;
  if (req.keyPrefix !== undefined && e.kind === "kv") return (e.type === "put" ? e.entry.key : e.key).startsWith(req.keyPrefix);
  return false;
}

describe("watch hub", () => {
  it("watch: limits are named, sane and consistent with the history", () => {
    expect(WATCHERS_MAX).toBeGreaterThan(0);
    expect(WATCHER_QUEUE_EVENTS_MAX).toBeGreaterThanOrEqual(WATCH_BATCH_EVENTS_MAX);
    expect(WATCHER_QUEUE_EVENTS_MAX).toBeLessThan(HISTORY_EVENTS_MAX);
    // The bound on queued references across all watchers (8 bytes each) stays within 64 MiB.
    expect(WATCHERS_MAX * WATCHER_QUEUE_EVENTS_MAX * 8).toBeLessThanOrEqual(64 * 1024 * 1024);
  });

  it("watch: replays after fromIndex (exclusive), then delivers live events, each once", () => {
    const { history, hub } = hubWith(5);
    const r = new Recorder();
    hub.watch({ fromIndex: 2 }, r.sink);
    expect(r.indexes).toEqual([3, 4, 5]);
    hub.publish(history.apply([kvPut("x"), kvPut("y")]));
    history.apply([]); // an entry with no events (a no-op or a failed command)
    hub.publish(history.apply([kvPut("z")]));
    expect(r.indexes).toEqual([3, 4, 5, 6, 6, 8]);
    expect(r.ended).toBeNull();
  });

  it("watch: events already in the history but published late are not delivered twice", () => {
    const { history, hub } = hubWith(2);
    const late = history.apply([kvPut("late")]);
    const r = new Recorder();
    hub.watch({ fromIndex: 0 }, r.sink);
    expect(r.indexes).toEqual([1, 2, 3]);
    hub.publish(late);
    expect(r.indexes).toEqual([1, 2, 3]);
  });

  it("watch: a fromIndex beyond the applied index waits for it (resume on a node that lags)", () => {
    const { history, hub } = hubWith(2);
    const r = new Recorder();
    hub.watch({ fromIndex: 4 }, r.sink);
    for (let i = 0; i < 3; i++) hub.publish(history.apply([kvPut("k")]));
    expect(r.indexes).toEqual([5]);
  });

  it("watch: an index older than the retained history ends with CompactedError, at the edge exactly", () => {
    const { history, hub } = hubWith(10);
    history.compactedThrough = 4;
    const old = new Recorder();
    const handle = hub.watch({ fromIndex: 3 }, old.sink);
    expect(old.ended).toBeInstanceOf(CompactedError);
    expect(old.ended).toMatchObject({ fromIndex: 3, oldestIndex: 4, currentIndex: 10 });
    expect(old.got).toEqual([]);
    expect(hub.size).toBe(0);
    handle.close();
    const edge = new Recorder();
    hub.watch({ fromIndex: 4 }, edge.sink);
    expect(edge.ended).toBeNull();
    expect(edge.indexes).toEqual([5, 6, 7, 8, 9, 10]);
  });

  it("watch: filters by service (its own and its instances' events), by key prefix, and by kind", () => {
    const history = new MemoryHistory();
    const hub = new WatchHub(history);
    const web = new Recorder();
    const cfg = new Recorder();
    const both = new Recorder();
    const webInstances = new Recorder();
    hub.watch({ fromIndex: 0, service: "web" }, web.sink);
    hub.watch({ fromIndex: 0, keyPrefix: "cfg/" }, cfg.sink);
    hub.watch({ fromIndex: 0, service: "web", keyPrefix: "cfg/" }, both.sink);
    hub.watch({ fromIndex: 0, service: "web", kinds: ["instance"] }, webInstances.sink);
    const changes: Change[] = [
      { kind: "service", type: "put", service: { name: "web", config: {} as never, createIndex: 1, modIndex: 1 } },
      { kind: "service", type: "delete", name: "api" },
      instPut("web"),
      instPut("api"),
      { kind: "instance", type: "delete", service: "web", id: "i" },
      kvPut("cfg/a"),
      kvPut("web"),
      { kind: "kv", type: "delete", key: "cfg/b", modIndex: 3 },
    ];
    for (const c of changes) hub.publish(history.apply([c]));
    expect(web.indexes).toEqual([1, 3, 5]);
    expect(cfg.indexes).toEqual([6, 8]);
    expect(both.indexes).toEqual([1, 3, 5, 6, 8]);
    expect(webInstances.indexes).toEqual([3, 5]);
  });

  it("watch: a local watcher's events are measured by the history's estimate and never by the host's encoding; a remote one's by the encoding", () => {
    const history = new MemoryHistory();
    let encoded = 0;
    const hub = new WatchHub(history, {}, (e) => {
      encoded++;
      return bytesOf(e);
    });
    for (let i = 0; i < 3; i++) hub.publish(history.apply([instPut("web", `r${i}`)]));
    const local = new Recorder();
    hub.watch({ fromIndex: 0, local: true }, local.sink);
    for (let i = 0; i < 5; i++) hub.publish(history.apply([instPut("web", `i${i}`)]));
    expect(local.indexes).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(encoded).toBe(0);
    const remote = new Recorder();
    hub.watch({ fromIndex: 0 }, remote.sink);
    hub.publish(history.apply([instPut("web", "last")]));
    expect(remote.indexes).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(encoded).toBeGreaterThanOrEqual(9);
  });

  it("watch: a full sink is held, resumed in whole-index batches, and a too-slow one lags with a resumable index", () => {
    const limits = { watchersMax: 10, queueEventsMax: 4 };
    const { history, hub } = hubWith(1, limits);
    const r = new Recorder();
    r.full = true;
    const handle = hub.watch({ fromIndex: 0 }, r.sink);
    expect(r.indexes).toEqual([1]); // the write that says "full" is still accepted
    hub.publish(history.apply([kvPut("a"), kvPut("b")])); // index 2: queued (2)
    hub.publish(history.apply([kvPut("c"), kvPut("d")])); // index 3: queued (4) — at the limit exactly
    expect(r.ended).toBeNull();
    r.full = false;
    handle.resume();
    expect(r.indexes).toEqual([1, 2, 2, 3, 3]);
    // Now too slow: 4 queued fits, the fifth lags.
    r.full = true;
    hub.publish(history.apply([kvPut("e")])); // delivered (sink says full afterwards)
    hub.publish(history.apply([kvPut("f"), kvPut("g"), kvPut("h"), kvPut("i")])); // 4 queued
    expect(r.ended).toBeNull();
    hub.publish(history.apply([kvPut("j")])); // would be 5
    expect(r.ended).toBeInstanceOf(WatcherLaggingError);
    expect(r.ended).toMatchObject({ lastDeliveredIndex: 4 });
    expect(hub.size).toBe(0);
    // Resuming from lastDeliveredIndex loses nothing and repeats nothing.
    const again = new Recorder();
    hub.watch({ fromIndex: 4 }, again.sink);
    expect([...r.indexes, ...again.indexes]).toEqual([1, 2, 2, 3, 3, 4, 5, 5, 5, 5, 6]);
  });

  it("watch: batches hold whole indexes and at most WATCH_BATCH_EVENTS_MAX events unless one index has more", () => {
    const history = new MemoryHistory();
    const hub = new WatchHub(history);
    hub.publish(history.apply(Array.from({ length: WATCH_BATCH_EVENTS_MAX - 1 }, () => kvPut("a"))));
    hub.publish(history.apply([kvPut("b"), kvPut("c")]));
    hub.publish(history.apply(Array.from({ length: WATCH_BATCH_EVENTS_MAX + 3 }, () => kvPut("d"))));
    const sizes: number[] = [];
    hub.watch(
      { fromIndex: 0 },
      {
        events: (batch, _through, done) => {
          sizes.push(batch.length);
          done();
          return true;
        },
        end: () => {},
      },
    );
    expect(sizes).toEqual([WATCH_BATCH_EVENTS_MAX - 1, 2, WATCH_BATCH_EVENTS_MAX + 3]);
  });

  it("watch: byte limits are named and fit the API: any single event fits a message, a message fits the client's limit", () => {
    // One KV put carries a maximal value plus a key and a few numbers.
    const eventBytesMax = KV_VALUE_BYTES_MAX + 2 * KiB;
    expect(eventBytesMax).toBeLessThanOrEqual(WATCH_MESSAGE_BYTES_MAX);
    // The message adds its index field and gRPC adds 5 bytes of framing.
    expect(WATCH_MESSAGE_BYTES_MAX + 64).toBeLessThanOrEqual(API_RESPONSE_BYTES_MAX);
    expect(WATCH_BATCH_BYTES_MAX).toBeLessThanOrEqual(WATCHER_OUT_BYTES_MAX);
    expect(WATCHER_OUT_BYTES_MAX).toBeGreaterThanOrEqual(eventBytesMax - 2 * KiB);
    expect(WATCH_OUT_BYTES_MAX).toBeGreaterThanOrEqual(1_024 * WATCHER_OUT_BYTES_MAX);
    expect(WATCH_OUT_BYTES_MAX).toBeLessThanOrEqual(512 * MiB);
    expect(WATCHER_QUEUE_BYTES_MAX).toBeGreaterThanOrEqual(8 * eventBytesMax);
    expect(WATCH_QUEUE_BYTES_MAX).toBeGreaterThanOrEqual(WATCHER_QUEUE_BYTES_MAX);
    expect(WATCH_QUEUE_BYTES_MAX).toBeLessThanOrEqual(256 * MiB);
  });

  it("watch: a replay is paced by what the sink sent — an unread watcher holds at most WATCHER_OUT_BYTES_MAX, then gets the rest as it sends", () => {
    const history = new MemoryHistory();
    const hub = new WatchHub(history, {}, bytesOf);
    for (let i = 0; i < 300; i++) hub.publish(history.apply([bigPut(`big/${i}`, 400 * KiB)]));
    const unread = new Recorder();
    unread.hold = true;
    hub.watch({ fromIndex: 0 }, unread.sink);
    // 400 KiB alone goes (nothing else was out); a second would pass the 512 KiB bound.
    expect(unread.indexes).toEqual([1]);
    expect(hub.bytes.out).toBe(400 * KiB);
    expect(hub.bytes.out).toBeLessThanOrEqual(WATCHER_OUT_BYTES_MAX);
    // Each send lets exactly the next batch go, in order, to the end; nothing is held after.
    for (let i = 2; i <= 300; i++) {
      unread.flush();
      expect(unread.indexes.at(-1)).toBe(i);
    }
    unread.flush();
    expect(unread.indexes).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(hub.bytes.out).toBe(0);
    expect(unread.ended).toBeNull();
  });

  it("watch: batches are cut by bytes at index boundaries; one index over WATCH_MESSAGE_BYTES_MAX is split and its first parts vouch only for the index before", () => {
    const history = new MemoryHistory();
    const hub = new WatchHub(history, {}, bytesOf);
    for (let i = 0; i < 6; i++) hub.publish(history.apply([bigPut(`v/${i}`, 100 * KiB)])); // 1..6
    hub.publish(history.apply(Array.from({ length: 12 }, (_, i) => bigPut(`t/${i}`, 500 * KiB)))); // 7: 6,000 KiB in one index
    hub.publish(history.apply([bigPut("after", KV_VALUE_BYTES_MAX)])); // 8
    const sizes: number[][] = [];
    const throughs: number[] = [];
    const got: RegistryEvent[] = [];
    hub.watch(
      { fromIndex: 0 },
      {
        events: (batch, through, done) => {
          sizes.push(batch.map(bytesOf));
          throughs.push(through);
          got.push(...batch);
          done();
        },
        end: () => {},
      },
    );
    for (const s of sizes) expect(s.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(WATCH_MESSAGE_BYTES_MAX);
    // 100 KiB values two to a batch (a third passes WATCH_BATCH_BYTES_MAX), index 7 in 8 + 4, then the 512 KiB value alone.
    expect(sizes.map((s) => s.length)).toEqual([2, 2, 2, 8, 4, 1]);
    expect(throughs).toEqual([2, 4, 6, 6, 7, 8]);
    expect(got.map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6, ...Array(12).fill(7), 8]);
  });

  it("watch: a watcher whose queue passes WATCHER_QUEUE_BYTES_MAX lags with the index to resume from; so does one that would take the node past WATCH_QUEUE_BYTES_MAX", () => {
    const history = new MemoryHistory();
    const hub = new WatchHub(history, { queueBytesMax: 1 * MiB, nodeQueueBytesMax: 3 * MiB }, bytesOf);
    const slow = new Recorder();
    slow.hold = true;
    hub.watch({ fromIndex: 0 }, slow.sink);
    hub.publish(history.apply([bigPut("a", 512 * KiB)])); // 1: handed over, unsent
    hub.publish(history.apply([bigPut("b", 512 * KiB)])); // 2: queued (512 KiB)
    hub.publish(history.apply([bigPut("c", 512 * KiB)])); // 3: queued (1 MiB) — at the bound exactly
    expect(slow.ended).toBeNull();
    expect(hub.bytes).toEqual({ out: 512 * KiB, queued: 1 * MiB });
    hub.publish(history.apply([bigPut("d", 1)])); // 4: one byte over
    expect(slow.ended).toBeInstanceOf(WatcherLaggingError);
    expect(slow.ended).toMatchObject({ lastDeliveredIndex: 1 });
    expect(hub.bytes.queued).toBe(0);
    // Its handed-over bytes count until the sink sends them (or its stream is gone).
    expect(hub.bytes.out).toBe(512 * KiB);
    slow.flush();
    expect(hub.bytes.out).toBe(0);

    // Node-wide: four watchers each within their own bound, together past the node's.
    const rs = Array.from({ length: 4 }, () => new Recorder());
    for (const r of rs) {
      r.hold = true;
      hub.watch({ fromIndex: 4 }, r.sink);
    }
    hub.publish(history.apply([bigPut("e", 100)])); // 5: handed to each
    hub.publish(history.apply([bigPut("f", 800 * KiB)])); // 6: queued for each, 3,200 KiB in all
    expect(rs.map((r) => r.ended === null)).toEqual([true, true, true, false]);
    expect(rs[3]?.ended).toMatchObject({ lastDeliveredIndex: 5 });
    expect(hub.bytes.queued).toBe(3 * 800 * KiB);
  });

  it("watch: the node's unsent bytes stay within WATCH_OUT_BYTES_MAX; held-back watchers go in turn, oldest first, as bytes are sent", () => {
    const history = new MemoryHistory();
    const nodeOutBytesMax = 2 * MiB;
    const hub = new WatchHub(history, { nodeOutBytesMax }, bytesOf);
    for (let i = 0; i < 20; i++) hub.publish(history.apply([bigPut(`big/${i}`, 400 * KiB)]));
    const unread = Array.from({ length: 8 }, () => new Recorder());
    for (const r of unread) {
      r.hold = true;
      hub.watch({ fromIndex: 0 }, r.sink);
    }
    // Five fit (5 × 400 KiB = 2,000 KiB); the other three wait, holding nothing.
    expect(unread.map((r) => r.got.length)).toEqual([1, 1, 1, 1, 1, 0, 0, 0]);
    expect(hub.bytes.out).toBeLessThanOrEqual(nodeOutBytesMax);
    // A send lets the oldest waiting watcher go first.
    unread[0]?.flush();
    expect(unread.map((r) => r.got.length)).toEqual([1, 1, 1, 1, 1, 1, 0, 0]);
    for (const r of unread.slice(1)) r.flush();
    expect(hub.bytes.out).toBeLessThanOrEqual(nodeOutBytesMax);
    for (let round = 0; round < 100 && unread.some((r) => r.got.length < 20); round++) for (const r of unread) r.flush();
    for (const r of unread) expect(r.indexes).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it("watch: fromIndex 0 starts at the oldest retained change, even after the history was emptied by a snapshot restore", () => {
    const { history, hub } = hubWith(10);
    // A restore at 10: history complete only after 10, nothing retained yet.
    history.compactedThrough = 10;
    history.events.length = 0;
    hub.reset(10);
    const fromZero = new Recorder();
    hub.watch({ fromIndex: 0 }, fromZero.sink);
    expect(fromZero.ended).toBeNull();
    hub.publish(history.apply([kvPut("x")]));
    expect(fromZero.indexes).toEqual([11]);
    // Trimmed (not emptied): 0 replays what is left.
    history.compactedThrough = 11;
    hub.publish(history.apply([kvPut("y")]));
    const again = new Recorder();
    hub.watch({ fromIndex: 0 }, again.sink);
    expect(again.ended).toBeNull();
    expect(again.indexes).toEqual([12]);
    // Any other index below the history is still refused.
    const one = new Recorder();
    hub.watch({ fromIndex: 1 }, one.sink);
    expect(one.ended).toBeInstanceOf(CompactedError);
  });

  it("watch: a replay reads the history a chunk at a time and queues nothing, so live changes during a long replay never make it lag", () => {
    const history = new MemoryHistory();
    const hub = new WatchHub(history);
    const total = 3 * WATCH_REPLAY_CHUNK_EVENTS;
    for (let i = 0; i < total; i++) hub.publish(history.apply([kvPut(`a${i}`)]));
    const slow = new Recorder();
    slow.full = true;
    const handle = hub.watch({ fromIndex: 0 }, slow.sink);
    expect(slow.got.length).toBe(WATCH_BATCH_EVENTS_MAX);
    // Far more live changes than a queue may hold arrive while the replay has hardly begun.
    const live = 2 * WATCHER_QUEUE_EVENTS_MAX;
    for (let i = 0; i < live; i++) hub.publish(history.apply([kvPut(`b${i}`)]));
    expect(slow.ended).toBeNull();
    expect(hub.bytes.queued).toBe(0);
    // The sink takes one batch per resume for a while, then all that is left.
    for (let round = 0; round < 20; round++) handle.resume();
    slow.full = false;
    handle.resume();
    expect(slow.indexes).toEqual(Array.from({ length: total + live }, (_, i) => i + 1));
    // Each read of the history was a chunk, never the whole of it.
    expect(history.longest).toBeLessThanOrEqual(WATCH_REPLAY_CHUNK_EVENTS);
    // Once caught up, live changes are delivered as they come.
    hub.publish(history.apply([kvPut("c")]));
    expect(slow.indexes.at(-1)).toBe(total + live + 1);
    expect(slow.ended).toBeNull();
  });

  it("watch: a replay overtaken by the history's trimming lags with the index it reached; resuming there is told to re-list", () => {
    const history = new MemoryHistory();
    const hub = new WatchHub(history, { replayChunkEvents: 4 });
    for (let i = 0; i < 20; i++) hub.publish(history.apply([kvPut(`k${i}`)]));
    const slow = new Recorder();
    slow.full = true;
    const handle = hub.watch({ fromIndex: 0 }, slow.sink);
    // One batch is the whole first chunk; the next chunk is read only when the sink takes more.
    expect(slow.indexes).toEqual([1, 2, 3, 4]);
    history.compactedThrough = 10;
    handle.resume();
    expect(slow.ended).toBeInstanceOf(WatcherLaggingError);
    expect(slow.ended).toMatchObject({ lastDeliveredIndex: 4 });
    const again = new Recorder();
    hub.watch({ fromIndex: 4 }, again.sink);
    expect(again.ended).toBeInstanceOf(CompactedError);
  });

  it("history: since(index, max) answers about max events, ending at an index boundary", () => {
    const h = new EventHistory(100);
    const at = (index: number, n: number) => Array.from({ length: n }, (_, i): RegistryEvent => ({ index, kind: "kv", type: "delete", key: `k${i}`, modIndex: index }));
    h.append(at(1, 1));
    h.append(at(2, 3));
    h.append(at(3, 1));
    const indexes = (a: ReturnType<EventHistory["since"]>) => ("events" in a ? a.events.map((e) => e.index) : a);
    expect(indexes(h.since(0, 1))).toEqual([1]);
    expect(indexes(h.since(0, 2))).toEqual([1, 2, 2, 2]);
    expect(indexes(h.since(1, 3))).toEqual([2, 2, 2]);
    expect(indexes(h.since(1, 4))).toEqual([2, 2, 2, 3]);
    expect(indexes(h.since(0))).toEqual([1, 2, 2, 2, 3]);
    expect(indexes(h.since(3, 1))).toEqual([]);
  });

  it("watch: reset ends every watcher with the index to re-list at", () => {
    const { hub } = hubWith(3);
    const rs = [new Recorder(), new Recorder()];
    for (const r of rs) hub.watch({ fromIndex: 3 }, r.sink);
    hub.reset(50);
    for (const r of rs) {
      expect(r.ended).toBeInstanceOf(WatchResetError);
      expect(r.ended).toMatchObject({ index: 50 });
    }
    expect(hub.size).toBe(0);
  });

  it("watch: WATCHERS_MAX watchers are allowed, one more is refused, and closing frees a slot", () => {
    const { hub } = hubWith(1);
    const handles: WatchHandle[] = [];
    for (let i = 0; i < WATCHERS_MAX; i++) handles.push(hub.watch({ fromIndex: 1 }, new Recorder().sink));
    expect(hub.size).toBe(WATCHERS_MAX);
    const over = new Recorder();
    hub.watch({ fromIndex: 1 }, over.sink);
    expect(over.ended).toBeInstanceOf(WatchersLimitError);
    expect(over.ended).toMatchObject({ limit: WATCHERS_MAX });
    handles[0]?.close();
    handles[0]?.close(); // idempotent
    expect(hub.size).toBe(WATCHERS_MAX - 1);
    const fits = new Recorder();
    hub.watch({ fromIndex: 1 }, fits.sink);
    expect(fits.ended).toBeNull();
  });

  it("watch: a closed watcher gets nothing more and its sink is not ended", () => {
    const { history, hub } = hubWith(1);
    const r = new Recorder();
    const h = hub.watch({ fromIndex: 0 }, r.sink);
    h.close();
    hub.publish(history.apply([kvPut("x")]));
    h.resume();
    expect(r.indexes).toEqual([1]);
    expect(r.ended).toBeNull();
  });

  it("watch: publishing out of index order is a bug and throws", () => {
    const { history, hub } = hubWith(2);
    expect(() => hub.publish([{ index: 2, kind: "kv", type: "delete", key: "k", modIndex: 1 }])).toThrow(/invariant/);
    expect(history.applied).toBe(2);
    expect(() => hub.watch({ fromIndex: -1 }, new Recorder().sink)).toThrow(RangeError);
  });

  it("watch: property — any interleaving of applies, late publishes, starts, back-pressure and lag-resumes delivers exactly the filtered events after fromIndex", () => {
    const change = fc.oneof(
      fc.constantFrom("web", "api").map((s): Change => ({ kind: "service", type: "delete", name: s })),
      fc.constantFrom("web", "api").map((s) => instPut(s)),
      fc.constantFrom("web", "api").map((s): Change => ({ kind: "instance", type: "delete", service: s, id: "i" })),
      fc.constantFrom("a/1", "a/2", "b/1").map(kvPut),
      fc.constantFrom("a/1", "b/1").map((key): Change => ({ kind: "kv", type: "delete", key, modIndex: 1 })),
    );
    const request = fc.record(
      {
        service: fc.constantFrom("web", "api", ""),
        keyPrefix: fc.constantFrom("a/", "", "b/1"),
        kinds: fc.subarray<WatchKind>(["service", "instance", "kv"]),
      },
      { requiredKeys: [] },
    );
    const op = fc.oneof(
      { arbitrary: fc.array(change, { maxLength: 4 }).map((cs) => ({ t: "apply" as const, cs })), weight: 5 },
      { arbitrary: fc.record({ t: fc.constant("publish" as const), merged: fc.boolean() }), weight: 3 },
      { arbitrary: fc.record({ t: fc.constant("watch" as const), back: fc.nat(3), req: request }), weight: 2 },
      { arbitrary: fc.record({ t: fc.constant("pressure" as const), w: fc.nat(), full: fc.boolean() }), weight: 3 },
      { arbitrary: fc.record({ t: fc.constant("hold" as const), w: fc.nat(), hold: fc.boolean() }), weight: 3 },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const history = new MemoryHistory();
        // Tiny byte bounds (each event weighs 1) so that out-byte waits, node-wide waits and split indexes all happen.
        const hub = new WatchHub(
          history,
          {
            watchersMax: 64,
            queueEventsMax: 3,
            queueBytesMax: 3,
            nodeQueueBytesMax: 12,
            outBytesMax: 2,
            nodeOutBytesMax: 5,
            batchBytesMax: 2,
            messageBytesMax: 3,
            replayChunkEvents: 2,
          },
          () => 1,
        );
        let unpublished: RegistryEvent[][] = [];
        // The host may publish entry by entry or several entries in one call; both must work.
        const publishAll = (merged = false) => {
          if (merged) hub.publish(unpublished.flat());
          else for (const entry of unpublished) hub.publish(entry);
          unpublished = [];
        };
        const watchers: { req: Filter; from: number; got: RegistryEvent[]; rec: Recorder; handle: WatchHandle }[] = [];
        const start = (req: Filter, from: number, got: RegistryEvent[]) => {
          const rec = new Recorder();
          rec.got = got;
          const handle = hub.watch({ ...req, fromIndex: from }, rec.sink);
          return { rec, handle };
        };
        // A lagging watcher reconnects at once from the index it was given, as a client would; it
        // keeps only what that index vouches for (the part of a split index comes again whole).
        const reconnectLagging = () => {
          for (const w of watchers) {
            while (w.rec.ended instanceof WatcherLaggingError) {
              const from = w.rec.ended.lastDeliveredIndex;
              expect(from).toBeGreaterThanOrEqual(w.rec.throughs.at(-1) ?? 0);
              w.rec.flush();
              Object.assign(w, start(w.req, from, w.rec.got.filter((e) => e.index <= from)));
            }
            expect(w.rec.ended).toBeNull();
          }
        };
        for (const o of ops) {
          if (o.t === "apply") unpublished.push(history.apply(o.cs));
          else if (o.t === "publish") publishAll(o.merged);
          else if (o.t === "watch") {
            const from = Math.max(0, history.applied + 1 - o.back);
            watchers.push({ req: o.req, from, got: [], ...start(o.req, from, []) });
          } else if (o.t === "pressure" && watchers.length > 0) {
            const w = watchers[o.w % watchers.length];
            if (w === undefined) continue;
            w.rec.full = o.full;
            if (!o.full) w.handle.resume();
          } else if (o.t === "hold" && watchers.length > 0) {
            const w = watchers[o.w % watchers.length];
            if (w === undefined) continue;
            w.rec.hold = o.hold;
            if (!o.hold) w.rec.flush();
          }
          expect(hub.bytes.out).toBeLessThanOrEqual(5 + 3);
          reconnectLagging();
        }
        publishAll();
        // Drain: every sink takes and sends everything, until nothing moves.
        for (let round = 0; round < 1_000 && watchers.some((w) => w.rec.unsent.length > 0 || w.rec.full || w.rec.hold); round++) {
          for (const w of watchers) {
            w.rec.full = false;
            w.rec.hold = false;
            w.rec.flush();
            w.handle.resume();
          }
          reconnectLagging();
        }
        reconnectLagging();
        expect(hub.bytes).toEqual({ out: 0, queued: 0 });
        for (const w of watchers) {
          const expected = history.events.filter((e) => e.index > w.from && reference(w.req, e));
          expect(w.rec.got).toEqual(expected);
        }
      }),
      // The example is a counterexample fast-check found once in ~16,000 runs (a replay chunk with
      // nothing the watcher matched left it stalled until the next publish): it runs every time.
      { numRuns: 300, examples: [WATCH_STALL_EXAMPLE as never] },
    );
  });
});

/** WATCH_STALL_EXAMPLE: watch from 0 with a full sink, then changes applied but published only at the end. */
const WATCH_STALL_EXAMPLE = [[{"t":"apply","cs":[{"kind":"service","type":"delete","name":"web"},{"kind":"kv","type":"put","entry":{"key":"a/1","value":"","createIndex":1,"modIndex":1,"version":1}}]},{"t":"apply","cs":[{"kind":"kv","type":"delete","key":"b/1","modIndex":1}]},{"t":"watch","back":3,"req":{"keyPrefix":"a/"}},{"t":"pressure","w":0,"full":true},{"t":"apply","cs":[{"kind":"kv","type":"put","entry":{"key":"a/1","value":"","createIndex":1,"modIndex":1,"version":1}}]},{"t":"apply","cs":[{"kind":"service","type":"delete","name":"web"},{"kind":"instance","type":"put","instance":{"id":"i","service":"web","address":"10.0.0.1","port":80,"tags":[],"metadata":{},"weight":1,"priority":0,"zone":"","ttlMs":5000,"deregisterCriticalAfterMs":0,"health":"passing","note":"","healthSince":0,"createIndex":1,"modIndex":1,"replicationPosition":0,"maintenance":false,"maintenanceReason":""}}]},{"t":"apply","cs":[{"kind":"kv","type":"put","entry":{"key":"a/1","value":"","createIndex":1,"modIndex":1,"version":1}}]}]];

