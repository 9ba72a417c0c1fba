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
 *   queues for it until handle.resume() (call it on 'drain').
 * - Every batch handed to a sink counts its bytes (eventBytes) against the watcher and the node
 *   until the sink calls the batch's done(): when the bytes have left the process, or the stream is
 *   gone. This, not the sink's word, is what bounds memory: a client that never reads holds at most
 *   WATCHER_OUT_BYTES_MAX, and all of them together WATCH_OUT_BYTES_MAX; past that the hub waits.
 * - The replay is read from the history WATCH_REPLAY_CHUNK_EVENTS at a time, and goes on reading it
 *   for changes applied meanwhile: a replaying watcher holds a chunk of references and queues
 *   nothing, however long its replay takes. Events are encoded once by the host (eventBytes is the
 *   encoded size, the same for every watcher).
 * - sink.end() may be called from inside watch() (refusals) and from inside publish() or reset().
 */
import { invariant } from "../common/errors.js";
import { CompactedError, WatcherLaggingError, type WatchError, WatchersLimitError, WatchResetError } from "./errors.js";
import { eventSizeBytes } from "./state-machine-history.js";
import type { RegistryEvent } from "./types.js";

/**
 * WATCHERS_MAX bounds watchers on one node; each holds a gRPC stream and a queue. 16,384 leaves
 * room above the 10,000 watchers one node is measured to serve (test/bench/registry/watch-fanout.ts):
 * one per SDK client or sidecar of a large mesh. publish() visits only the watchers an event may
 * match (by service and key prefix), so idle watchers cost no time per change.
 */
export const WATCHERS_MAX = 16_384;

/** WATCHER_QUEUE_EVENTS_MAX bounds live matching events queued for one full sink: half a second of a service changing 1,000 times/s. The queue holds references to shared events, so all watchers together hold at most 16,384 × 512 × 8 bytes = 64 MiB. */
export const WATCHER_QUEUE_EVENTS_MAX = 512;

/** WATCH_BATCH_EVENTS_MAX is the target size of one delivered batch; a single index with more events is still delivered whole. */
export const WATCH_BATCH_EVENTS_MAX = 256;

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * WATCH_BATCH_BYTES_MAX is the target size of one delivered batch in encoded bytes: a few hundred
 * ordinary events, or one large KV value (512 KiB at most, which then goes alone). Small batches
 * keep what one stalled stream holds small.
 */
export const WATCH_BATCH_BYTES_MAX = 256 * KiB;

/**
 * WATCH_MESSAGE_BYTES_MAX is the hard ceiling of one batch: below the client API's 5 MiB response
 * limit (API_RESPONSE_BYTES_MAX) with room for framing. One index whose events are larger still is
 * split at event boundaries; such a part says "through index - 1", so a resume repeats the index
 * rather than skip any of it. Without the split such a batch failed with RESOURCE_EXHAUSTED on every
 * retry and the watcher could never get past it.
 */
export const WATCH_MESSAGE_BYTES_MAX = 4 * MiB;

/**
 * WATCHER_OUT_BYTES_MAX bounds the bytes handed to one watcher's stream and not yet sent: two
 * ordinary batches, or one maximal value (a batch larger than this goes alone when nothing else is
 * out). A client that opens a watch and never reads holds no more than this.
 */
export const WATCHER_OUT_BYTES_MAX = 512 * KiB;

/**
 * WATCH_OUT_BYTES_MAX bounds the unsent watch bytes of the whole node: 1,024 watchers at their full
 * WATCHER_OUT_BYTES_MAX, far above the active watchers a node expects, yet small next to the memory
 * of a node holding a full history. Past it batches wait until bytes are sent: memory stays
 * bounded even with all WATCHERS_MAX streams unread (before this bound 500 unread streams over
 * large values grew a node to 13 GiB).
 */
export const WATCH_OUT_BYTES_MAX = 512 * MiB;

/**
 * WATCHER_QUEUE_BYTES_MAX bounds the live events queued for one watcher that cannot take them, by
 * encoded size: 32 maximal values. The queue holds references to shared events, but a queued event
 * stays alive after the history drops it; a watcher this far behind resumes (WatcherLaggingError).
 */
export const WATCHER_QUEUE_BYTES_MAX = 16 * MiB;

