import { describe, expect, it } from "vitest";
import { HISTORY_BYTES_MAX } from "../../../src/registry/limits.js";
import { b64, Harness, spec, T0 } from "./registry-harness.js";

describe("registry sessions", () => {
  it("sessions: a retried write returns the first result marked duplicate and changes nothing", () => {
    const h = new Harness();
    const first = h.ok({ op: "kv.put", key: "a", value: b64("1") }, { client: "c1", seq: 1 });
    expect(first).toEqual({ ok: true, index: 1 });
    const again = h.run({ op: "kv.put", key: "a", value: b64("1") }, { client: "c1", seq: 1 });
    expect(again).toEqual({ ok: true, index: 1, duplicate: true });
    expect(h.sm.kvGet("a")).toMatchObject({ version: 1, modIndex: 1 });
    expect(h.events.length).toBe(1);
    expect(h.sm.applied).toBe(2);
  });

  it("sessions: a failed write is remembered too, so its retry fails the same way", () => {
    const h = new Harness();
    const r = h.run({ op: "instance.deregister", service: "web", id: "x" }, { client: "c1", seq: 1 });
    expect(r).toMatchObject({ ok: false, code: "not-found", index: 1 });
    h.ok({ op: "instance.register", instance: spec("x") });
    expect(h.run({ op: "instance.deregister", service: "web", id: "x" }, { client: "c1", seq: 1 })).toEqual(r);
    expect(h.sm.instance("web", "x")).toBeDefined();
  });

  it("sessions: within the window out-of-order seqs apply once each; older than the window is stale; clients are independent", () => {
    const h = new Harness({ sessionWindow: 4 });
    h.ok({ op: "kv.put", key: "a", value: "" }, { client: "c1", seq: 5 });
    // seq 4 never ran and is inside the window (a write that was in flight at the same time): it applies.
    expect(h.ok({ op: "kv.put", key: "a", value: "" }, { client: "c1", seq: 4 }).duplicate).toBeUndefined();
    // Retries of both are answered from the table.
    expect(h.run({ op: "kv.put", key: "a", value: "" }, { client: "c1", seq: 4 })).toMatchObject({ duplicate: true });
    expect(h.run({ op: "kv.put", key: "a", value: "" }, { client: "c1", seq: 5 })).toMatchObject({ duplicate: true });
    expect(h.ok({ op: "kv.put", key: "a", value: "" }, { client: "c2", seq: 1 }).duplicate).toBeUndefined();
    expect(h.ok({ op: "kv.put", key: "a", value: "" }, { client: "c1", seq: 9 }).duplicate).toBeUndefined();
    expect(h.sm.kvGet("a")?.version).toBe(4);
    // 9 - 4 = 5: seq 5 and older are now past the window.
    expect(h.run({ op: "kv.put", key: "a", value: "" }, { client: "c1", seq: 5 })).toMatchObject({ ok: false, code: "stale-session" });
    expect(h.run({ op: "kv.put", key: "a", value: "" }, { client: "c1", seq: 6 })).toMatchObject({ ok: true });
    expect(h.sm.kvGet("a")?.version).toBe(5);
  });

  it("sessions: stored answers drop bulky payloads (previous values, transaction reads) but keep the outcome", () => {
    const h = new Harness();
    h.ok({ op: "kv.put", key: "k", value: "AAAA" });
    const first = h.ok({ op: "kv.put", key: "k", value: "BBBB" }, { client: "c", seq: 1 });
    expect(first.prev?.value).toBe("AAAA");
    const retry = h.run({ op: "kv.put", key: "k", value: "BBBB" }, { client: "c", seq: 1 });
    expect(retry).toMatchObject({ ok: true, duplicate: true, index: first.index });
    expect((retry as { prev?: unknown }).prev).toBeUndefined();
  });

  it("sessions: the table is bounded and forgets the least recently used client", () => {
    const h = new Harness({ sessionsMax: 3 });
    for (const c of ["a", "b", "c"]) h.ok({ op: "kv.put", key: c, value: "" }, { client: c, seq: 1 });
    h.ok({ op: "kv.put", key: "a", value: "" }, { client: "a", seq: 2 }); // a is now the most recent
    h.ok({ op: "kv.put", key: "d", value: "" }, { client: "d", seq: 1 }); // evicts b
    expect(h.sm.stats().sessions).toBe(3);
    // b was forgotten: its retry applies again (the documented cost of the bound); a's is still caught.
    expect(h.ok({ op: "kv.put", key: "b", value: "" }, { client: "b", seq: 1 }).duplicate).toBeUndefined();
    expect(h.sm.kvGet("b")?.version).toBe(2);
    expect(h.run({ op: "kv.put", key: "a", value: "" }, { client: "a", seq: 2 })).toMatchObject({ duplicate: true });
  });

  it("sessions: clients idle for sessionIdleMs by the stamped time are forgotten", () => {
    const h = new Harness({ sessionIdleMs: 1000 });
    h.ok({ op: "kv.put", key: "a", value: "" }, { client: "old", seq: 3 });
    h.at = T0 + 500;
    h.ok({ op: "kv.put", key: "b", value: "" }, { client: "young", seq: 1 });
    h.at = T0 + 999;
    h.ok({ op: "kv.put", key: "x", value: "" });
    expect(h.sm.stats().sessions).toBe(2);
    h.at = T0 + 1000;
    h.ok({ op: "kv.put", key: "x", value: "" });
    expect(h.sm.stats().sessions).toBe(1);
    // The forgotten client's old seq is no longer known to be stale.
    expect(h.run({ op: "kv.put", key: "a", value: "" }, { client: "old", seq: 1 })).toMatchObject({ ok: true });
    expect(h.run({ op: "kv.put", key: "b", value: "" }, { client: "young", seq: 1 })).toMatchObject({ duplicate: true });
  });
});

