import type { handleUnaryCall, ServerUnaryCall, ServiceError } from "@grpc/grpc-js";
import { toStatus } from "./errors.js";
import { METADATA_FORWARDED } from "./forwarder.js";
import { CLIENT_TURN_BUDGET } from "./turn-budget.js";

/**
 * unary turns an async handler into a gRPC unary handler whose errors go through toStatus. The
 * handler starts within the process's client turn budget (turn-budget.ts), so a burst of calls
 * cannot hold the event loop, and with it the Raft heartbeats, for the whole burst.
 */
export function unary<Req, Res>(fn: (call: ServerUnaryCall<Req, Res>) => Promise<Res>): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    CLIENT_TURN_BUDGET.admit(() => {
      fn(call).then(
        (res) => callback(null, res),
        (err: unknown) => callback(toStatus(err) as ServiceError),
      );
    });
  };
}

/** deadlineOf is the caller's deadline, capped at maxMs from now. */
export function deadlineOf(call: ServerUnaryCall<unknown, unknown>, maxMs: number): Date {
  const cap = Date.now() + maxMs;
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : typeof d === "number" && Number.isFinite(d) ? d : cap;
  return new Date(Math.min(ms, cap));
}

/** wasForwarded says whether another node forwarded this call here. */
export function wasForwarded(call: ServerUnaryCall<unknown, unknown>): boolean {
  return call.metadata.get(METADATA_FORWARDED).length > 0;
}