/** WATCH_QUEUE_BYTES_MAX bounds the queued bytes of all watchers of the node together (16 watchers at their full WATCHER_QUEUE_BYTES_MAX); past it the watcher that would queue more lags. */
export const WATCH_QUEUE_BYTES_MAX = 256 * MiB;

/**
 * WATCH_REPLAY_CHUNK_EVENTS is how much of the history a replaying watcher holds at a time (8 KiB of
 * references): a copy of the whole history per watcher was 800 KiB at 100,000 events, 3 GiB for
 * 4,096 watchers. A chunk ends at an index boundary, so it may hold a few more.
 */
export const WATCH_REPLAY_CHUNK_EVENTS = 1_024;

/** WatchLimits are the hub's bounds (the constants above by default; tests shrink them). */
export interface WatchLimits {
  readonly watchersMax: number;
  readonly queueEventsMax: number;
  readonly queueBytesMax: number;
  readonly nodeQueueBytesMax: number;
  readonly outBytesMax: number;
  readonly nodeOutBytesMax: number;
  readonly batchBytesMax: number;
  readonly messageBytesMax: number;
  readonly replayChunkEvents: number;
}

/** DEFAULT_WATCH_LIMITS are the production bounds. */
export const DEFAULT_WATCH_LIMITS: WatchLimits = {
  watchersMax: WATCHERS_MAX,
  queueEventsMax: WATCHER_QUEUE_EVENTS_MAX,
  queueBytesMax: WATCHER_QUEUE_BYTES_MAX,
  nodeQueueBytesMax: WATCH_QUEUE_BYTES_MAX,
  outBytesMax: WATCHER_OUT_BYTES_MAX,
  nodeOutBytesMax: WATCH_OUT_BYTES_MAX,
  batchBytesMax: WATCH_BATCH_BYTES_MAX,
  messageBytesMax: WATCH_MESSAGE_BYTES_MAX,
  replayChunkEvents: WATCH_REPLAY_CHUNK_EVENTS,
};

/**
 * estimateEventBytes is a cheap upper estimate of an event's encoded size, for hosts that do not
 * encode (tests, the simulator): the JSON text is never shorter than the protobuf encoding.
 */
export function estimateEventBytes(e: RegistryEvent): number {
  return JSON.stringify(e).length;
}

/** WatchKind is the kind of event a watch may select. */
export type WatchKind = RegistryEvent["kind"];

