import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import { LIST_LIMIT_MAX } from "../registry/limits.js";
import type { RegistryStateMachine } from "../registry/state-machine.js";
import type { KvCompare, KvOp } from "../registry/types.js";
import type { RegistryWriter } from "../registry/writer.js";
import { validateKvKey, validateKvPrefix, validateKvValueSize, validateTxn } from "../registry/validate.js";
import { kvToMsg } from "./convert.js";
import { InvalidArgumentError } from "./errors.js";
import { unary } from "./handler.js";
import type { LeaderRoute } from "./leader-route.js";
import { LIST_RESPONSE_BYTES_MAX, WRITE_WAIT_MS_MAX } from "./limits.js";
import { type ReadIndexer, readBarrier } from "./read-barrier.js";
import type {
  DeleteRequestMsg,
  DeleteResponseMsg,
  GetRequestMsg,
  GetResponseMsg,
  ListRequestMsg,
  ListResponseMsg,
  PutRequestMsg,
  PutResponseMsg,
  TxnRequestMsg,
  TxnResponseMsg,
} from "../common/messages.js";
import { sessionFromMsg } from "./session.js";

/** LIST_LIMIT_DEFAULT is the page size of List when the request sets none. */
export const LIST_LIMIT_DEFAULT = 1_000;

const b64 = (b: Buffer | undefined) => (b ?? Buffer.alloc(0)).toString("base64");

/** KvServiceDeps is what the KV service uses: the applied store to read, the write path, the leader route and the read barrier. */
export interface KvServiceDeps {
  readonly registry: Pick<RegistryStateMachine, "kvGet" | "kvList" | "applied">;
  readonly writer: RegistryWriter;
  readonly route: LeaderRoute;
  readonly reads: ReadIndexer;
}

/** kvService serves raftmesh.v1.KV on the registry's key-value store. */
export function kvService({ registry: reg, writer, route, reads }: KvServiceDeps): UntypedServiceImplementation {
  return {
    Get: unary<GetRequestMsg, GetResponseMsg>(async (call) => {
      const { key, consistency } = call.request;
      validateKvKey(key);
      await readBarrier(reads, call, consistency);
      const e = reg.kvGet(key);
      return { found: e !== undefined, value: e ? Buffer.from(e.value, "base64") : Buffer.alloc(0), index: reg.applied, kv: e ? kvToMsg(e) : null };
    }),
    Put: unary<PutRequestMsg, PutResponseMsg>(async (call) => {
      const { key, value } = call.request;
      validateKvKey(key);
      // Base64 written here is base64; only the size needs a check (scanning it cost 4 ms at 500 KB).
      validateKvValueSize(value?.length ?? 0);
      const v = b64(value);
      const session = sessionFromMsg(call.request.session);
      return route.onLeader(call, "KV", "Put", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await writer.write({ op: "kv.put", key, value: v }, session, deadline);
        return { index: res.index, hadPrevious: res.prev !== undefined, prev: res.prev ? kvToMsg(res.prev) : null, duplicate: res.duplicate === true };
      });
    }),
    Delete: unary<DeleteRequestMsg, DeleteResponseMsg>(async (call) => {
      const { key } = call.request;
      const prefix = call.request.prefix === true;
      if (prefix) validateKvPrefix(key, "key");
      else validateKvKey(key);
      const session = sessionFromMsg(call.request.session);
      return route.onLeader(call, "KV", "Delete", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await writer.write({ op: "kv.delete", key, prefix }, session, deadline);
        const deleted = res.deleted ?? 0;
        return { index: res.index, existed: deleted > 0, deleted, duplicate: res.duplicate === true };
      });
    }),
    List: unary<ListRequestMsg, ListResponseMsg>(async (call) => {
      const { prefix, startAfter, consistency } = call.request;
      const limit = call.request.limit || LIST_LIMIT_DEFAULT;
      validateKvPrefix(prefix, "prefix");
      validateKvPrefix(startAfter, "start_after");
      if (limit > LIST_LIMIT_MAX) throw new InvalidArgumentError("limit", `must be at most ${LIST_LIMIT_MAX}, got ${limit}`);
      await readBarrier(reads, call, consistency);
      const page = reg.kvList(prefix, { startAfter: startAfter || undefined, limit });
      // Cut the page by size too, so one answer stays a bounded message.
      const kvs = [];
      let bytes = 0;
      let more = page.more;
      for (const e of page.entries) {
        bytes += e.key.length + (e.value.length * 3) / 4;
        if (kvs.length > 0 && bytes > LIST_RESPONSE_BYTES_MAX) {
          more = true;
          break;
        }
        kvs.push(kvToMsg(e));
      }
      return { kvs, more, index: reg.applied };
    }),
    Txn: unary<TxnRequestMsg, TxnResponseMsg>(async (call) => {
      const compares: KvCompare[] = call.request.compares.map((c) => ({
        key: c.key,
        target: c.target as KvCompare["target"],
        op: c.op as KvCompare["op"],
        value: b64(c.value),
        number: c.number,
      }));
      const op = (o: TxnRequestMsg["success"][number]): KvOp =>
        o.op === "put"
          ? { op: "put", key: o.key, value: b64(o.value) }
          : o.op === "delete"
            ? { op: "delete", key: o.key, prefix: o.prefix }
            : ({ op: o.op, key: o.key } as KvOp);
      const success = call.request.success.map(op);
      const failure = call.request.failure.map(op);
      validateTxn({ compares, success, failure });
      const session = sessionFromMsg(call.request.session);
      return route.onLeader(call, "KV", "Txn", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await writer.write({ op: "kv.txn", compares, success, failure }, session, deadline);
        return {
          succeeded: res.succeeded === true,
          index: res.index,
          results: (res.gets ?? []).map((g) => ({ kv: g ? kvToMsg(g) : null, found: g !== null })),
          duplicate: res.duplicate === true,
        };
      });
    }),
  };
}
