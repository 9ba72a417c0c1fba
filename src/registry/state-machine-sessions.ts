/**
 * The at-most-once table (Raft dissertation §6.3): per client, the last sequence number applied
 * and its result, so a retry gets the first answer instead of applying again.
 */
import type { CommandResult } from "./types.js";

/** SessionRecord is what the table keeps per client. */
export interface SessionRecord {
  readonly seq: number;
  readonly result: CommandResult;
  /** lastAt is the leader-stamped time of the client's last write. */
  readonly lastAt: number;
}

/**
 * SessionTable is bounded by `sessionsMax`, least recently used first out, and forgets clients
 * idle for `idleMs` by the commands' stamped time. Map order is the LRU order: a touched client
 * is moved to the end.
 */
export class SessionTable {
  private readonly records = new Map<string, SessionRecord>();

  constructor(
    private readonly sessionsMax: number,
    private readonly idleMs: number,
  ) {}

  get size(): number {
    return this.records.size;
  }

  get(client: string): SessionRecord | undefined {
    return this.records.get(client);
  }

  /**
   * expire forgets clients idle for idleMs at `at`, oldest first. It stops at the first client not
   * idle: a leader's clock behind an earlier leader's may leave a few past their time until later.
   */
  expire(at: number): void {
    for (const [client, r] of this.records) {
      if (at - r.lastAt < this.idleMs) return;
      this.records.delete(client);
    }
  }

  /** record stores a client's newest result and makes it the most recently used, evicting the least recently used past the bound. */
  record(client: string, rec: SessionRecord): void {
    this.records.delete(client);
    this.records.set(client, rec);
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
