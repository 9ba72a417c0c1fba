/**
 * A write forwarded by a follower comes back with the leader's client API address in its headers,
 * and the SDK sends its next writes there when the address is one of its endpoints: the follower
 * stops paying a second gRPC call per write. When that leader is gone, writes move on (as before)
 * and the next forwarded answer names the new leader. Real processes; the counts are the nodes'
 * own raftmesh_api_requests_total.
 */
import { afterAll, describe, expect, it } from "vitest";
import { status as grpcStatus } from "@grpc/grpc-js";
import { RaftmeshClient, type RaftmeshError } from "../../../src/client/index.js";
import { ProcessCluster } from "../harness/process-cluster.js";

const PUT = "/raftmesh.v1.KV/Put";
const WRITES = 20;

/** puts is how many Put calls a node answered (any status), from its /metrics. */
async function puts(c: ProcessCluster, id: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${c.specs.get(id)?.adminPort}/metrics`)).text();
  return [...text.matchAll(/^raftmesh_api_requests_total\{([^}]*)\} (\S+)$/gm)].filter((m) => m[1]?.includes(`method="${PUT}"`)).reduce((a, m) => a + Number(m[2]), 0);
}

describe("writes go to the leader a forwarded answer named", () => {
  let c: ProcessCluster | undefined;
  let client: RaftmeshClient | undefined;
  afterAll(async () => {
    client?.close();
    await c?.cleanup();
  });

  it("after one forwarded write the SDK writes to the leader directly; after the leader dies, to the next one", async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    const leader = await c.waitForLeader();
    const [follower, other] = c.runningIds().filter((id) => id !== leader) as [string, string];
    // The follower first: without the leader's address from the answer, every write would go there.
    client = new RaftmeshClient([c.api(follower), c.api(leader), c.api(other)], { deadlineMs: 5_000 });
    const before = { follower: await puts(c, follower), leader: await puts(c, leader) };
    for (let i = 0; i < WRITES; i++) await client.put(`k${i}`, `v${i}`);
    const after = { follower: await puts(c, follower), leader: await puts(c, leader) };
    // One write through the follower (forwarded: the leader counts it too), the rest to the leader.
    expect(after.follower - before.follower).toBe(1);
    expect(after.leader - before.leader).toBe(WRITES);
    expect((await client.get(`k${WRITES - 1}`)).value.toString()).toBe(`v${WRITES - 1}`);

    // The leader dies. A write without a session (a membership change) never goes to the learned
    // leader first: sent there it would fail with an unknown outcome; it goes where it went before,
    // and is answered (no such member).
    await c.kill(leader);
    await c.waitForLeader(30_000);
    const plain = await client.promoteMember("no-such-member").then(
      () => undefined,
      (e: unknown) => e as RaftmeshError,
    );
    expect(plain?.code).toBe(grpcStatus.NOT_FOUND);
    // A sessioned write that finds the learned leader gone moves on with its seq; a forwarded
    // answer names the new leader.
    for (let i = 0; i < WRITES; i++) await client.put(`after${i}`, `v${i}`);
    const next = await c.waitForLeader(30_000);
    const nonLeader = [follower, other].find((id) => id !== next) as string;
    const nextBefore = await puts(c, next);
    const nonLeaderBefore = await puts(c, nonLeader);
    for (let i = 0; i < WRITES; i++) await client.put(`again${i}`, `v${i}`);
    expect((await puts(c, next)) - nextBefore).toBe(WRITES);
    expect((await puts(c, nonLeader)) - nonLeaderBefore).toBe(0);
  }, 90_000);
});
