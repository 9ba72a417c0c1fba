import { RaftmeshClient } from "../client/index.js";
import { clientTls, endpointsOf, parse, UsageError } from "./args.js";

/** kv get|put|del: the small key-value store. */
export async function kvCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, {
    endpoints: { type: "string" },
    stale: { type: "boolean" },
    json: { type: "boolean" },
    prefix: { type: "boolean" },
  });
  const [sub, key = "", value, expected, ...rest] = positionals;
  if (expected !== undefined && sub !== "cas") throw new UsageError(`unexpected argument: ${expected}`);
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(" ")}`);
  if (!sub || (!key && sub !== "ls")) throw new UsageError("usage: raftmesh kv get <key> [--stale] | put <key> <value> | del <key> [--prefix] | ls [prefix] | cas <key> <value> <mod-index>");
  const client = new RaftmeshClient(endpointsOf(values.endpoints, process.env), clientTls());
  try {
    switch (sub) {
      case "get": {
        const res = await client.get(key, { stale: values.stale === true });
        if (values.json) out(JSON.stringify({ key, found: res.found, value: res.value.toString("utf8"), index: res.index }));
        else if (res.found) out(res.value.toString("utf8"));
        return res.found ? 0 : 1;
      }
      case "put": {
        if (value === undefined) throw new UsageError("usage: raftmesh kv put <key> <value>");
        const res = await client.put(key, value);
        out(values.json ? JSON.stringify(res) : `OK (index ${res.index})`);
        return 0;
      }
      case "ls": {
        const res = await client.list(key, { stale: values.stale === true });
        if (values.json) out(JSON.stringify(res.kvs.map((e) => ({ ...e, value: e.value.toString("utf8") }))));
        else for (const e of res.kvs) out(`${e.key}\t${e.value.toString("utf8")}\t(mod ${e.modIndex})`);
        if (res.more) out("(more keys follow: narrow the prefix)");
        return 0;
      }
      case "cas": {
        if (value === undefined || expected === undefined || !/^\d+$/.test(expected)) {
          throw new UsageError("usage: raftmesh kv cas <key> <value> <expected mod index (0: key must not exist)>");
        }
        const res = await client.cas(key, value, Number(expected));
        out(values.json ? JSON.stringify(res) : res.succeeded ? `OK (index ${res.index})` : `compare failed: ${key} is not at mod index ${expected}`);
        return res.succeeded ? 0 : 1;
      }
      case "del": {
        const res = await client.delete(key, { prefix: values.prefix === true });
        out(values.json ? JSON.stringify(res) : res.existed ? `deleted (index ${res.index})` : `no such key (index ${res.index})`);
        return 0;
      }
      default:
        throw new UsageError(`unknown kv command "${sub}" (get, put, del, ls, cas)`);
    }
  } finally {
    client.close();
  }
}
