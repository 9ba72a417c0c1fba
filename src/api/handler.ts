import type { handleUnaryCall, ServerUnaryCall, ServiceError } from "@grpc/grpc-js";
import { toStatus } from "./errors.js";
import { METADATA_FORWARDED } from "./forwarder.js";

/** unary turns an async handler into a gRPC unary handler whose errors go through toStatus. */
export function unary<Req, Res>(fn: (call: ServerUnaryCall<Req, Res>) => Promise<Res>): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toStatus(err) as ServiceError),
    );
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
