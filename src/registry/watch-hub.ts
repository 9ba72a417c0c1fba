/**
 * Watches on one node. A watch starts at an index, replays the retained history after it, then
 * follows live changes: every matching change exactly once, in index order, with no gap between the
 * replay and the live part. Changes are delivered in whole groups (all events of one index go in
 * one batch), so "every change up to index N was delivered" is always a true statement for some N,
 * and a watcher that is ended can resume from it.
 *
 * Contracts with the host:
 * - publish() is called with the events of each applied entry, in index order, after the source's
 *   eventsSince() and applied already include them (the machine's onEvents is the place).
 * - A sink may return false from events() to say it is full (gRPC's write() does); the hub then
 *   queues for it until handle.resume() (call it on 'drain'). A sink that never returns false is
 *   never queued for; its own buffers are then its business.
 * - sink.end() may be called from inside watch() (refusals) and from inside publish() or reset().
 */
import type { RegistryEvent } from "./types.js";

/** WATCHERS_MAX bounds watchers on one node; each holds a gRPC stream and a queue (4,096 is far above one balancer per node plus SDK clients). */
export const WATCHERS_MAX = 4_096;

/** WATCHER_QUEUE_EVENTS_MAX bounds live events queued for one full sink: about 2 s of changes at 1,000/s. The queue holds references to shared events, so all watchers together hold at most 4,096 × 2,048 × 8 bytes = 64 MiB. */
export const WATCHER_QUEUE_EVENTS_MAX = 2_048;

/** WATCH_BATCH_EVENTS_MAX is the target size of one delivered batch; a single index with more events is still delivered whole. */
export const WATCH_BATCH_EVENTS_MAX = 256;

/** WatchKind is the kind of event a watch may select. */
export type WatchKind = RegistryEvent["kind"];

/** HistorySource is what the hub reads from the state machine (RegistryStateMachine fits it). */
export interface HistorySource {
  /** eventsSince returns the retained events with index > `index` in index order, or says the history after `index` is no longer complete. */
  eventsSince(
    index: number,
  ): { readonly events: readonly RegistryEvent[] } | { readonly compacted: true; readonly oldestIndex: number };
  /** applied is the index of the last applied entry. */
  readonly applied: number;
}

/** WatchRequest says where a watch starts and what it selects. */
export interface WatchRequest {
  /** fromIndex: deliver changes with index > fromIndex (a list answered at index N is followed by a watch from N). */
  readonly fromIndex: number;
  /** service selects the service's own events and its instances' events ("" or absent: no service selector). */
  readonly service?: string;
  /** keyPrefix selects KV events of keys starting with it ("" selects every key; absent: no key selector). */
  readonly keyPrefix?: string;
  /** kinds keeps only events of these kinds (absent or empty: all kinds). */
  readonly kinds?: readonly WatchKind[];
}

/** WatchSink receives one watcher's events. */
export interface WatchSink {
  /** events receives a batch in index order; returning false asks the hub to hold further batches until resume(). */
  // biome-ignore lint/suspicious/noConfusingVoidType: a sink that never pushes back may simply return nothing.
  events(batch: readonly RegistryEvent[]): boolean | void;
  /** end is called once when the hub ends the watch; err says why (always set today). */
  end(err?: Error): void;
}

/** WatchHandle controls one watch. */
export interface WatchHandle {
  /** close ends the watch from the caller's side (the sink's end is not called). Idempotent. */
  close(): void;
  /** resume tells the hub the sink can take events again after it returned false. */
  resume(): void;
  /**
   * caughtUp says that every matching event up to the source's applied index was handed to the
   * sink: only then may a progress notice name the applied index without running ahead of events.
   */
  caughtUp(): boolean;
}

/** WatchError is the base of the reasons a watch ends or is refused. */
export class WatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WatchError";
  }
}

/** CompactedError ends a watch whose fromIndex is older than the retained history; re-list (at currentIndex or later) and watch from the list's index. */
export class CompactedError extends WatchError {
  constructor(
    readonly fromIndex: number,
    readonly oldestIndex: number,
    readonly currentIndex: number,
  ) {
    super(`watch from index ${fromIndex}: history compacted (oldest ${oldestIndex}), re-list at index ${currentIndex}`);
    this.name = "CompactedError";
  }
}

