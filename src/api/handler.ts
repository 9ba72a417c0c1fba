import type { handleUnaryCall, ServerUnaryCall, ServiceError, sendUnaryData } from "@grpc/grpc-js";
import { BusyError, toStatus } from "./errors.js";
import { METADATA_FORWARDED } from "./forwarder.js";
import { CLIENT_TURN_BUDGET, TURN_QUEUE_MAX } from "./turn-budget.js";

/**
 * unary turns an async handler into a gRPC unary handler whose errors go through toStatus. The
 * handler starts within the process's client turn budget (turn-budget.ts), so a burst of calls
 * cannot hold the event loop, and with it the Raft heartbeats, for the whole burst.
 */
export function unary<Req, Res>(fn: (call: ServerUnaryCall<Req, Res>) => Promise<Res>): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const start = () => {
      // A caller that cancelled, or whose deadline passed, while the call waited has its answer
      // from grpc-js already: nothing is proposed or read for it.
      if (call.cancelled) return;
      run(fn, call, callback);
    };
    if (!CLIENT_TURN_BUDGET.admit(start)) callback(toStatus(new BusyError(TURN_QUEUE_MAX)) as ServiceError);
  };
}

/**
 * unaryNow is unary without the turn budget, for the members' own calls that must not wait behind
 * client bursts (the followers' lease-renewal batches: a lease may be as short as 1 s).
 */
export function unaryNow<Req, Res>(fn: (call: ServerUnaryCall<Req, Res>) => Promise<Res>): handleUnaryCall<Req, Res> {
  return (call, callback) => run(fn, call, callback);
}

/** run starts fn and answers through callback; a handler that throws synchronously is answered too. */
function run<Req, Res>(fn: (call: ServerUnaryCall<Req, Res>) => Promise<Res>, call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void {
  let p: Promise<Res>;
  try {
    p = fn(call);
  } catch (err) {
    callback(toStatus(err) as ServiceError);
    return;
  }
  p.then(
    (res) => callback(null, res),
    (err: unknown) => callback(toStatus(err) as ServiceError),
  );
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
