/**
 * The Watch stream of the client API: the gRPC side of a WatchHub watcher.
 *
 * Events are encoded once per node, not once per watcher: the encoding of a history event is
 * cached with the event (a WeakMap, so it lives exactly as long as the history or a queue holds the
 * event), and a batch is written as the concatenation of its events' encodings plus the index
 * field (protobuf lets a message be built by concatenating its fields). The Registry service's
 * Watch serializer passes such bytes through (watchServiceDefinition).
 *
 * Every write is reported to the hub as sent only when gRPC has handed it to HTTP/2 (the write
 * callback) or the stream is gone, so a client that does not read holds no more than the hub's
 * per-watcher bound, and all of them no more than its per-node bound.
 */
import { echo } from "../common/echo.js";
import type { MethodDefinition, ServerWritableStream, ServiceDefinition } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { RegistryEvent } from "../registry/types.js";
import type { WatchHandle, WatchHub } from "../registry/watch-hub.js";
import { eventToMsg } from "./convert.js";
import { InvalidArgumentError, toStatus } from "./errors.js";
import type { WatchRequestMsg, WatchResponseMsg } from "../common/messages.js";
import { clientApi } from "../common/proto.js";

/** WATCH_PROGRESS_MS: a watch with nothing to deliver still hears the applied index this often, so it can resume from there. */
export const WATCH_PROGRESS_MS = 5_000;

type Serialize = (value: unknown) => Buffer;

/** watchSerialize is the proto-loader serializer of WatchResponse. */
function watchSerialize(): Serialize {
  return (clientApi().Registry.service as unknown as { Watch: { responseSerialize: Serialize } }).Watch.responseSerialize;
}

/**
 * ENCODED_EVENTS_CACHED bounds the encodings kept for sharing: a live event reaches every watcher
 * within moments of its apply, so the newest few thousand suffice for fan-out to 10,000 watchers.
 * Keeping an encoding for as long as the event lived (a WeakMap keyed by it) kept one for every
 * event of the watch history once the node's own balancer feed had seen it: 100,000 small buffers,
 * each pinning a slab of Node's buffer pool, ~60 MB on a 100,000-instance registry.
 */
export const ENCODED_EVENTS_CACHED = 8_192;
/** encoded holds the most recent encodings in insertion order (the oldest is evicted first). */
const encoded = new Map<RegistryEvent, Buffer>();

/** encodedEvent is the event as field 1 (events) of a WatchResponse, encoded on first use and then shared while recent. */
export function encodedEvent(e: RegistryEvent): Buffer {
  let bytes = encoded.get(e);
  if (bytes === undefined) {
    // No index: a proto3 message omits what it does not set, so this is the events field alone.
    bytes = watchSerialize()({ events: [eventToMsg(e)] });
    if (encoded.size >= ENCODED_EVENTS_CACHED) encoded.delete(encoded.keys().next().value as RegistryEvent);
    encoded.set(e, bytes);
  }
  return bytes;
}

/** encodedEventsCached is how many encodings are held now (for tests of the bound). */
export function encodedEventsCached(): number {
  return encoded.size;
}

/** eventBytes is the encoded size of an event in a WatchResponse (the hub's measure of it). */
export function eventBytes(e: RegistryEvent): number {
  return encodedEvent(e).length;
}

/** encodeWatchResponse builds a WatchResponse from the shared encodings of its events. */
export function encodeWatchResponse(events: readonly RegistryEvent[], index: number): Buffer {
  const parts = events.map(encodedEvent);
  parts.push(watchSerialize()({ events: [], index }));
  return Buffer.concat(parts);
}

/** watchServiceDefinition is the Registry service with a Watch serializer that passes encoded responses through. */
export function watchServiceDefinition(def: ServiceDefinition): ServiceDefinition {
  const watch = def.Watch as MethodDefinition<WatchRequestMsg, WatchResponseMsg | Buffer>;
  const serialize = watch.responseSerialize;
  return { ...def, Watch: { ...watch, responseSerialize: (v: WatchResponseMsg | Buffer) => (Buffer.isBuffer(v) ? v : serialize(v)) } };
}

