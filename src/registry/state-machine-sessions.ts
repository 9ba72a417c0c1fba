/**
 * The at-most-once table (Raft dissertation §6.3), extended to a window so that one client may
 * have several writes in flight: per client, the results of its most recent sequence numbers, so
 * a retry gets the first answer instead of applying again.
 */
import type { CommandResult } from "./types.js";

/** SessionRecord is what the table keeps per client. */
export interface SessionRecord {
  /** maxSeq is the highest sequence number that ran. */
  readonly maxSeq: number;
  /** lastAt is the cluster time of the client's last write. */
  readonly lastAt: number;
  /** results are the stored answers of the seqs that ran within the window, ascending by seq. */
  readonly results: readonly (readonly [number, CommandResult])[];
}

/** SessionAnswer says what to do with a sessioned command. */
export type SessionAnswer =
  | { readonly kind: "new" }
  | { readonly kind: "duplicate"; readonly result: CommandResult }
  | { readonly kind: "stale"; readonly maxSeq: number };

/**
 * compact keeps what a retry needs to hear (success, index, counts) and drops bulky payloads
 * (previous values, transaction reads), so the table's memory stays bounded by counts alone.
 */
function compact(r: CommandResult): CommandResult {
  if (!r.ok) return r;
  const { prev: _prev, gets: _gets, ...rest } = r;
  return rest;
}

/** NEW is the answer for a seq that has not run (one shared object: answers are read-only). */
const NEW: SessionAnswer = { kind: "new" };

/**
 * SessionTable is bounded by `sessionsMax` clients, least recently used first out, remembers each
 * client's last `window` sequence numbers, and forgets clients idle for `idleMs` of cluster time
 * (never by a wall clock, so a leader whose clock is ahead cannot wipe the table). Map order is the LRU order: a touched client is moved to the end.
 */
export class SessionTable {
  private readonly records = new Map<string, SessionRecord>();

  constructor(
    private readonly sessionsMax: number,
    private readonly idleMs: number,
    private readonly window: number,
  ) {}

  get size(): number {
    return this.records.size;
  }

  get(client: string): SessionRecord | undefined {
    return this.records.get(client);
  }

  /** lookup classifies (client, seq): new, a retry of a seq that ran, or older than the window. */
  lookup(client: string, seq: number): SessionAnswer {
    const rec = this.records.get(client);
    if (!rec) return { kind: "new" };
    if (seq <= rec.maxSeq - this.window) return { kind: "stale", maxSeq: rec.maxSeq };
    // The common case, a client's next write, is past every stored seq: no need to look.
    if (seq > rec.maxSeq) return NEW;
    for (const [s, result] of rec.results) if (s === seq) return { kind: "duplicate", result };
    return NEW;
  }

  /**
   * expire forgets clients idle for idleMs at cluster time `at`, oldest first. It stops at the
   * first client not idle: cluster time never goes backwards, so LRU order is also lastAt order.
   */
  expire(at: number): void {
    for (const [client, r] of this.records) {
      if (at - r.lastAt < this.idleMs) return;
      this.records.delete(client);
    }
  }

  /** record stores the result of a seq that ran, makes the client the most recently used, and evicts past the bounds. */
  record(client: string, seq: number, result: CommandResult, at: number): void {
    const prev = this.records.get(client);
    const maxSeq = Math.max(prev?.maxSeq ?? 0, seq);
    const entry = [seq, compact(result)] as const;
    let results: (readonly [number, CommandResult])[];
    if (prev === undefined || seq > prev.maxSeq) {
      // The common case on every write: seq is the newest, so it goes last and only seqs now out of
      // the window leave from the front; no sort. A fresh array all the same: a record is never
      // changed in place, so a snapshot that holds the old one still sees what it froze.
      const old = prev?.results ?? [];
      let from = 0;
      while (from < old.length && (old[from] as readonly [number, CommandResult])[0] <= maxSeq - this.window) from++;
      results = old.slice(from);
      results.push(entry);
    } else {
      results = [...prev.results, entry].filter(([s]) => s > maxSeq - this.window).sort((a, b) => a[0] - b[0]);
    }
    this.records.delete(client);
    this.records.set(client, { maxSeq, lastAt: at, results });
    if (this.records.size > this.sessionsMax) {
      const oldest = this.records.keys().next().value as string;
      this.records.delete(oldest);
    }
  }

  /** entries lists the records in LRU order (least recently used first). */
  entries(): [string, SessionRecord][] {
    return [...this.records];
  }

  /** load replaces the table with records in LRU order (a snapshot's). */
  load(entries: readonly (readonly [string, SessionRecord])[]): void {
    this.records.clear();
    for (const [c, r] of entries) this.records.set(c, r);
  }
}
