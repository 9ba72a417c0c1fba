/**
 * The watch history: the events of the last changes, whole entries at a time, so a watch can
 * resume from any index at or after `floor` and get every change after it.
 */
import type { RegistryEvent } from "./types.js";

/** HistoryAnswer is what eventsSince returns: the events after an index, or that some of them are gone. */
export type HistoryAnswer = { readonly events: RegistryEvent[] } | { readonly compacted: true; readonly oldestIndex: number };

/**
 * EventHistory keeps at most `eventsMax` events (more only while the newest entry alone has more),
 * dropping whole entries from the front. Invariant: every event with index > floor is held, in
 * index order, starting at `head`.
 */
export class EventHistory {
  private events: RegistryEvent[] = [];
  private head = 0;
  /** floor: the history is complete after this index; a watch from below it has lost changes. */
  floor = 0;

  constructor(private readonly eventsMax: number) {}

  get size(): number {
    return this.events.length - this.head;
  }

  /** reset empties the history, complete after `index` (a restored snapshot's). */
  reset(index: number): void {
    this.events = [];
    this.head = 0;
    this.floor = index;
  }

  /** append adds the events of one entry (all with the same index, above every held one). */
  append(events: readonly RegistryEvent[]): void {
    for (const e of events) this.events.push(e);
    while (this.size > this.eventsMax) {
      const first = this.events[this.head]!;
      // Never drop part of an entry: a watch must see all of an index's events or know it cannot.
      if (first.index === events[0]?.index) break;
      while (this.head < this.events.length && this.events[this.head]!.index === first.index) this.head++;
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
