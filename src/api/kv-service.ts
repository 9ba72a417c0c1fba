import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import { encodeAppCommand } from "../node/cluster-state-machine.js";
import { encodeKvCommand, type KvResult } from "../node/kv-state-machine.js";
import type { ApiContext } from "./context.js";
import { InvalidArgumentError } from "./errors.js";
import { deadlineOf, unary } from "./handler.js";
import { onLeader, waitUntil } from "./leader-route.js";
import { KEY_BYTES_MAX, READ_WAIT_MS_MAX, VALUE_BYTES_MAX, WRITE_WAIT_MS_MAX } from "./limits.js";
import type {
  DeleteRequestMsg,
  DeleteResponseMsg,
  GetRequestMsg,
  GetResponseMsg,
  PutRequestMsg,
  PutResponseMsg,
} from "./messages.js";

/** validateKey checks a key's presence, size and encoding. */
export function validateKey(key: string): void {
  if (key.length === 0) throw new InvalidArgumentError("key", "must not be empty");
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes > KEY_BYTES_MAX) throw new InvalidArgumentError("key", `is ${bytes} bytes, more than the limit of ${KEY_BYTES_MAX}`);
  if (key.includes("\u0000")) throw new InvalidArgumentError("key", "must not contain NUL characters");
}

function validateValue(value: Buffer): void {
  if (value.length > VALUE_BYTES_MAX) throw new InvalidArgumentError("value", `is ${value.length} bytes, more than the limit of ${VALUE_BYTES_MAX}`);
}

/**
 * kvService serves raftmesh.v1.KV. Values travel base64-encoded inside the small KV's commands,
 * so the KV state machine keeps plain strings.
 */
export function kvService(ctx: ApiContext): UntypedServiceImplementation {
  const readLocal = (key: string): GetResponseMsg => {
    const v = ctx.kv.get(key);
    return { found: v !== undefined, value: v === undefined ? Buffer.alloc(0) : Buffer.from(v, "base64"), index: ctx.cluster.applied };
  };
  const propose = async (cmd: Parameters<typeof encodeKvCommand>[0], deadline: Date): Promise<KvResult> => {
    const res = await waitUntil(ctx.node.propose(encodeAppCommand(encodeKvCommand(cmd))), deadline, `${cmd.op} of ${cmd.key}`);
    return res as KvResult;
  };
  return {
    Get: unary<GetRequestMsg, GetResponseMsg>(async (call) => {
      const { key, consistency } = call.request;
      validateKey(key);
      if (consistency === "CONSISTENCY_STALE") return readLocal(key);
      const deadline = deadlineOf(call, READ_WAIT_MS_MAX);
      await ctx.node.readIndex(Math.max(1, deadline.getTime() - Date.now()));
      return readLocal(key);
    }),
    Put: unary<PutRequestMsg, PutResponseMsg>(async (call) => {
      const { key, value } = call.request;
      validateKey(key);
      validateValue(value);
      return onLeader(ctx, call, "KV", "Put", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await propose({ op: "put", key, value: value.toString("base64") }, deadline);
        return { index: res.index, hadPrevious: res.previous !== undefined };
      });
    }),
    Delete: unary<DeleteRequestMsg, DeleteResponseMsg>(async (call) => {
      const { key } = call.request;
      validateKey(key);
      return onLeader(ctx, call, "KV", "Delete", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await propose({ op: "delete", key }, deadline);
        return { index: res.index, existed: res.previous !== undefined };
      });
    }),
  };
}
