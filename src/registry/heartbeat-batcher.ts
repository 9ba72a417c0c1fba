/**
 * Followers take heartbeats from instances and pass them to the leader in batches: one RPC carries
 * up to BATCH_ITEMS_MAX renewals gathered during at most BATCH_WINDOW_MS, so 100,000 instances
 * heartbeating every few seconds cost the leader tens of RPCs a second, not tens of thousands.
 *
 * A heartbeat is acknowledged to its caller only after the leader accepted it (the send resolved;
 * the leader answers only once a quorum confirmed it still leads).
 * Acknowledging earlier would be a lie with a price: if the batch then failed (leader gone, follower
 * cut off), the instance would believe its lease extended while the leader's deadline ran out; the
 * leader would mark it critical and, for a master, promote a standby while the old master still
 * believes it holds the lease. Instances may only count from an acknowledged heartbeat (measured
 * from when they sent it) that they hold the lease for ttlMs.
 */
import { BatcherClosedError, BatchResultMismatchError, HeartbeatOverloadError } from "./errors.js";
import type { Health } from "./types.js";

/** BATCH_WINDOW_MS: the longest a heartbeat waits for company; 5 ms is small next to TTLs of seconds (TTL_MS_RANGE starts at 1 s). */
export const BATCH_WINDOW_MS = 5;

/** BATCH_ITEMS_MAX: renewals in one send; 1,000 items of ~100 bytes keep one RPC near 100 KB, far below the 4 MiB gRPC default. */
export const BATCH_ITEMS_MAX = 1_000;

/** HEARTBEAT_QUEUE_MAX bounds heartbeats waiting or in flight on one follower: 20,000 is the renewals of 100,000 instances over one 1 s round at TTL/3 with room for a slow leader; past it callers are refused, not queued. */
export const HEARTBEAT_QUEUE_MAX = 20_000;

/** HeartbeatItem is one renewal a follower passes on. */
export interface HeartbeatItem {
  readonly service: string;
  readonly id: string;
  /** status, when present, is the health the instance reports (with its note). */
  readonly status?: { readonly health: Health; readonly note: string };
}

/** RenewResult is the leader's answer to one renewal, as the leader's API returns it. */
export type RenewResult = { readonly ok: true; readonly ttlMs: number } | { readonly ok: false; readonly reason: string };

/** ScheduleFn runs fn once after delayMs and returns a function that cancels it (a setTimeout the tests can drive). */
export type ScheduleFn = (fn: () => void, delayMs: number) => () => void;

/** SendFn passes one batch to the leader. Contract: it resolves with exactly one result per item, in item order, or rejects when the batch as a whole failed. */
export type SendFn<I, R> = (items: readonly I[]) => Promise<readonly R[]>;

/** HeartbeatBatcherOptions are the batcher's dependencies and limits (the limits default to the constants). */
export interface HeartbeatBatcherOptions<I, R> {
  readonly send: SendFn<I, R>;
  readonly schedule: ScheduleFn;
  readonly windowMs?: number;
  readonly itemsMax?: number;
  readonly queueMax?: number;
}

interface Waiter<I, R> {
  readonly item: I;
  readonly resolve: (r: R) => void;
  readonly reject: (e: unknown) => void;
}

/** HeartbeatBatcher gathers renewals into batches for one send each; each caller gets its own result. */
export class HeartbeatBatcher<I = HeartbeatItem, R = RenewResult> {
  private readonly send: SendFn<I, R>;
  private readonly schedule: ScheduleFn;
  private readonly windowMs: number;
  private readonly itemsMax: number;
  private readonly queueMax: number;
  // Invariant: waiting.length < itemsMax after every public call; cancelTimer is set iff waiting is non-empty.
  private waiting: Waiter<I, R>[] = [];
  private cancelTimer: (() => void) | null = null;
  private inFlightItems = 0;
  private closed = false;

  constructor(options: HeartbeatBatcherOptions<I, R>) {
    this.send = options.send;
    this.schedule = options.schedule;
    this.windowMs = options.windowMs ?? BATCH_WINDOW_MS;
    this.itemsMax = options.itemsMax ?? BATCH_ITEMS_MAX;
    this.queueMax = options.queueMax ?? HEARTBEAT_QUEUE_MAX;
    if (!(this.windowMs >= 0 && this.itemsMax >= 1 && this.queueMax >= this.itemsMax)) {
      throw new RangeError(`heartbeat batcher limits: window ${this.windowMs} ms, items ${this.itemsMax}, queue ${this.queueMax}`);
    }
  }

  /** pending is the number of heartbeats waiting or in flight. */
  get pending(): number {
    return this.waiting.length + this.inFlightItems;
  }

  /** renew queues one heartbeat; it resolves with the leader's answer for it, or rejects with the batch's error. */
  renew(item: I): Promise<R> {
    if (this.closed) return Promise.reject(new BatcherClosedError());
    if (this.pending >= this.queueMax) return Promise.reject(new HeartbeatOverloadError(this.queueMax));
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.waiting.length >= this.itemsMax) this.flush();
      else if (this.cancelTimer === null) this.cancelTimer = this.schedule(() => this.onTimer(), this.windowMs);
    });
  }

  /** flush sends what is waiting now, without waiting for the window to end. */
  flush(): void {
    if (this.cancelTimer !== null) {
      this.cancelTimer();
      this.cancelTimer = null;
    }
    if (this.waiting.length === 0) return;
    const batch = this.waiting;
    this.waiting = [];
    this.inFlightItems += batch.length;
    void this.sendBatch(batch);
  }

  /** close rejects the heartbeats still waiting and refuses new ones; batches in flight finish. */
  close(): void {
    this.closed = true;
    if (this.cancelTimer !== null) this.cancelTimer();
    this.cancelTimer = null;
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w.reject(new BatcherClosedError());
  }

  private onTimer(): void {
    this.cancelTimer = null;
    this.flush();
  }

  private async sendBatch(batch: readonly Waiter<I, R>[]): Promise<void> {
    let results: readonly R[];
    try {
      results = await this.send(batch.map((w) => w.item));
    } catch (err) {
      this.inFlightItems -= batch.length;
      for (const w of batch) w.reject(err);
      return;
    }
    this.inFlightItems -= batch.length;
    if (results.length !== batch.length) {
      // The answer came over the network from another node: an operating error, not a bug here.
      const err = new BatchResultMismatchError(batch.length, results.length);
      for (const w of batch) w.reject(err);
      return;
    }
    for (const [i, w] of batch.entries()) w.resolve(results[i] as R);
  }
}
