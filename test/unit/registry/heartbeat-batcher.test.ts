import { describe, expect, it } from "vitest";
import { BATCH_ITEMS_MAX, BATCH_WINDOW_MS, HEARTBEAT_QUEUE_MAX, type HeartbeatItem, HeartbeatBatcher, type RenewResult, type ScheduleFn } from "../../../src/registry/heartbeat-batcher.js";
import { BatchResultMismatchError, BatcherClosedError, HeartbeatOverloadError } from "../../../src/registry/errors.js";
import { TTL_MS_RANGE } from "../../../src/registry/limits.js";

/** FakeClock is a ScheduleFn the test advances by hand. */
class FakeClock {
  now = 0;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  readonly schedule: ScheduleFn = (fn, delayMs) => {
    const t = { at: this.now + delayMs, fn, live: true };
    this.timers.push(t);
    return () => {
      t.live = false;
    };
  };
  get armed(): number {
    return this.timers.filter((t) => t.live).length;
  }
  advance(ms: number): void {
    this.now += ms;
    for (const t of this.timers.filter((x) => x.live && x.at <= this.now)) {
      t.live = false;
      t.fn();
    }
    this.timers = this.timers.filter((t) => t.live);
  }
}

/** Deferred send: each call is recorded and answered by the test. */
function recordingSend() {
  const calls: { items: readonly HeartbeatItem[]; resolve: (r: RenewResult[]) => void; reject: (e: unknown) => void }[] = [];
  const send = (items: readonly HeartbeatItem[]) =>
    new Promise<RenewResult[]>((resolve, reject) => {
      calls.push({ items, resolve, reject });
    });
  return { calls, send };
}

const hb = (id: string): HeartbeatItem => ({ service: "web", id });
const flushMicrotasks = () => new Promise<void>((r) => setImmediate(r));

