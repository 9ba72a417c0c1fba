import type { ServerUnaryCall } from "@grpc/grpc-js";
import type { ConsistencyName } from "../common/messages.js";
import { deadlineOf } from "./handler.js";
import { READ_WAIT_MS_MAX } from "./limits.js";

/** ReadIndexer confirms a linearizable read: it resolves once local state reflects every write acknowledged before the call (RaftNode.readIndex). */
export interface ReadIndexer {
  readIndex(timeoutMs: number, signal?: AbortSignal): Promise<unknown>;
}

/** readBarrier waits, unless the read asked for STALE, until local state reflects every write acknowledged before the call. */
export async function readBarrier(reads: ReadIndexer, call: ServerUnaryCall<unknown, unknown>, consistency: ConsistencyName | undefined): Promise<void> {
  if (consistency === "CONSISTENCY_STALE") return;
  const deadline = deadlineOf(call, READ_WAIT_MS_MAX);
  // A caller that goes away (cancels, or its deadline passes) frees its place among pending reads at once.
  const gone = new AbortController();
  const onCancelled = () => gone.abort();
  call.on("cancelled", onCancelled);
  // The handler may start after the caller went (a call that waited for the turn budget, or was
  // forwarded slowly): the event has fired already, so look.
  if (call.cancelled) gone.abort();
  try {
    await reads.readIndex(Math.max(1, deadline.getTime() - Date.now()), gone.signal);
  } finally {
    call.removeListener("cancelled", onCancelled);
  }
}
