import { EventEmitter } from "node:events";
import { status } from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import * as convert from "../../../src/api/convert.js";
import type { WatchRequestMsg, WatchResponseMsg } from "../../../src/common/messages.js";
import { clientApi } from "../../../src/common/proto.js";
import {
  ENCODED_EVENTS_CACHED,
  encodedEvent,
  encodedEventsCached,
  encodeWatchResponse,
  eventBytes,
  serveWatch,
  type WatchCall,
} from "../../../src/api/watch-stream.js";
import type { RegistryEvent } from "../../../src/registry/types.js";
import { type HistorySource, WatchHub } from "../../../src/registry/watch-hub.js";

vi.mock("../../../src/api/convert.js", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../../../src/api/convert.js")>();
  return { ...actual, eventToMsg: vi.fn(actual.eventToMsg) };
});

type Codec = { responseSerialize: (v: object) => Buffer; responseDeserialize: (b: Buffer) => WatchResponseMsg };
const codec = () => (clientApi().Registry.service as unknown as { Watch: Codec }).Watch;

/** History is a source holding `n` KV puts at indexes 1..n. */
function history(n: number): HistorySource & { events: RegistryEvent[] } {
  const events: RegistryEvent[] = Array.from({ length: n }, (_, i) => ({
    index: i + 1,
    kind: "kv",
    type: "put",
    entry: { key: `k${i + 1}`, value: Buffer.from(`value ${i + 1}`).toString("base64"), createIndex: i + 1, modIndex: i + 1, version: 1 },
  }));
  return { events, applied: n, eventsSince: (index) => ({ events: events.filter((e) => e.index > index) }) };
}

/** FakeCall is a server stream that records what is written and, with `hold`, keeps writes unsent. */
class FakeCall extends EventEmitter {
  written: (Buffer | WatchResponseMsg)[] = [];
  unsent: (() => void)[] = [];
  hold = false;
  ended = false;
  status: { code: number; details: string } | undefined;
  constructor(readonly request: WatchRequestMsg) {
    super();
    this.on("error", (e: { code: number; details: string }) => {
      this.status = { code: e.code, details: e.details };
    });
  }
  write(chunk: Buffer | WatchResponseMsg, cb?: () => void): boolean {
    this.written.push(chunk);
    if (cb && this.hold) this.unsent.push(cb);
    else cb?.();
    return true;
  }
  end(): void {
    this.ended = true;
  }
  get asCall(): WatchCall {
    return this as unknown as WatchCall;
  }
  /** decoded is every message written, as the client decodes it. */
  decoded(): WatchResponseMsg[] {
    return this.written.map((w) => (Buffer.isBuffer(w) ? codec().responseDeserialize(w) : w));
  }
}

const req = (fromIndex: number): WatchRequestMsg => ({ fromIndex, service: "", keyPrefix: "", kinds: [] });

describe("watch stream", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.mocked(convert.eventToMsg).mockClear();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("watch stream: a response built from shared event encodings decodes to what the plain encoding gives", () => {
    const h = history(3);
    const built = encodeWatchResponse(h.events, 7);
    const plain = codec().responseSerialize({ events: h.events.map(convert.eventToMsg), index: 7 });
    expect(codec().responseDeserialize(built)).toEqual(codec().responseDeserialize(plain));
    expect(encodedEvent(h.events[0] as RegistryEvent)).toBe(encodedEvent(h.events[0] as RegistryEvent));
    expect(eventBytes(h.events[0] as RegistryEvent)).toBe(encodedEvent(h.events[0] as RegistryEvent).length);
  });

  it("watch stream: each event is converted and encoded once, however many watchers receive it", () => {
    const h = history(20);
    const hub = new WatchHub(h, {}, eventBytes);
    const calls = Array.from({ length: 10 }, () => new FakeCall(req(0)));
    for (const call of calls) serveWatch({ hub, applied: () => h.applied }, call.asCall);
    for (const call of calls) expect(call.decoded().flatMap((m) => m.events.map((e) => e.kv?.key))).toEqual(h.events.map((e) => (e.kind === "kv" && e.type === "put" ? e.entry.key : "")));
    expect(vi.mocked(convert.eventToMsg)).toHaveBeenCalledTimes(20);
  });

  it("watch stream: at most ENCODED_EVENTS_CACHED encodings are kept; an evicted event encodes again to the same bytes", () => {
    const h = history(ENCODED_EVENTS_CACHED + 100);
    const first = h.events[0] as RegistryEvent;
    const firstBytes = Buffer.from(encodedEvent(first));
    for (const e of h.events) encodedEvent(e);
    expect(encodedEventsCached()).toBe(ENCODED_EVENTS_CACHED);
    vi.mocked(convert.eventToMsg).mockClear();
    expect(encodedEvent(first)).toEqual(firstBytes);
    expect(vi.mocked(convert.eventToMsg)).toHaveBeenCalledTimes(1);
    expect(encodedEventsCached()).toBe(ENCODED_EVENTS_CACHED);
  });

  it("watch stream: from_index 2^53 or more is INVALID_ARGUMENT naming from_index, with no timer or watcher left behind", () => {
    const h = history(2);
    const hub = new WatchHub(h, {}, eventBytes);
    for (const fromIndex of [2 ** 53, 2 ** 64, -1]) {
      const call = new FakeCall(req(fromIndex));
      serveWatch({ hub, applied: () => h.applied }, call.asCall);
      expect(call.status?.code).toBe(status.INVALID_ARGUMENT);
      expect(call.status?.details).toMatch(/^from_index: /);
    }
    const kinds = new FakeCall({ ...req(0), kinds: ["kv", "bogus"] });
    serveWatch({ hub, applied: () => h.applied }, kinds.asCall);
    expect(kinds.status).toEqual({ code: status.INVALID_ARGUMENT, details: 'kinds: "bogus" is not service, instance, kv or master' });
    expect(vi.getTimerCount()).toBe(0);
    expect(hub.size).toBe(0);
  });

  it("watch stream: every way out clears the progress timer, forgets the watcher and releases unsent bytes", () => {
    const h = history(5);
    const hub = new WatchHub(h, { watchersMax: 2 }, eventBytes);
    const deps = { hub, applied: () => h.applied };
    // The client cancels while a batch is unsent.
    const cancelled = new FakeCall(req(0));
    cancelled.hold = true;
    serveWatch(deps, cancelled.asCall);
    expect(vi.getTimerCount()).toBe(1);
    expect(hub.bytes.out).toBeGreaterThan(0);
    cancelled.emit("cancelled");
    expect([vi.getTimerCount(), hub.size, hub.bytes.out]).toEqual([0, 0, 0]);
    // The hub ends it (a snapshot restore).
    const reset = new FakeCall(req(0));
    serveWatch(deps, reset.asCall);
    hub.reset(5);
    expect(reset.status?.code).toBe(status.OUT_OF_RANGE);
    expect([vi.getTimerCount(), hub.size]).toEqual([0, 0]);
    // The hub refuses it (the watcher limit).
    const a = new FakeCall(req(5));
    const b = new FakeCall(req(5));
    const refused = new FakeCall(req(5));
    for (const call of [a, b, refused]) serveWatch(deps, call.asCall);
    expect(refused.status?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect([vi.getTimerCount(), hub.size]).toEqual([2, 2]);
    // The stream closes.
    a.emit("close");
    b.emit("close");
    expect([vi.getTimerCount(), hub.size]).toEqual([0, 0]);
  });
});
