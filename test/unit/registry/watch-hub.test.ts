import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HISTORY_EVENTS_MAX } from "../../../src/registry/limits.js";
import type { Instance, RegistryEvent } from "../../../src/registry/types.js";
import {
  CompactedError,
  type HistorySource,
  WATCH_BATCH_EVENTS_MAX,
  WATCHER_QUEUE_EVENTS_MAX,
  WATCHERS_MAX,
  WatcherLaggingError,
  WatchersLimitError,
  type WatchHandle,
  WatchHub,
  type WatchKind,
  type WatchRequest,
  WatchResetError,
} from "../../../src/registry/watch-hub.js";

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
  eventsSince(index: number) {
    if (index < this.compactedThrough) return { compacted: true as const, oldestIndex: this.compactedThrough };
    return { events: this.events.filter((e) => e.index > index) };
  }
}

/** Recorder is a sink that keeps what it got and pushes back when told to. */
class Recorder {
  got: RegistryEvent[] = [];
  batches = 0;
  ended: Error | undefined | null = null;
  full = false;
  readonly sink = {
    events: (batch: readonly RegistryEvent[]) => {
      expect(this.ended).toBeNull();
      this.got.push(...batch);
      this.batches++;
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
}

function instance(service: string, id: string): Instance {
  return {
    id,
    service,
    address: "10.0.0.1",
    port: 80,
    tags: [],
    metadata: {},
    weight: 1,
    priority: 0,
    zone: "",
    ttlMs: 5_000,
    deregisterCriticalAfterMs: 0,
    health: "passing",
    note: "",
    healthSince: 0,
    createIndex: 1,
    modIndex: 1,
  };
}

const kvPut = (key: string): Change => ({ kind: "kv", type: "put", entry: { key, value: "", createIndex: 1, modIndex: 1, version: 1 } });
const instPut = (service: string, id = "i"): Change => ({ kind: "instance", type: "put", instance: instance(service, id) });

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
        events: (batch) => {
          sizes.push(batch.length);
          return true;
        },
        end: () => {},
      },
    );
    expect(sizes).toEqual([WATCH_BATCH_EVENTS_MAX - 1, 2, WATCH_BATCH_EVENTS_MAX + 3]);
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
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const history = new MemoryHistory();
        const hub = new WatchHub(history, { watchersMax: 64, queueEventsMax: 3 });
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
        // A lagging watcher reconnects at once from the index it was given, as a client would.
        const reconnectLagging = () => {
          for (const w of watchers) {
            while (w.rec.ended instanceof WatcherLaggingError) {
              Object.assign(w, start(w.req, w.rec.ended.lastDeliveredIndex, w.rec.got));
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
          } else if (watchers.length > 0) {
            const w = watchers[o.w % watchers.length];
            if (w === undefined) continue;
            w.rec.full = o.full;
            if (!o.full) w.handle.resume();
          }
          reconnectLagging();
        }
        publishAll();
        for (const w of watchers) {
          w.rec.full = false;
          w.handle.resume();
        }
        reconnectLagging();
        for (const w of watchers) {
          const expected = history.events.filter((e) => e.index > w.from && reference(w.req, e));
          expect(w.rec.got).toEqual(expected);
        }
      }),
      { numRuns: 300 },
    );
  });
});