/** WatcherLaggingError ends a watcher whose sink fell WATCHER_QUEUE_EVENTS_MAX events behind; every change up to lastDeliveredIndex was delivered, so watch again from it. */
export class WatcherLaggingError extends WatchError {
  constructor(readonly lastDeliveredIndex: number) {
    super(`watcher too slow; resume from index ${lastDeliveredIndex}`);
    this.name = "WatcherLaggingError";
  }
}

/** WatchResetError ends every watch when the node's state was replaced by a snapshot; re-list at index (or later). */
export class WatchResetError extends WatchError {
  constructor(readonly index: number) {
    super(`state replaced by a snapshot at index ${index}; re-list at index ${index}`);
    this.name = "WatchResetError";
  }
}

/** WatchersLimitError refuses a watch when the node already has its maximum of watchers. */
export class WatchersLimitError extends WatchError {
  constructor(readonly limit: number) {
    super(`too many watchers on this node (limit ${limit})`);
    this.name = "WatchersLimitError";
  }
}

interface Watcher {
  readonly match: (e: RegistryEvent) => boolean;
  readonly sink: WatchSink;
  /** seen: every event with index <= seen was either handed over, queued, or filtered out. */
  seen: number;
  /** Replay (unfiltered, from the source); replayPos always rests on a matching event or the end. */
  replay: readonly RegistryEvent[];
  replayPos: number;
  /** Live events (matching only) waiting for a full sink; queue[queueHead] is the next. */
  queue: RegistryEvent[];
  queueHead: number;
  paused: boolean;
  ended: boolean;
}

const NOOP_HANDLE: WatchHandle = { close() {}, resume() {}, caughtUp: () => false };

/** WatchHub fans applied events out to the node's watchers. */
export class WatchHub {
  private readonly watchers = new Set<Watcher>();
  // Invariant: publish() indexes only grow; lastPublished <= source.applied between calls.
  private lastPublished = 0;

  constructor(
    private readonly source: HistorySource,
    private readonly limits: { readonly watchersMax: number; readonly queueEventsMax: number } = {
      watchersMax: WATCHERS_MAX,
      queueEventsMax: WATCHER_QUEUE_EVENTS_MAX,
    },
  ) {}

  /** size is the number of open watchers. */
  get size(): number {
    return this.watchers.size;
  }

  /** watch starts a watch: replay after fromIndex, then live. Refusals end the sink before it returns. */
  watch(req: WatchRequest, sink: WatchSink): WatchHandle {
    if (!Number.isSafeInteger(req.fromIndex) || req.fromIndex < 0) throw new RangeError(`watch: fromIndex ${req.fromIndex}`);
    if (this.watchers.size >= this.limits.watchersMax) {
      sink.end(new WatchersLimitError(this.limits.watchersMax));
      return NOOP_HANDLE;
    }
    const applied = this.source.applied;
    invariant(this.lastPublished <= applied, `published ${this.lastPublished} beyond applied ${applied}`);
    const history = this.source.eventsSince(req.fromIndex);
    if ("compacted" in history) {
      sink.end(new CompactedError(req.fromIndex, history.oldestIndex, applied));
      return NOOP_HANDLE;
    }
    const last = history.events.at(-1)?.index ?? 0;
    const w: Watcher = {
      match: matcher(req),
      sink,
      seen: Math.max(req.fromIndex, applied, last),
      replay: history.events.filter((e) => e.index > req.fromIndex),
      replayPos: 0,
      queue: [],
      queueHead: 0,
      paused: false,
      ended: false,
    };
    skipUnmatched(w);
    this.watchers.add(w);
    this.pump(w);
    return {
      close: () => this.remove(w),
      resume: () => {
        if (w.ended) return;
        w.paused = false;
        this.pump(w);
      },
      caughtUp: () => !w.ended && !w.paused && w.replayPos >= w.replay.length && w.queueHead >= w.queue.length,
    };
  }

  /** publish delivers the events of newly applied entries (index order, each index whole, after the source has them). */
  publish(events: readonly RegistryEvent[]): void {
    const first = events[0];
    const last = events.at(-1);
    if (first === undefined || last === undefined) return;
    invariant(first.index > this.lastPublished, `publish index ${first.index} after ${this.lastPublished}`);
    for (let i = 1; i < events.length; i++) {
      invariant((events[i]?.index ?? 0) >= (events[i - 1]?.index ?? 0), "publish: events out of index order");
    }
    this.lastPublished = last.index;
    for (const w of [...this.watchers]) {
      if (w.ended || last.index <= w.seen) continue;
      const fresh = events.filter((e) => e.index > w.seen && w.match(e));
      const resumeIndex = lastDelivered(w);
      w.seen = last.index;
      if (fresh.length === 0) continue;
      if (w.paused && w.queue.length - w.queueHead + fresh.length > this.limits.queueEventsMax) {
        this.end(w, new WatcherLaggingError(resumeIndex));
        continue;
      }
      for (const e of fresh) w.queue.push(e);
      this.pump(w);
    }
  }

