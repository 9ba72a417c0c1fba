import { type Metadata, type ServerUnaryCall, status } from "@grpc/grpc-js";
import type { ApiContext } from "./context.js";
import { METADATA_NOT_APPLIED } from "../common/metadata.js";
import { NoLeaderError, OutcomeUnknownError } from "./errors.js";
import { deadlineOf, wasForwarded } from "./handler.js";

/**
 * onLeader runs `local` when this node leads, else forwards the call to the leader's client API.
 * A call that was already forwarded once is never forwarded again: it fails with UNAVAILABLE
 * naming the leader, so two nodes with different views of the leader cannot bounce it forever.
 */
export async function onLeader<Req, Res>(
  ctx: ApiContext,
  call: ServerUnaryCall<Req, Res>,
  service: "KV" | "Cluster" | "Registry",
  method: string,
  maxMs: number,
  local: (deadline: Date) => Promise<Res>,
): Promise<Res> {
  const deadline = deadlineOf(call, maxMs);
  if (ctx.node.isLeader()) return local(deadline);
  const leader = ctx.node.leader();
  if (!leader) throw new NoLeaderError("no leader is known (an election is under way or there is no quorum); the request did not run");
  const api = ctx.addressOf(leader)?.api ?? "";
  if (wasForwarded(call)) throw new NoLeaderError(`this node is not the leader; ${leader} is`, leader, api);
  if (!api) throw new NoLeaderError(`leader ${leader} has no known client API address; the request did not run`, leader);
  try {
    return await ctx.forwarder.forward<Req, Res>(api, service, method, call.request, deadline);
  } catch (err) {
    // The leader's own answers pass through. A call that broke on the way (leader died, connection
    // lost) may or may not have run there: say so rather than let the client retry blindly.
    if (isLeaderAnswer(err)) throw err;
    throw new OutcomeUnknownError(`forwarding to leader ${leader} at ${api} failed (${(err as Error).message})`);
  }
}

/** isLeaderAnswer: the error is a status the leader's handlers produced (they always carry our metadata or a definite code). */
function isLeaderAnswer(err: unknown): boolean {
  const e = err as { code?: number; metadata?: Metadata };
  if (typeof e.code !== "number") return false;
  if (e.metadata?.get(METADATA_NOT_APPLIED).length) return true;
  return e.code !== status.UNAVAILABLE && e.code !== status.DEADLINE_EXCEEDED && e.code !== status.CANCELLED && e.code !== status.UNKNOWN && e.code !== status.INTERNAL;
}

/** waitUntil resolves with the promise, or rejects with OutcomeUnknownError at the deadline. */
export function waitUntil<T>(p: Promise<T>, deadline: Date, what: string): Promise<T> {
  const ms = Math.max(0, deadline.getTime() - Date.now());
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new OutcomeUnknownError(`${what} was not applied within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