/** HistorySource is what the hub reads from the state machine (RegistryStateMachine fits it). */
export interface HistorySource {
  /**
   * eventsSince returns the retained events with index > `index` in index order (about `max` of
   * them, ending at an index boundary; all when max is absent), or says the history after `index`
   * is no longer complete.
   */
  eventsSince(
    index: number,
    max?: number,
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
  /**
   * local: the sink is in this process and never encodes what it receives (the balancer's feed),
   * so its events count by the history's estimate of their size instead of their encoding: the
   * encoding would be protobuf work for nothing on every applied change.
   */
  readonly local?: boolean;
}

/** WatchSink receives one watcher's events. */
export interface WatchSink {
  /**
   * events receives a batch in index order. `through`: every matching change up to it has now been
   * handed over (the batch's last index, or one less when the batch is the first part of an index
   * split by WATCH_MESSAGE_BYTES_MAX). done() must be called once, when the batch no longer holds
   * memory (sent, or the stream is gone); until then its bytes count against the watcher and the
   * node. Returning false asks the hub to hold further batches until resume().
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a sink that never pushes back may simply return nothing.
  events(batch: readonly RegistryEvent[], through: number, done: () => void): boolean | void;
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

interface Watcher {
  /** seq orders watchers by creation, the order publish() serves them in. */
  readonly seq: number;
  /** selectors say which index buckets the watcher is in (see WatchHub.candidates). */
  readonly service: string | undefined;
  readonly keyPrefix: string | undefined;
  readonly match: (e: RegistryEvent) => boolean;
  /** bytesOf measures an event for this watcher's bounds (the host's encoding, or an estimate for a local sink). */
  readonly bytesOf: (e: RegistryEvent) => number;
  readonly sink: WatchSink;
  /** seen: every event with index <= seen was either handed over, queued, filtered out, or is still to be replayed from the history. */
  seen: number;
  /** replaying: changes up to seen are read from the history (nothing is queued); false once the replay reached seen. */
  replaying: boolean;
  /** replayed: the history has been read through this index (whole indexes). */
  replayed: number;
  /** Replay: a chunk of the history's events (unfiltered); replayPos always rests on a matching event or the end. */
  replay: readonly RegistryEvent[];
  replayPos: number;
  /** Live events (matching only) waiting for the sink; queue[queueHead] is the next; queueBytes is their encoded size. */
  queue: RegistryEvent[];
  queueHead: number;
  queueBytes: number;
  /** outBytes: handed to the sink and not yet done. */
  outBytes: number;
  paused: boolean;
  /** pumping: pump() is on the stack for this watcher (a sink may call done() from inside events()). */
  pumping: boolean;
  ended: boolean;
}

/** Batch is the next batch of a watcher, before it is taken. */
interface Batch {
  readonly events: RegistryEvent[];
  readonly bytes: number;
  readonly fromReplay: boolean;
  /** end: the position in the replay or queue after the batch. */
  readonly end: number;
}

const NOOP_HANDLE: WatchHandle = { close() {}, resume() {}, caughtUp: () => false };

/** WatchHub fans applied events out to the node's watchers. */
export class WatchHub {
  private readonly watchers = new Set<Watcher>();
  // Invariant: publish() indexes only grow; lastPublished <= source.applied between calls.
  private lastPublished = 0;
  private readonly limits: WatchLimits;
  /** outBytes: bytes of every watcher (ended ones too) handed over and not yet done. Invariant: <= nodeOutBytesMax, but for one batch taken when nothing was out. */
  private outBytes = 0;
  /** queueBytes: the sum of the watchers' queueBytes. */
  private queueBytes = 0;
  /** waiting: watchers with a batch ready that the node's out bound holds back, in the order they came. */
  private readonly waiting = new Set<Watcher>();
  private waking = false;
  private nextSeq = 0;
  /**
   * The watcher index: publish() visits only the watchers an event may match. Watchers with a
   * service selector are found by the event's service, those with a key prefix by the prefixes of
   * the event's key (one lookup per distinct prefix length in use), those with neither always, and
   * replaying ones always (their replay reads on through every new index).
   */
  private readonly byService = new Map<string, Set<Watcher>>();
  private readonly byPrefix = new Map<string, Set<Watcher>>();
  /** prefixLengths counts the watchers per key-prefix length, so a key is looked up once per length in use. */
  private readonly prefixLengths = new Map<number, number>();
  private readonly unselected = new Set<Watcher>();
  private readonly replaying = new Set<Watcher>();

  constructor(
    private readonly source: HistorySource,
    limits: Partial<WatchLimits> = {},
    /** eventBytes is an event's encoded size; the host caches the encoding, so this is cheap and the same for every watcher. */
    private readonly eventBytes: (e: RegistryEvent) => number = estimateEventBytes,
  ) {
    this.limits = { ...DEFAULT_WATCH_LIMITS, ...limits };
  }

  /** size is the number of open watchers. */
  get size(): number {
    return this.watchers.size;
  }

  /** bytes reports what the watchers hold: handed over and not yet sent (out), and queued. */
  get bytes(): { readonly out: number; readonly queued: number } {
    return { out: this.outBytes, queued: this.queueBytes };
  }

  /**
   * watch starts a watch: replay after fromIndex, then live. fromIndex 0 means the oldest retained
   * change, whatever the history lost (a snapshot restore empties it). Refusals end the sink before
   * it returns.
   */
  watch(req: WatchRequest, sink: WatchSink): WatchHandle {
    if (!Number.isSafeInteger(req.fromIndex) || req.fromIndex < 0) throw new RangeError(`watch: fromIndex ${req.fromIndex}`);
    if (this.watchers.size >= this.limits.watchersMax) {
      sink.end(new WatchersLimitError(this.limits.watchersMax));
      return NOOP_HANDLE;
    }
    const applied = this.source.applied;
    invariant(this.lastPublished <= applied, "watch hub", `published ${this.lastPublished} beyond applied ${applied}`);
    let fromIndex = req.fromIndex;
    let history = this.source.eventsSince(fromIndex, this.limits.replayChunkEvents);
    if ("compacted" in history && fromIndex === 0) {
      fromIndex = history.oldestIndex;
      history = this.source.eventsSince(fromIndex, this.limits.replayChunkEvents);
    }
    if ("compacted" in history) {
      sink.end(new CompactedError(req.fromIndex, history.oldestIndex, applied));
      return NOOP_HANDLE;
    }
    const w: Watcher = {
      seq: this.nextSeq++,
      service: req.service ? req.service : undefined,
      keyPrefix: req.keyPrefix,
      match: matcher(req),
      bytesOf: req.local ? eventSizeBytes : this.eventBytes,
      sink,
      // Events the history holds beyond applied are published later; they are replayed then.
      seen: Math.max(fromIndex, applied),
      replaying: true,
      replayed: fromIndex,
      replay: [],
      replayPos: 0,
      queue: [],
      queueHead: 0,
      queueBytes: 0,
      outBytes: 0,
      paused: false,
      pumping: false,
      ended: false,
    };
    this.watchers.add(w);
    this.indexWatcher(w);
    this.replaying.add(w);
    this.load(w, history.events);
    this.pump(w);
    return {
      close: () => this.remove(w),
      resume: () => {
        if (w.ended) return;
        w.paused = false;
        this.pump(w);
      },
      caughtUp: () => !w.ended && !w.paused && !w.replaying && w.queueHead >= w.queue.length,
    };
  }

