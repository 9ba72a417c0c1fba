/**
 * The watch history: the events of the last changes, whole entries at a time, so a watch can
 * resume from any index at or after `floor` and get every change after it.
 */
import type { RegistryEvent } from "./types.js";

/** EVENT_OVERHEAD_BYTES: what an event costs beside its strings (object, index, kind, numbers). */
const EVENT_OVERHEAD_BYTES = 128;

/**
 * eventSizeBytes estimates the memory one event holds: its overhead plus the length of its strings
 * (a KV value dominates: base64 text of up to 512 KiB). An estimate within a small factor is
 * enough for a bound whose job is to stop overwritten large values from piling up.
 */
export function eventSizeBytes(e: RegistryEvent): number {
  switch (e.kind) {
    case "kv":
      return EVENT_OVERHEAD_BYTES + (e.type === "put" ? e.entry.key.length + e.entry.value.length : e.key.length);
    case "instance": {
      if (e.type === "delete") return EVENT_OVERHEAD_BYTES + e.service.length + e.id.length;
      const i = e.instance;
      let n = EVENT_OVERHEAD_BYTES * 2 + i.service.length + i.id.length + i.address.length + i.note.length;
      for (const t of i.tags) n += t.length;
      // for-in, not Object.entries: no array of pairs per registration (~0.75 KB each, measured).
      for (const k in i.metadata) n += k.length + (i.metadata[k] as string).length;
      return n;
    }
    case "service":
      return EVENT_OVERHEAD_BYTES * 2 + (e.type === "put" ? JSON.stringify(e.service).length : e.name.length);
    case "master":
      return EVENT_OVERHEAD_BYTES + e.service.length + e.master.length + e.previous.length + e.reason.length;
  }
}

/** HistoryAnswer is what eventsSince returns: the events after an index, or that some of them are gone. */
export type HistoryAnswer = { readonly events: RegistryEvent[] } | { readonly compacted: true; readonly oldestIndex: number };

/**
 * EventHistory keeps at most `eventsMax` events and `bytesMax` bytes of them (eventSizeBytes; more
 * only while the newest entry alone has more), dropping whole entries from the front. Invariant:
 * every event with index > floor is held, in index order, starting at `head`; `bytes` is the sum
 * of the held events' sizes.
 */
export class EventHistory {
  private events: RegistryEvent[] = [];
  private head = 0;
  private bytesHeld = 0;
  /** floor: the history is complete after this index; a watch from below it has lost changes. */
  floor = 0;

  constructor(
    private readonly eventsMax: number,
    private readonly bytesMax = Number.POSITIVE_INFINITY,
  ) {}

  /** bytes is the estimated size of the held events. */
  get bytes(): number {
    return this.bytesHeld;
  }

  get size(): number {
    return this.events.length - this.head;
  }

  /** reset empties the history, complete after `index` (a restored snapshot's). */
  reset(index: number): void {
    this.events = [];
    this.head = 0;
    this.bytesHeld = 0;
    this.floor = index;
  }

  /** append adds the events of one entry (all with the same index, above every held one). */
  append(events: readonly RegistryEvent[]): void {
    for (const e of events) {
      this.events.push(e);
      this.bytesHeld += eventSizeBytes(e);
    }
    while (this.size > this.eventsMax || this.bytesHeld > this.bytesMax) {
      const first = this.events[this.head]!;
      // Never drop part of an entry: a watch must see all of an index's events or know it cannot.
      if (first.index === events[0]?.index) break;
      while (this.head < this.events.length && this.events[this.head]!.index === first.index) {
        this.bytesHeld -= eventSizeBytes(this.events[this.head]!);
        this.head++;
      }
      this.floor = first.index;
    }
    // Reclaim the dropped prefix now and then, so trimming stays linear overall.
    if (this.head > 1024 && this.head * 2 > this.events.length) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * since returns the events with index > `index` in order, or `compacted` when some of them were
   * dropped. With `max`, about that many: the answer ends at an index boundary, so it may hold the
   * rest of its last entry too.
   */
  since(index: number, max = Number.POSITIVE_INFINITY): HistoryAnswer {
    if (index < this.floor) return { compacted: true, oldestIndex: this.floor };
    let lo = this.head;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.events[mid]!.index <= index) lo = mid + 1;
      else hi = mid;
    }
    if (this.events.length - lo <= max) return { events: this.events.slice(lo) };
    let end = lo + Math.max(1, max);
    while (end < this.events.length && this.events[end]!.index === this.events[end - 1]!.index) end++;
    return { events: this.events.slice(lo, end) };
  }
}
