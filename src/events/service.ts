/**
 * raftmesh.v1.Events/Watch: the gRPC face of a node's journal. Never forwarded: a node streams
 * what it saw (registry events are the same everywhere; local ones are its own).
 */
import { type ServerWritableStream, status, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { EventsArgumentError, EventsCompactedError, EventsLaggingError } from "./errors.js";
import { type EventJournal, followEvents } from "./journal.js";
import { EVENT_KINDS, type MeshEvent, type MeshEventKind } from "./types.js";

/** EventsWatchRequestMsg is the request as proto-loader reads it. */
export interface EventsWatchRequestMsg {
  readonly fromSeq: number;
  readonly follow: boolean;
  readonly kinds: readonly string[];
}

/** eventToMsg is an event as the Event message (int64 and uint64 fields as numbers). */
export function eventToMsg(e: MeshEvent): Record<string, unknown> {
  return { ...e, details: { ...e.details } };
}

/** readWatchRequest checks the request, naming the bad field. */
export function readWatchRequest(m: EventsWatchRequestMsg): { fromSeq: number; follow: boolean; kinds: MeshEventKind[] } {
  if (!Number.isSafeInteger(m.fromSeq) || m.fromSeq < 0) throw new EventsArgumentError("from_seq", `must be a seq below 2^53, got ${m.fromSeq}`);
  const kinds: MeshEventKind[] = [];
  for (const k of m.kinds ?? []) {
    if (!(EVENT_KINDS as readonly string[]).includes(k)) throw new EventsArgumentError("kinds", `"${k}" is not an event kind (${EVENT_KINDS.join(", ")})`);
    kinds.push(k as MeshEventKind);
  }
  return { fromSeq: m.fromSeq, follow: m.follow === true, kinds };
}

/** statusOf maps the stream's typed errors to gRPC codes. */
export function statusOf(err: Error): { code: status; details: string } {
  if (err instanceof EventsArgumentError) return { code: status.INVALID_ARGUMENT, details: err.message };
  if (err instanceof EventsCompactedError) return { code: status.OUT_OF_RANGE, details: err.message };
  if (err instanceof EventsLaggingError) return { code: status.RESOURCE_EXHAUSTED, details: err.message };
  return { code: status.INTERNAL, details: err.message };
}

/** eventsService serves raftmesh.v1.Events. */
export function eventsService(journal: EventJournal): UntypedServiceImplementation {
  return {
    Watch: (call: ServerWritableStream<EventsWatchRequestMsg, Record<string, unknown>>) => {
      let stop = () => {};
      try {
        const req = readWatchRequest(call.request);
        stop = followEvents(journal, req, {
          write: (e) => call.write(eventToMsg(e)),
          onDrain: (fn) => call.once("drain", fn),
          // emit("error"), not destroy(): grpc-js sends the status only on the emit path.
          end: (err) => (err ? call.emit("error", Object.assign(new Error(statusOf(err).details), statusOf(err))) : call.end()),
        });
      } catch (err) {
        call.emit("error", Object.assign(new Error(statusOf(err as Error).details), statusOf(err as Error)));
        return;
      }
      call.on("cancelled", () => stop());
      call.on("close", () => stop());
    },
  };
}