  /** publish delivers the events of newly applied entries (index order, each index whole, after the source has them). */
  publish(events: readonly RegistryEvent[]): void {
    const first = events[0];
    const last = events.at(-1);
    if (first === undefined || last === undefined) return;
    invariant(first.index > this.lastPublished, "watch hub", `publish index ${first.index} after ${this.lastPublished}`);
    for (let i = 1; i < events.length; i++) {
      invariant((events[i]?.index ?? 0) >= (events[i - 1]?.index ?? 0), "watch hub", "publish: events out of index order");
    }
    this.lastPublished = last.index;
    for (const w of this.candidates(events)) {
      if (w.ended || last.index <= w.seen) continue;
      if (w.replaying) {
        // The history has these too: the replay reads on through them, and nothing is queued.
        w.seen = last.index;
        this.pump(w);
        continue;
      }
      const fresh = events.filter((e) => e.index > w.seen && w.match(e));
      w.seen = last.index;
      if (fresh.length === 0) continue;
      let bytes = 0;
      for (const e of fresh) {
        w.queue.push(e);
        bytes += w.bytesOf(e);
      }
      w.queueBytes += bytes;
      this.queueBytes += bytes;
      this.pump(w);
      // What the sink could not take stays queued; past a bound the watcher resumes instead.
      const l = this.limits;
      if (w.queue.length - w.queueHead > l.queueEventsMax || w.queueBytes > l.queueBytesMax || this.queueBytes > l.nodeQueueBytesMax) {
        this.end(w, new WatcherLaggingError(lastDelivered(w)));
      }
    }
  }

  /**
   * candidates are the watchers publish() must visit for events, in creation order: replaying ones,
   * those without a selector, and those whose service or key prefix an event has. A watcher left
   * out matches none of the events; its `seen` stays behind, which only makes lastDelivered more
   * cautious (nothing it would match lies in between).
   */
  private candidates(events: readonly RegistryEvent[]): Watcher[] {
    const found = new Set<Watcher>(this.replaying);
    for (const w of this.unselected) found.add(w);
    let previous: RegistryEvent | undefined;
    for (const e of events) {
      // A group's events often share their service or key prefix (an instance and its service).
      if (previous !== undefined && sameSelectors(previous, e)) continue;
      previous = e;
      const service = serviceOf(e);
      if (service !== undefined) for (const w of this.byService.get(service) ?? []) found.add(w);
      if (e.kind === "kv" && this.prefixLengths.size > 0) {
        const key = e.type === "put" ? e.entry.key : e.key;
        for (const length of this.prefixLengths.keys()) {
          if (length > key.length) continue;
          for (const w of this.byPrefix.get(key.slice(0, length)) ?? []) found.add(w);
        }
      }
    }
    const list = [...found];
    if (list.length > 1) list.sort((a, b) => a.seq - b.seq);
    return list;
  }

  /** indexWatcher puts a new watcher in the buckets of its selectors. */
  private indexWatcher(w: Watcher): void {
    if (w.service === undefined && w.keyPrefix === undefined) {
      this.unselected.add(w);
      return;
    }
    if (w.service !== undefined) addTo(this.byService, w.service, w);
    if (w.keyPrefix !== undefined) {
      addTo(this.byPrefix, w.keyPrefix, w);
      this.prefixLengths.set(w.keyPrefix.length, (this.prefixLengths.get(w.keyPrefix.length) ?? 0) + 1);
    }
  }