/** watchError turns a hub's reason for ending a watch into a status the client can act on (ERROR_TABLE has the rows). */
function watchError(err: Error | undefined): { code: status; details: string } {
  if (err === undefined) return { code: status.UNAVAILABLE, details: "watch ended" };
  const st = toStatus(err);
  return { code: st.code ?? status.UNKNOWN, details: st.details ?? err.message };
}

/** WATCH_KINDS are the values `kinds` may hold. */
const WATCH_KINDS = ["service", "instance", "kv", "master"] as const;

/** watchRequest checks a WatchRequest and returns the hub's request. */
function watchRequest(m: WatchRequestMsg) {
  // uint64 arrives as a JS number; from 2^53 on it is no longer exact, so it cannot name an index.
  if (!Number.isSafeInteger(m.fromIndex) || m.fromIndex < 0) {
    throw new InvalidArgumentError("from_index", `must be below 2^53 (${Number.MAX_SAFE_INTEGER + 1}), got ${m.fromIndex}`);
  }
  for (const k of m.kinds ?? []) {
    if (!(WATCH_KINDS as readonly string[]).includes(k)) throw new InvalidArgumentError("kinds", `"${echo(k)}" is not service, instance, kv or master`);
  }
  return {
    fromIndex: m.fromIndex,
    service: m.service || undefined,
    keyPrefix: m.keyPrefix || undefined,
    kinds: m.kinds && m.kinds.length > 0 ? (m.kinds as (typeof WATCH_KINDS)[number][]) : undefined,
  };
}

/** WatchDeps is what a Watch stream uses: the hub and the applied index for progress notices. */
export interface WatchDeps {
  readonly hub: WatchHub;
  readonly applied: () => number;
}

/** WatchCall is a Watch stream: it takes response objects (progress notices) and already encoded responses. */
export type WatchCall = ServerWritableStream<WatchRequestMsg, WatchResponseMsg | Buffer>;

/**
 * serveWatch serves one Watch call until the hub ends it, the client cancels, or the stream fails.
 * visible, when given, drops the events the caller may not read (access control); the index still
 * moves past them, so the watch resumes from the right place.
 */
export function serveWatch(deps: WatchDeps, call: WatchCall, visible?: (e: RegistryEvent) => boolean): void {
  let ended = false;
  let handle: WatchHandle | undefined;
  let progress: ReturnType<typeof setInterval> | undefined;
  // Batches written and not yet sent: each is reported sent when gRPC is done with it, or all at once when the stream is gone.
  const unsent = new Set<() => void>();
  const release = () => {
    for (const done of [...unsent]) done();
    unsent.clear();
  };
  // Every way out comes here: the timer is cleared and the hub forgets the watcher, once.
  const finish = (err?: Error) => {
    if (ended) return;
    ended = true;
    if (progress !== undefined) clearInterval(progress);
    handle?.close();
    if (err) {
      const e = watchError(err);
      // emit("error"), not destroy(): grpc-js sends the status only on the emit path.
      call.emit("error", Object.assign(new Error(e.details), e));
    } else call.end();
  };
  const gone = () => {
    finish();
    release();
  };
  call.on("cancelled", gone);
  call.on("close", gone);
  call.on("error", () => undefined);
  let req: ReturnType<typeof watchRequest>;
  try {
    req = watchRequest(call.request);
  } catch (err) {
    finish(err instanceof Error ? err : new Error(String(err)));
    return;
  }
  // A progress notice names the applied index only when the watcher has been handed every
  // matching event up to it; while a replay or a queue is pending it would run ahead of them.
  const notice = () => {
    if (!ended && handle?.caughtUp()) call.write({ events: [], index: deps.applied() });
  };
  progress = setInterval(notice, WATCH_PROGRESS_MS);
  try {
    handle = deps.hub.watch(req, {
      events: (batch, through, done) => {
        unsent.add(done);
        return call.write(encodeWatchResponse(visible ? batch.filter(visible) : batch, through), () => {
          unsent.delete(done);
          done();
        });
      },
      end: (err) => finish(err),
    });
  } catch (err) {
    finish(err instanceof Error ? err : new Error(String(err)));
    return;
  }
  // A refusal inside watch() ended the call before the handle existed.
  if (ended) handle.close();
  call.on("drain", () => {
    handle?.resume();
    notice();
  });
  // Tell the client at once where the watch stands, even before any event.
  notice();
}