describe("registry history", () => {
  it("history: eventsSince returns every event after an index, grouped by entry", () => {
    const h = new Harness();
    h.ok({ op: "instance.register", instance: spec("a") }); // 1: service + instance
    h.ok({ op: "kv.put", key: "k", value: "" }); // 2
    h.raw(new Uint8Array(0)); // 3: no-op
    h.ok({ op: "kv.delete", key: "k" }); // 4
    const all = h.sm.eventsSince(0);
    expect("events" in all && all.events.map((e) => e.index)).toEqual([1, 1, 2, 4]);
    const after2 = h.sm.eventsSince(2);
    expect("events" in after2 && after2.events.map((e) => `${e.kind}.${e.type}@${e.index}`)).toEqual(["kv.delete@4"]);
    expect(h.sm.eventsSince(4)).toEqual({ events: [] });
    expect(h.events.flat()).toEqual("events" in all ? all.events : []);
  });

  it("history: bounded, dropping whole entries, and a watch from before the floor is told compacted", () => {
    const h = new Harness({ historyEventsMax: 4 });
    h.ok({ op: "instance.register", instance: spec("a") }); // 1: 2 events
    h.ok({ op: "kv.put", key: "k1", value: "" }); // 2
    h.ok({ op: "kv.put", key: "k2", value: "" }); // 3: 4 events held
    expect(h.sm.eventsSince(0)).toMatchObject({ events: { length: 4 } });
    h.ok({ op: "kv.put", key: "k3", value: "" }); // 4: drops entry 1 whole
    expect(h.sm.stats().historyEvents).toBe(3);
    expect(h.sm.eventsSince(0)).toEqual({ compacted: true, oldestIndex: 1 });
    expect(h.sm.eventsSince(1)).toMatchObject({ events: [{ index: 2 }, { index: 3 }, { index: 4 }] });
    // One entry with more events than the bound is kept whole; everything before it goes.
    h.ok({ op: "kv.txn", compares: [], success: ["a", "b", "c", "d", "e"].map((k) => ({ op: "put" as const, key: k, value: "" })), failure: [] }); // 5
    expect(h.sm.stats().historyEvents).toBe(5);
    expect(h.sm.eventsSince(3)).toEqual({ compacted: true, oldestIndex: 4 });
    expect(h.sm.eventsSince(4)).toMatchObject({ events: { length: 5 } });
  });

  it("history: many entries past the bound keep exactly the newest and stay ordered", () => {
    const h = new Harness({ historyEventsMax: 100 });
    for (let i = 0; i < 5000; i++) h.ok({ op: "kv.put", key: `k${i % 7}`, value: "" });
    const r = h.sm.eventsSince(4900);
    expect("events" in r && r.events.map((e) => e.index)).toEqual(Array.from({ length: 100 }, (_, i) => 4901 + i));
    expect(h.sm.eventsSince(4899)).toEqual({ compacted: true, oldestIndex: 4900 });
  });

  it("history: bounded in bytes too, so overwritten large values do not pile up (whole entries, newest always kept)", () => {
    const big = "x".repeat(100_000); // base64 text of a 75 KB value
    const h = new Harness({ historyBytesMax: 1_000_000 });
    for (let i = 0; i < 50; i++) h.ok({ op: "kv.put", key: "k", value: big });
    const held = h.sm.stats().historyEvents;
    // About 1 MB / 100 KB = 9 of the 50 puts fit; without a byte bound all 50 would be held.
    expect(held).toBeGreaterThanOrEqual(8);
    expect(held).toBeLessThanOrEqual(10);
    expect(h.sm.stats().historyBytes).toBeLessThanOrEqual(1_000_000);
    expect(h.sm.eventsSince(50 - held)).toMatchObject({ events: { length: held } });
    expect(h.sm.eventsSince(49 - held)).toEqual({ compacted: true, oldestIndex: 50 - held });
    // One entry over the bound on its own is still kept whole.
    const huge = "y".repeat(400_000);
    h.ok({ op: "kv.txn", compares: [], success: ["a", "b", "c", "d"].map((k) => ({ op: "put" as const, key: k, value: huge })), failure: [] });
    expect(h.sm.stats().historyEvents).toBe(4);
    expect(h.sm.eventsSince(50)).toMatchObject({ events: [{ index: 51 }, { index: 51 }, { index: 51 }, { index: 51 }] });
  });

  it("history: the default byte bound is 256 MiB", () => {
    expect(HISTORY_BYTES_MAX).toBe(256 * 1024 * 1024);
  });

  it("history: after restore it starts empty at the snapshot's index and onReset is called", () => {
    const h = new Harness();
    h.ok({ op: "kv.put", key: "a", value: "" });
    h.ok({ op: "kv.put", key: "b", value: "" });
    const other = new Harness();
    other.sm.restore(h.sm.snapshot());
    other.index = 2;
    expect(other.resets).toEqual([2]);
    expect(other.sm.eventsSince(2)).toEqual({ events: [] });
    expect(other.sm.eventsSince(1)).toEqual({ compacted: true, oldestIndex: 2 });
    other.ok({ op: "kv.put", key: "c", value: "" });
    expect(other.sm.eventsSince(2)).toMatchObject({ events: [{ index: 3, kind: "kv" }] });
  });
});