  /** unindexWatcher takes a watcher out of every bucket. */
  private unindexWatcher(w: Watcher): void {
    this.unselected.delete(w);
    this.replaying.delete(w);
    if (w.service !== undefined) removeFrom(this.byService, w.service, w);
    if (w.keyPrefix !== undefined) {
      removeFrom(this.byPrefix, w.keyPrefix, w);
      const n = (this.prefixLengths.get(w.keyPrefix.length) ?? 0) - 1;
      if (n > 0) this.prefixLengths.set(w.keyPrefix.length, n);
      else this.prefixLengths.delete(w.keyPrefix.length);
    }
  }

  /** reset ends every watcher after a snapshot restore at index: history before it is gone, so they must re-list. */
  reset(index: number): void {
    this.lastPublished = index;
    for (const w of [...this.watchers]) this.end(w, new WatchResetError(index));
  }

  /**
   * pump hands batches to the sink until it is full, its out bytes are at WATCHER_OUT_BYTES_MAX,
   * the node's are at WATCH_OUT_BYTES_MAX (it then waits its turn), or nothing is left.
   */
  private pump(w: Watcher): void {
    if (w.pumping) return;
    w.pumping = true;
    try {
      while (!w.ended && !w.paused) {
        // Cheap refusals first: publish() pumps every watcher, and stalled ones must cost nothing.
        if (w.outBytes >= this.limits.outBytesMax || this.waiting.has(w)) return;
        const batch = this.nextBatch(w);
        if (batch === undefined) return;
        if (w.outBytes > 0 && w.outBytes + batch.bytes > this.limits.outBytesMax) return;
        if (this.outBytes > 0 && this.outBytes + batch.bytes > this.limits.nodeOutBytesMax) {
          this.waiting.add(w);
          return;
        }
        this.take(w, batch);
        // A batch that ends inside an index (a split one) vouches only for the index before it.
        const through = Math.min(lastDelivered(w), (batch.events.at(-1) as RegistryEvent).index);
        w.outBytes += batch.bytes;
        this.outBytes += batch.bytes;
        invariant(this.outBytes <= this.limits.nodeOutBytesMax || this.outBytes === batch.bytes, "watch hub", `out bytes ${this.outBytes} past the bound`);
        let done = false;
        const release = () => {
          if (done) return;
          done = true;
          w.outBytes -= batch.bytes;
          this.outBytes -= batch.bytes;
          invariant(w.outBytes >= 0 && this.outBytes >= 0, "watch hub", "out bytes below zero");
          // Watchers already waiting for the node's bytes go first; this one queues behind them.
          this.wake();
          if (!w.ended) this.pump(w);
        };
        if (w.sink.events(batch.events, through, release) === false) w.paused = true;
      }
    } finally {
      w.pumping = false;
    }
  }

  /** wake lets watchers held back by the node's out bound try again, oldest first. */
  private wake(): void {
    if (this.waking) return;
    this.waking = true;
    try {
      for (const w of [...this.waiting]) {
        if (this.outBytes >= this.limits.nodeOutBytesMax) return;
        this.waiting.delete(w);
        if (!w.ended) this.pump(w);
      }
    } finally {
      this.waking = false;
    }
  }

  /**
   * nextBatch is the next batch without taking it: whole index groups, from the replay first and
   * then the queue, while they fit in WATCH_BATCH_EVENTS_MAX and WATCH_BATCH_BYTES_MAX; a group
   * larger than that on its own is a batch by itself, cut only at WATCH_MESSAGE_BYTES_MAX.
   */
  private nextBatch(w: Watcher): Batch | undefined {
    // A chunk may hold nothing this watcher matches (skipUnmatched then leaves it spent): read on
    // until a chunk has something or the replay ends. Stopping at a spent chunk left the watcher
    // replaying with nothing to send until the next publish, which might never come (the property
    // test found it: a change seen only after another one).
    while (w.replaying && w.replayPos >= w.replay.length) {
      if (!this.readHistory(w)) return undefined;
    }
    const fromReplay = w.replayPos < w.replay.length;
    const src = fromReplay ? w.replay : w.queue;
    let pos = fromReplay ? w.replayPos : w.queueHead;
    const events: RegistryEvent[] = [];
    let bytes = 0;
    while (pos < src.length) {
      const index = (src[pos] as RegistryEvent).index;
      const group: RegistryEvent[] = [];
      let groupBytes = 0;
      let end = pos;
      let cut = false;
      for (; end < src.length && (src[end] as RegistryEvent).index === index; end++) {
        const e = src[end] as RegistryEvent;
        if (!w.match(e)) continue;
        const b = w.bytesOf(e);
        if (events.length + group.length > 0 && bytes + groupBytes + b > this.limits.messageBytesMax) {
          cut = true;
          break;
        }
        group.push(e);
        groupBytes += b;
      }
      const full = events.length + group.length > WATCH_BATCH_EVENTS_MAX || bytes + groupBytes > this.limits.batchBytesMax;
      if (events.length > 0 && (full || cut)) break;
      for (const e of group) events.push(e);
      bytes += groupBytes;
      pos = end;
      if (cut) break;
    }
    return events.length === 0 ? undefined : { events, bytes, fromReplay, end: pos };
  }

