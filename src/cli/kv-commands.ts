import { RaftmeshClient } from "../client/index.js";
import { endpointsOf, parse, UsageError } from "./args.js";

/** kv get|put|del: the small key-value store. */
export async function kvCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, { endpoints: { type: "string" }, stale: { type: "boolean" }, json: { type: "boolean" } });
  const [sub, key, value, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(" ")}`);
  if (!sub || !key) throw new UsageError("usage: raftmesh kv get <key> [--stale] | put <key> <value> | del <key>");
  const client = new RaftmeshClient(endpointsOf(values.endpoints, process.env));
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
      case "del": {
        const res = await client.delete(key);
        out(values.json ? JSON.stringify(res) : res.existed ? `deleted (index ${res.index})` : `no such key (index ${res.index})`);
        return 0;
      }
      default:
        throw new UsageError(`unknown kv command "${sub}" (get, put, del)`);
    }
  } finally {
    client.close();
  }
}