  /** reset ends every watcher after a snapshot restore at index: history before it is gone, so they must re-list. */
  reset(index: number): void {
    this.lastPublished = index;
    for (const w of [...this.watchers]) this.end(w, new WatchResetError(index));
  }

  /** pump hands batches to the sink until it is full or nothing is left. */
  private pump(w: Watcher): void {
    while (!w.ended && !w.paused) {
      const batch = nextBatch(w);
      if (batch.length === 0) return;
      if (w.sink.events(batch) === false) w.paused = true;
    }
  }

  private end(w: Watcher, err: WatchError): void {
    if (!this.remove(w)) return;
    w.sink.end(err);
  }

  private remove(w: Watcher): boolean {
    if (w.ended) return false;
    w.ended = true;
    w.replay = [];
    w.queue = [];
    this.watchers.delete(w);
    return true;
  }
}

/**
 * nextBatch takes whole index groups, from the replay first and then the queue, while they fit in
 * WATCH_BATCH_EVENTS_MAX; a group larger than that on its own is a batch by itself.
 */
function nextBatch(w: Watcher): RegistryEvent[] {
  const fromReplay = w.replayPos < w.replay.length;
  const src = fromReplay ? w.replay : w.queue;
  let pos = fromReplay ? w.replayPos : w.queueHead;
  const batch: RegistryEvent[] = [];
  while (pos < src.length) {
    const index = (src[pos] as RegistryEvent).index;
    const group: RegistryEvent[] = [];
    let end = pos;
    for (; end < src.length && (src[end] as RegistryEvent).index === index; end++) {
      const e = src[end] as RegistryEvent;
      if (w.match(e)) group.push(e);
    }
    if (batch.length > 0 && batch.length + group.length > WATCH_BATCH_EVENTS_MAX) break;
    for (const e of group) batch.push(e);
    pos = end;
  }
  if (fromReplay) {
    w.replayPos = pos;
    skipUnmatched(w);
    if (w.replayPos >= w.replay.length) w.replay = [];
  } else if (pos >= w.queue.length) {
    w.queue = [];
    w.queueHead = 0;
  } else {
    w.queueHead = pos;
  }
  return batch;
}

function skipUnmatched(w: Watcher): void {
  while (w.replayPos < w.replay.length && !w.match(w.replay[w.replayPos] as RegistryEvent)) w.replayPos++;
}

/** lastDelivered is the highest index up to which every matching change was handed to the sink. */
function lastDelivered(w: Watcher): number {
  const next = w.replay[w.replayPos] ?? w.queue[w.queueHead];
  return next === undefined ? w.seen : next.index - 1;
}

/** matcher builds the filter of a request: any given selector may match, then kinds restricts. */
export function matcher(req: Pick<WatchRequest, "service" | "keyPrefix" | "kinds">): (e: RegistryEvent) => boolean {
  const service = req.service ? req.service : undefined;
  const prefix = req.keyPrefix;
  const kinds = req.kinds !== undefined && req.kinds.length > 0 ? new Set(req.kinds) : undefined;
  const anySelector = service !== undefined || prefix !== undefined;
  return (e) => {
    if (kinds !== undefined && !kinds.has(e.kind)) return false;
    if (!anySelector) return true;
    if (service !== undefined && serviceOf(e) === service) return true;
    return prefix !== undefined && e.kind === "kv" && (e.type === "put" ? e.entry.key : e.key).startsWith(prefix);
  };
}

function serviceOf(e: RegistryEvent): string | undefined {
  if (e.kind === "service") return e.type === "put" ? e.service.name : e.name;
  if (e.kind === "instance") return e.type === "put" ? e.instance.service : e.service;
  return undefined;
}

function invariant(cond: boolean, message: string): asserts cond {
  if (!cond) throw new Error(`watch hub invariant: ${message}`);
}