  /**
   * readHistory loads the next chunk of the replay, or ends the replay when the history holds
   * nothing more up to seen (later changes are then queued as they come). When the history lost
   * changes the replay still needs, the watcher lags: it resumes from what it was given and is told
   * there to re-list. Returns whether the watcher is still open.
   */
  private readHistory(w: Watcher): boolean {
    const history = this.source.eventsSince(w.replayed, this.limits.replayChunkEvents);
    if ("compacted" in history) {
      this.end(w, new WatcherLaggingError(lastDelivered(w)));
      return false;
    }
    this.load(w, history.events);
    return true;
  }

  /** load makes `events` (from the history, after w.replayed) the replay's current chunk, cut at seen. */
  private load(w: Watcher, events: readonly RegistryEvent[]): void {
    let start = 0;
    while (start < events.length && (events[start] as RegistryEvent).index <= w.replayed) start++;
    let end = start;
    while (end < events.length && (events[end] as RegistryEvent).index <= w.seen) end++;
    if (end === start) {
      w.replaying = false;
      this.replaying.delete(w);
      w.replayed = w.seen;
      w.replay = [];
      w.replayPos = 0;
      return;
    }
    w.replay = start === 0 && end === events.length ? events : events.slice(start, end);
    w.replayPos = 0;
    w.replayed = (w.replay.at(-1) as RegistryEvent).index;
    skipUnmatched(w);
  }

  /** take moves the watcher past a batch from nextBatch. */
  private take(w: Watcher, batch: Batch): void {
    if (batch.fromReplay) {
      w.replayPos = batch.end;
      skipUnmatched(w);
      return;
    }
    w.queueBytes -= batch.bytes;
    this.queueBytes -= batch.bytes;
    if (batch.end >= w.queue.length) {
      w.queue = [];
      w.queueHead = 0;
    } else {
      w.queueHead = batch.end;
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
    w.replayPos = 0;
    this.queueBytes -= w.queueBytes;
    w.queueBytes = 0;
    w.queue = [];
    w.queueHead = 0;
    this.watchers.delete(w);
    this.unindexWatcher(w);
    this.waiting.delete(w);
    return true;
  }
}

function addTo(map: Map<string, Set<Watcher>>, key: string, w: Watcher): void {
  const set = map.get(key);
  if (set) set.add(w);
  else map.set(key, new Set([w]));
}

function removeFrom(map: Map<string, Set<Watcher>>, key: string, w: Watcher): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(w);
  if (set.size === 0) map.delete(key);
}

/** sameSelectors says whether two events have the same service and the same key, so the second finds no other watchers. */
function sameSelectors(a: RegistryEvent, b: RegistryEvent): boolean {
  const keyOf = (e: RegistryEvent) => (e.kind === "kv" ? (e.type === "put" ? e.entry.key : e.key) : undefined);
  return serviceOf(a) === serviceOf(b) && keyOf(a) === keyOf(b);
}

function skipUnmatched(w: Watcher): void {
  while (w.replayPos < w.replay.length && !w.match(w.replay[w.replayPos] as RegistryEvent)) w.replayPos++;
}

/** lastDelivered is the highest index up to which every matching change was handed to the sink. */
function lastDelivered(w: Watcher): number {
  const next = w.replay[w.replayPos];
  if (next !== undefined) return next.index - 1;
  if (w.replaying) return w.replayed;
  const queued = w.queue[w.queueHead];
  return queued === undefined ? w.seen : queued.index - 1;
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
  if (e.kind === "master") return e.service;
  return undefined;
}