describe("heartbeat batcher", () => {
  it("heartbeats: limits are sane", () => {
    expect(BATCH_WINDOW_MS).toBeLessThan(TTL_MS_RANGE[0] / 100);
    expect(BATCH_ITEMS_MAX).toBeLessThanOrEqual(HEARTBEAT_QUEUE_MAX);
    expect(() => new HeartbeatBatcher({ send: async () => [], schedule: new FakeClock().schedule, itemsMax: 0 })).toThrow(RangeError);
    expect(
      () => new HeartbeatBatcher({ send: async () => [], schedule: new FakeClock().schedule, itemsMax: 10, queueMax: 5 }),
    ).toThrow(RangeError);
  });

  it("heartbeats: items within one window go in one send and each caller gets its own result", async () => {
    const clock = new FakeClock();
    const { calls, send } = recordingSend();
    const b = new HeartbeatBatcher({ send, schedule: clock.schedule });
    const ps = ["a", "b", "c"].map((id) => b.renew(hb(id)));
    expect(clock.armed).toBe(1);
    clock.advance(BATCH_WINDOW_MS - 1);
    expect(calls).toHaveLength(0);
    clock.advance(1);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.items.map((i) => i.id)).toEqual(["a", "b", "c"]);
    expect(b.pending).toBe(3);
    // Partial failure: one instance is unknown to the leader; the others are renewed.
    calls[0]?.resolve([
      { ok: true, ttlMs: 5_000 },
      { ok: false, reason: "not-found" },
      { ok: true, ttlMs: 7_000 },
    ]);
    await expect(Promise.all(ps)).resolves.toEqual([
      { ok: true, ttlMs: 5_000 },
      { ok: false, reason: "not-found" },
      { ok: true, ttlMs: 7_000 },
    ]);
    expect(b.pending).toBe(0);
    expect(clock.armed).toBe(0);
  });

  it("heartbeats: a full batch is sent at once, without waiting for the window", async () => {
    const clock = new FakeClock();
    const { calls, send } = recordingSend();
    const b = new HeartbeatBatcher({ send, schedule: clock.schedule, itemsMax: 4, queueMax: 100 });
    const ps = Array.from({ length: 9 }, (_, i) => b.renew(hb(`i${i}`)));
    expect(calls.map((c) => c.items.length)).toEqual([4, 4]);
    expect(clock.armed).toBe(1);
    clock.advance(BATCH_WINDOW_MS);
    expect(calls.map((c) => c.items.length)).toEqual([4, 4, 1]);
    for (const c of calls) c.resolve(c.items.map(() => ({ ok: true, ttlMs: 1 })));
    await expect(Promise.all(ps)).resolves.toHaveLength(9);
  });

  it("heartbeats: a failed send rejects every caller of that batch with its error, and only them", async () => {
    const clock = new FakeClock();
    const { calls, send } = recordingSend();
    const b = new HeartbeatBatcher({ send, schedule: clock.schedule });
    const first = [b.renew(hb("a")), b.renew(hb("b"))];
    clock.advance(BATCH_WINDOW_MS);
    const second = b.renew(hb("c"));
    clock.advance(BATCH_WINDOW_MS);
    const cause = new Error("leader unreachable");
    calls[0]?.reject(cause);
    calls[1]?.resolve([{ ok: true, ttlMs: 1 }]);
    for (const p of first) await expect(p).rejects.toBe(cause);
    await expect(second).resolves.toEqual({ ok: true, ttlMs: 1 });
    expect(b.pending).toBe(0);
  });

  it("heartbeats: a send that throws synchronously rejects the batch too", async () => {
    const clock = new FakeClock();
    const cause = new Error("boom");
    const b = new HeartbeatBatcher({
      send: () => {
        throw cause;
      },
      schedule: clock.schedule,
    });
    const p = b.renew(hb("a"));
    clock.advance(BATCH_WINDOW_MS);
    await expect(p).rejects.toBe(cause);
  });

  it("heartbeats: an answer with the wrong number of results rejects the batch with a typed error", async () => {
    const clock = new FakeClock();
    const { calls, send } = recordingSend();
    const b = new HeartbeatBatcher({ send, schedule: clock.schedule });
    const ps = [b.renew(hb("a")), b.renew(hb("b"))];
    clock.advance(BATCH_WINDOW_MS);
    calls[0]?.resolve([{ ok: true, ttlMs: 1 }]);
    for (const p of ps) {
      const err = await p.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BatchResultMismatchError);
      expect(err).toMatchObject({ items: 2, results: 1 });
    }
  });

  it("heartbeats: waiting plus in-flight heartbeats are bounded; at the limit the next is refused, not queued", async () => {
    const clock = new FakeClock();
    const { calls, send } = recordingSend();
    const b = new HeartbeatBatcher({ send, schedule: clock.schedule, itemsMax: 3, queueMax: 5 });
    const accepted = Array.from({ length: 5 }, (_, i) => b.renew(hb(`i${i}`)));
    expect(calls).toHaveLength(1); // three in flight, two waiting
    expect(b.pending).toBe(5);
    const refused = await b.renew(hb("x")).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HeartbeatOverloadError);
    expect(refused).toMatchObject({ limit: 5 });
    // When the in-flight batch is answered, room comes back.
    calls[0]?.resolve([1, 2, 3].map(() => ({ ok: true, ttlMs: 1 })));
    await flushMicrotasks();
    expect(b.pending).toBe(2);
    const more = b.renew(hb("y"));
    clock.advance(BATCH_WINDOW_MS);
    expect(calls[1]?.items.map((i) => i.id)).toEqual(["i3", "i4", "y"]);
    calls[1]?.resolve([1, 2, 3].map(() => ({ ok: true, ttlMs: 2 })));
    await expect(Promise.all([...accepted, more])).resolves.toHaveLength(6);
  });

  it("heartbeats: the default limit is HEARTBEAT_QUEUE_MAX exactly", async () => {
    const clock = new FakeClock();
    const { send } = recordingSend();
    const b = new HeartbeatBatcher({ send, schedule: clock.schedule });
    for (let i = 0; i < HEARTBEAT_QUEUE_MAX; i++) void b.renew(hb(`i${i}`));
    expect(b.pending).toBe(HEARTBEAT_QUEUE_MAX);
    await expect(b.renew(hb("over"))).rejects.toBeInstanceOf(HeartbeatOverloadError);
  });

  it("heartbeats: close rejects what waits and refuses more; flush sends early", async () => {
    const clock = new FakeClock();
    const { calls, send } = recordingSend();
    const b = new HeartbeatBatcher({ send, schedule: clock.schedule });
    const early = b.renew(hb("a"));
    b.flush();
    expect(calls).toHaveLength(1);
    expect(clock.armed).toBe(0);
    const waiting = b.renew(hb("b"));
    b.close();
    await expect(waiting).rejects.toBeInstanceOf(BatcherClosedError);
    await expect(b.renew(hb("c"))).rejects.toBeInstanceOf(BatcherClosedError);
    expect(clock.armed).toBe(0);
    // The batch in flight still finishes.
    calls[0]?.resolve([{ ok: true, ttlMs: 3 }]);
    await expect(early).resolves.toEqual({ ok: true, ttlMs: 3 });
  });
});
