/**
 * A node's client API holds at most --api-connections-max connections from addresses that are not
 * a member's; a flood of them is refused, counted, and does not cut a follower off from its leader
 * (followers forward writes to the leader's client API from a member's address, which gets a
 * reserve past the bound). Real processes; the flood comes from 127.0.0.2, not a member's address
 * (the members are on 127.0.0.1).
 */
import { connect, type Socket } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

/** BOUND leaves room beside the few connections from members (the harness, the node's own agent) that count toward it too. */
const BOUND = 8;
const FLOOD = 20;
const NOT_A_MEMBER = "127.0.0.2";

function open(endpoint: string, localAddress: string): Promise<Socket> {
  const [host, port] = [endpoint.slice(0, endpoint.lastIndexOf(":")), Number(endpoint.slice(endpoint.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, localAddress });
    s.on("error", () => undefined);
    s.resume();
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

describe("client API connection bound", () => {
  let c: ProcessCluster | undefined;
  const flood: Socket[] = [];
  afterAll(async () => {
    for (const s of flood) s.destroy();
    await c?.cleanup();
  });

  it("a flood from a non-member address is cut at the bound and counted; a follower still forwards writes to the leader", async () => {
    c = await ProcessCluster.create({ size: 3, env: { RAFTMESH_API_CONNECTIONS_MAX: String(BOUND) } });
    c.startAll();
    const leader = await c.waitForLeader();
    const follower = c.runningIds().find((id) => id !== leader) as string;
    // No write has gone through the follower yet: its connection to the leader's client API is opened after the flood.
    for (let i = 0; i < FLOOD; i++) flood.push(await open(c.api(leader), NOT_A_MEMBER));
    await waitFor("the flood cut to the bound", () => flood.filter((s) => !s.closed).length <= BOUND || undefined);
    const held = flood.filter((s) => !s.closed).length;
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThanOrEqual(BOUND);

    const metrics = await (await fetch(`http://127.0.0.1:${c.specs.get(leader)?.adminPort}/metrics`)).text();
    const refused = Number(/^raftmesh_api_connections_refused_total (\S+)/m.exec(metrics)?.[1]);
    expect(refused).toBeGreaterThanOrEqual(FLOOD - BOUND);

    await c.client(follower).put("through-the-follower", "yes");
    const got = await c.client(leader).get("through-the-follower");
    expect(got.value.toString()).toBe("yes");
    expect(await c.waitForLog(leader, "client API connections refused")).toContain(`"connectionsMax":${BOUND}`);
  }, 60_000);
});
