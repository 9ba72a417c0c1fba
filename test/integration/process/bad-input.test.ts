/**
 * Bad input answered with clear errors, on real processes and real directories: agent flags and
 * configuration (exit 2 naming the field), data directories that are not this node's or are in
 * use or corrupt (exit 1, nothing changed on disk), and client API requests out of bounds
 * (INVALID_ARGUMENT naming the field).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { Level } from "level";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KV_KEY_BYTES_MAX as KEY_BYTES_MAX, KV_VALUE_BYTES_MAX as VALUE_BYTES_MAX } from "../../../src/registry/limits.js";
import { decodeEntry, decodeHardState } from "../../../src/storage/codec.js";
import { LEVELDB_DIR } from "../../../src/storage/db.js";
import { ENTRY_KEY_AFTER_LAST, ENTRY_KEY_FIRST, entryIndexOfKey, entryKey, HARD_STATE_KEY } from "../../../src/storage/keys.js";
import { freePorts, ProcessCluster, runCli, waitFor } from "../harness/process-cluster.js";
import { rejection } from "../harness/rejection.js";

/** ENTRY_DATA_OFFSET is where an entry record's data begins: version, kind, term, index, length (see codec.ts). */
const ENTRY_DATA_OFFSET = 1 + 1 + 8 + 8 + 4;


type Db = Level<Buffer, Uint8Array>;

/** withDb opens a stopped node's LevelDB directly, runs f, and closes it. */
async function withDb<T>(nodeDir: string, f: (db: Db) => Promise<T>): Promise<T> {
  const db: Db = new Level<Buffer, Uint8Array>(join(nodeDir, LEVELDB_DIR), { keyEncoding: "buffer", valueEncoding: "view" });
  await db.open();
  try {
    return await f(db);
  } finally {
    await db.close();
  }
}

/** dump is every key and value of the database, hex-encoded, in key order. */
async function dump(db: Db): Promise<string[]> {
  const out: string[] = [];
  for await (const [k, v] of db.iterator()) out.push(`${k.toString("hex")}=${Buffer.from(v).toString("hex")}`);
  return out;
}

