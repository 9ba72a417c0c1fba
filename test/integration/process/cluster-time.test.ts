/**
 * Cluster time on a real 3-node cluster with the test-only clock control on: a follower's wall
 * clock jumps hours ahead and it becomes leader; a sessioned write retried through it still
 * applies once, and a critical instance is not reaped before its time. Before cluster time, the
 * new leader's stamps wiped every session and reaped at once.
 */
import { type Client, credentials, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientApi } from "../../../src/common/proto.js";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

const NODES = ["n1", "n2", "n3"] as const;
const HOUR_MS = 3_600_000;
/** JUMP_MS is past both the session idle time (1 h) and the instance's deregisterCriticalAfterMs. */
const JUMP_MS = 3 * HOUR_MS;
/** REAP_AFTER_MS is the instance's deregisterCriticalAfterMs: 10 min, far longer than this test runs. */
const REAP_AFTER_MS = 600_000;
/** REAP_WATCH_MS is how long the new leader gets to (wrongly) reap: many 100 ms lease checks. */
const REAP_WATCH_MS = 2_000;

/** unaryCall makes one raw call on a stub, for requests the client does not let us shape (sessions). */
function unaryCall<Res>(stub: Client, method: string, req: object, deadlineMs = 5_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (stub as unknown as Record<string, (...a: unknown[]) => void>)[method];
    if (!fn) return reject(new Error(`no method ${method}`));
    fn.call(stub, req, { deadline: new Date(Date.now() + deadlineMs) }, (err: ServiceError | null, res: Res) => (err ? reject(err) : resolve(res)));
  });
}

describe("cluster time on a 3-node cluster", () => {
  let c: ProcessCluster;
  const stubs: Client[] = [];

  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3, env: { RAFTMESH_TEST_UNSAFE: "clock" } });
    c.startAll();
    await c.waitForLeader();
  });
  afterAll(async () => {
    for (const s of stubs) s.close();
    await c?.cleanup();
  });

  function kv(id: string): Client {
    const s = new (clientApi().KV)(c.api(id), credentials.createInsecure());
    stubs.push(s);
    return s;
  }

  async function setClock(id: string, offsetMs: number): Promise<void> {
    const res = await fetch(`http://127.0.0.1:${c.specs.get(id)?.adminPort}/test/clock?offset_ms=${offsetMs}`, { method: "POST" });
    expect(res.status).toBe(200);
  }

  it("cluster time: a leader whose wall clock jumped hours ahead applies a sessioned retry once and reaps nothing early", async () => {
    const leader = await c.waitForLeader();
    const next = NODES.find((n) => n !== leader) as string;
    const client = c.client(leader);

    // An instance that never heartbeats: critical after its 1 s lease, reapable only 10 min later.
    await client.register({ service: "ct", id: "x", address: "127.0.0.1", port: 8080, ttlMs: 1_000, deregisterCriticalAfterMs: REAP_AFTER_MS });
    await waitFor("the instance to turn critical", async () => (await client.getService("ct")).instances[0]?.health === "critical");

    const session = { clientId: "cluster-time-it", seq: 1 };
    const first = await unaryCall<{ index: number; duplicate: boolean }>(kv(leader), "Put", { key: "ct/k", value: Buffer.from("first"), session });
    expect(first.duplicate).toBe(false);

    // The next leader's wall clock jumps 3 hours ahead; then it takes over.
    await setClock(next, JUMP_MS);
    await waitFor(`leadership to move to ${next}`, async () => {
      if ((await c.waitForLeader()) === next) return true;
      await client.transferLeader(next).catch(() => undefined);
      return false;
    }, 20_000);

    // Any write under the new leader (sessions expire as commands apply), then the client's retry.
    await c.client(next).put("ct/other", Buffer.from("x"));
    // The retry is the same request (a different one under a spent seq is refused whatever the clock).
    const retry = await unaryCall<{ index: number; duplicate: boolean }>(kv(next), "Put", { key: "ct/k", value: Buffer.from("first"), session });
    expect(retry).toMatchObject({ duplicate: true, index: first.index });
    const got = await c.client(next).get("ct/k");
    expect([got.value.toString(), got.kv?.version]).toEqual(["first", 1]);

    // The new leader checks for reaps every 100 ms: give it many chances.
    await new Promise((r) => setTimeout(r, REAP_WATCH_MS));
    const view = await c.client(next).getService("ct");
    expect(view.instances.map((i) => [i.id, i.health])).toEqual([["x", "critical"]]);
    await setClock(next, 0);
  });
});
