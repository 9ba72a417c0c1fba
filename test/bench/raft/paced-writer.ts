/**
 * PacedWriter sends one put every intervalMs whether or not earlier puts have answered (an open
 * loop), so a put that hangs on a dead leader never delays the next attempt. Sending anew on every
 * tick is its retry: a failed put is counted and the next tick tries again with a fresh key. It can
 * mark an instant and report when the first put sent after that instant was acknowledged.
 */
import { randomBytes } from "node:crypto";

/** PACED_INFLIGHT_MAX bounds outstanding puts: at 5 ms per tick and a 500 ms deadline about 100 are outstanding, so 400 leaves room for a put that overruns its deadline fourfold. */
export const PACED_INFLIGHT_MAX = 400;

/** PacedWriterOptions configure one PacedWriter. */
export interface PacedWriterOptions {
  /** put writes one key and must settle on its own (a deadline); the writer never cancels it. */
  readonly put: (key: string, value: Uint8Array) => Promise<void>;
  readonly intervalMs: number;
  readonly valueBytes: number;
  /** keyPrefix starts every key; each put gets the next sequence number after it. */
  readonly keyPrefix: string;
}

/** PacedWriterCounts say what the writer did; skipped counts ticks lost to PACED_INFLIGHT_MAX. */
export interface PacedWriterCounts {
  readonly sent: number;
  readonly acked: number;
  readonly failed: number;
  readonly skipped: number;
}

/** PacedWriter is an open-loop writer with a mark; see the module comment. */
export class PacedWriter {
  private readonly value: Uint8Array;
  private readonly inflight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private counts = { sent: 0, acked: 0, failed: 0, skipped: 0 };
  private markMs: number | undefined;
  private firstAckAfterMarkMs: number | undefined;
  private onAckAfterMark: ((atMs: number) => void) | undefined;

  constructor(private readonly options: PacedWriterOptions) {
    this.value = new Uint8Array(randomBytes(options.valueBytes));
  }

  /** start begins sending; the first put goes out at once. */
  start(): void {
    if (this.timer) throw new Error("PacedWriter started twice");
    this.tick();
    this.timer = setInterval(() => this.tick(), this.options.intervalMs);
  }

  /** snapshot returns the counts so far. */
  snapshot(): PacedWriterCounts {
    return { ...this.counts };
  }

  /**
   * mark records now (performance.now) as the instant to measure from and returns it. Call it in
   * the same synchronous step as the event it times, so no tick can fall between the two.
   */
  mark(): number {
    this.markMs = performance.now();
    this.firstAckAfterMarkMs = undefined;
    return this.markMs;
  }

  /** firstAckAfterMark resolves with the performance.now of the first acknowledgement of a put sent after mark, or undefined after timeoutMs. */
  firstAckAfterMark(timeoutMs: number): Promise<number | undefined> {
    if (this.markMs === undefined) throw new Error("firstAckAfterMark before mark");
    if (this.firstAckAfterMarkMs !== undefined) return Promise.resolve(this.firstAckAfterMarkMs);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.onAckAfterMark = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.onAckAfterMark = (atMs) => {
        clearTimeout(timer);
        this.onAckAfterMark = undefined;
        resolve(atMs);
      };
    });
  }

  /** stop sends no more puts and resolves once every outstanding put has settled. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.allSettled([...this.inflight]);
  }

  private tick(): void {
    if (this.inflight.size >= PACED_INFLIGHT_MAX) {
      this.counts.skipped++;
      return;
    }
    const sentMs = performance.now();
    const key = `${this.options.keyPrefix}/${this.counts.sent++}`;
    const call = this.options.put(key, this.value).then(
      () => this.acked(sentMs),
      () => void this.counts.failed++,
    );
    this.inflight.add(call);
    void call.finally(() => this.inflight.delete(call));
  }

  private acked(sentMs: number): void {
    const atMs = performance.now();
    this.counts.acked++;
    if (this.markMs === undefined || sentMs <= this.markMs || this.firstAckAfterMarkMs !== undefined) return;
    this.firstAckAfterMarkMs = atMs;
    this.onAckAfterMark?.(atMs);
  }
}