describe("bad input", () => {
  let c: ProcessCluster;
  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    await c.waitForLeader();
  });
  afterAll(async () => {
    await c?.cleanup();
  });

  /** agent runs `raftmesh agent` to completion with node id's environment plus extra (it must exit by itself). */
  const agent = (id: string, args: string[], extra: Record<string, string> = {}) => runCli(["agent", ...args], c.env(id, extra), 20_000);

  /** otherPorts are listen addresses no running node uses, so that only the data directory is shared. */
  async function otherPorts(): Promise<Record<string, string>> {
    const [peer, api, admin, balancer] = await freePorts(4);
    return {
      RAFTMESH_BALANCER_LISTEN: `127.0.0.1:${balancer}`,
      RAFTMESH_PEER_LISTEN: `127.0.0.1:${peer}`,
      RAFTMESH_API_LISTEN: `127.0.0.1:${api}`,
      RAFTMESH_ADMIN_LISTEN: `127.0.0.1:${admin}`,
    };
  }

  it("bad input: an unknown agent flag exits 2 naming the flag", async () => {
    const res = await agent("n1", ["--no-such-flag", "1"], await otherPorts());
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("--no-such-flag");
    expect(res.stdout).toBe("");
  });

  it("bad input: a bad listen address exits 2 naming peerListen", async () => {
    const res = await agent("n1", ["--peer-listen", "nonsense"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("invalid configuration: peerListen (from --peer-listen)");
    expect(res.stderr).toContain('"nonsense" is not host:port');
  });

  it("bad input: RAFTMESH_TICK_MS=0 exits 2 naming tickMs", async () => {
    const res = await agent("n1", [], { RAFTMESH_TICK_MS: "0" });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("invalid configuration: tickMs (from RAFTMESH_TICK_MS)");
    expect(res.stderr).toContain("must be an integer from 1 to 1000");
  });

  it("bad input: a data directory of another cluster exits 1 naming both cluster ids; the node then restarts on it with its data", async () => {
    const leader = await c.waitForLeader();
    const id = ["n3", "n2", "n1"].find((n) => n !== leader) as string;
    await c.client(leader).put("before-mismatch", "kept");
    await waitFor(`${id} to apply before-mismatch`, async () => (await c.client(id).get("before-mismatch", { stale: true })).found);
    expect(await c.stop(id)).toBe(0);
    const res = await agent(id, [], { RAFTMESH_CLUSTER_ID: "other" });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`data directory belongs to cluster "it-cluster" node "${id}", not cluster "other" node "${id}"`);
    c.start(id);
    await waitFor(`${id} to rejoin`, async () => (await c.client(id).status()).leader !== "");
    const got = await c.client(id).get("before-mismatch", { stale: true });
    expect(got.value.toString()).toBe("kept");
    await c.client(id).put("after-mismatch", "ok");
    await waitFor(`${id} to apply its own write`, async () => (await c.client(id).get("after-mismatch", { stale: true })).found);
  });

  it("bad input: a second agent on a data directory in use exits 1 (locked) and the first keeps running", async () => {
    const res = await agent("n1", [], await otherPorts());
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`data directory ${join(c.dataDir, "n1")} is in use by another process`);
    expect(c.isRunning("n1")).toBe(true);
    await c.client("n1").put("after-lock", "ok");
    expect((await c.client("n1").get("after-lock")).value.toString()).toBe("ok");
  });

  // Raft starts before the balancer's workers (agent.ts), so a start that fails at the balancer
  // must stop the running Raft loop and servers again, not hang or leave a half-started node.
  it("bad input: an agent whose balancing port is taken exits 1 naming the listener, at once", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "raftmesh-balancer-port-"));
    try {
      const ports = await otherPorts();
      const started = Date.now();
      const res = await runCli(["agent"], {
        ...c.env("n1", ports),
        RAFTMESH_NODE_ID: "solo",
        RAFTMESH_DATA_DIR: dataDir,
        RAFTMESH_MEMBERS: `solo=${ports.RAFTMESH_PEER_LISTEN}/${ports.RAFTMESH_API_LISTEN}`,
        RAFTMESH_BOOTSTRAP: "true",
        RAFTMESH_BALANCER_LISTEN: c.env("n1").RAFTMESH_BALANCER_LISTEN as string,
      }, 20_000);
      expect(res.code, res.stderr).toBe(1);
      expect(res.stderr).toContain("balancer listener http could not listen");
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("bad input: a node with a corrupt committed entry refuses to start, names the index, and changes nothing on disk", async () => {
    const leader = await c.waitForLeader();
    const id = ["n2", "n3", "n1"].find((n) => n !== leader) as string;
    for (let i = 0; i < 5; i++) await c.client(leader).put(`corrupt-${i}`, `v-${i}`);
    await waitFor(`${id} to apply the writes`, async () => (await c.client(id).get("corrupt-4", { stale: true })).found);
    expect(await c.stop(id)).toBe(0);
    const nodeDir = join(c.dataDir, id);

    // Flip one byte inside the data of a committed entry that holds data.
    const { index, good, before } = await withDb(nodeDir, async (db) => {
      const hs = decodeHardState((await db.get(HARD_STATE_KEY)) as Uint8Array);
      if (!hs.ok) throw new Error(`hard state unreadable: ${hs.reason}`);
      let target: { index: number; value: Uint8Array } | undefined;
      for await (const [key, value] of db.iterator({ gte: ENTRY_KEY_FIRST, lt: ENTRY_KEY_AFTER_LAST })) {
        const e = decodeEntry(value);
        const at = entryIndexOfKey(key) as number;
        if (e.ok && at > 3 && at <= hs.value.commit && e.value.data.length > 4) {
          target = { index: at, value };
          break;
        }
      }
      if (!target) throw new Error("no committed entry with data found");
      const bad = Buffer.from(target.value);
      bad[ENTRY_DATA_OFFSET + 2] = (bad[ENTRY_DATA_OFFSET + 2] as number) ^ 0x01;
      await db.put(entryKey(target.index), bad);
      return { index: target.index, good: Buffer.from(target.value), before: await dump(db) };
    });

    const res = await agent(id, []);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`committed log entry ${index} is corrupt: checksum mismatch`);
    // Refusing must not repair, truncate or otherwise write: every record is as it was.
    const after = await withDb(nodeDir, dump);
    expect(after).toEqual(before);

    // With the byte restored the node starts and catches up as usual.
    await withDb(nodeDir, (db) => db.put(entryKey(index), good));
    c.start(id);
    await c.client(leader).put("after-repair", "ok");
    await waitFor(`${id} to catch up after the repair`, async () => (await c.client(id).get("after-repair", { stale: true })).found);
  });

  it("bad input: the API answers INVALID_ARGUMENT naming the field for empty or oversized keys and oversized values", async () => {
    const client = c.client("n2");
    const empty = await rejection(client.put("", "x"));
    expect([empty.code, empty.details]).toEqual([GrpcStatus.INVALID_ARGUMENT, "key: must not be empty"]);
    expect(empty.notApplied).toBe(true);
    const emptyGet = await rejection(client.get(""));
    expect(emptyGet.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(emptyGet.details).toMatch(/^key: /);

    const longKey = await rejection(client.put("k".repeat(KEY_BYTES_MAX + 1), "x"));
    expect(longKey.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(longKey.details).toBe(`key: is ${KEY_BYTES_MAX + 1} bytes, more than the limit of ${KEY_BYTES_MAX}`);
    // Bytes, not characters: 342 three-byte characters are 1026 bytes.
    const wideKey = await rejection(client.put("€".repeat(342), "x"));
    expect(wideKey.details).toMatch(/^key: is 1026 bytes/);
    const bigValue = await rejection(client.put("big", Buffer.alloc(VALUE_BYTES_MAX + 1, 1)));
    expect(bigValue.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(bigValue.details).toBe(`value: is ${VALUE_BYTES_MAX + 1} bytes, more than the limit of ${VALUE_BYTES_MAX}`);

    // The positive space: exactly at the limits is accepted, through a follower too.
    const maxKey = "k".repeat(KEY_BYTES_MAX);
    await client.put(maxKey, Buffer.alloc(VALUE_BYTES_MAX, 7), { deadlineMs: 10_000 });
    const got = await client.get(maxKey, { deadlineMs: 10_000 });
    expect(got.value.length).toBe(VALUE_BYTES_MAX);
    expect((await client.get("big")).found).toBe(false);
  });

  it("bad input: members add with a bad peer or a bad id is INVALID_ARGUMENT naming the field", async () => {
    const client = c.client("n3");
    const badPeer = await rejection(client.addMember({ id: "n9", peer: "nonsense", learner: true }));
    expect(badPeer.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(badPeer.details).toMatch(/^peer: "nonsense" is not host:port/);
    const badPort = await rejection(client.addMember({ id: "n9", peer: "127.0.0.1:70000", learner: true }));
    expect(badPort.details).toMatch(/^peer: /);
    const badApi = await rejection(client.addMember({ id: "n9", peer: "127.0.0.1:7100", api: "x:y", learner: true }));
    expect(badApi.details).toMatch(/^api: /);
    const badId = await rejection(client.addMember({ id: "N9!", peer: "127.0.0.1:7100", learner: true }));
    expect(badId.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(badId.details).toMatch(/^id: "N9!" is not a node id/);
    const emptyId = await rejection(client.addMember({ id: "", peer: "127.0.0.1:7100", learner: true }));
    expect(emptyId.details).toBe("id: must not be empty");
    // The CLI passes the answer on with exit status 1.
    const cli = await runCli(["members", "add", "n9", "--peer", "nonsense", "--endpoints", c.api("n3")]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain("INVALID_ARGUMENT");
    expect(cli.stderr).toContain("peer: ");
    // Nothing was added.
    expect((await client.members()).members.map((m) => m.id)).toEqual(["n1", "n2", "n3"]);
  });
});
