import { afterEach, describe, expect, it } from "vitest";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

describe("cluster of real processes", () => {
  let cluster: ProcessCluster | undefined;
  afterEach(async () => {
    await cluster?.cleanup();
    cluster = undefined;
  });

  it("cluster: elects a leader, takes writes through every node, and survives SIGKILL of the leader", async () => {
    cluster = await ProcessCluster.create({ size: 3 });
    const c = cluster;
    c.startAll();
    const leader = await c.waitForLeader();
    // Writes through every node, leader and followers alike; each is readable through every node.
    for (const id of ["n1", "n2", "n3"]) {
      const res = await c.client(id).put(`via-${id}`, `value-${id}`);
      expect(res.index).toBeGreaterThan(0);
    }
    for (const reader of ["n1", "n2", "n3"]) {
      for (const id of ["n1", "n2", "n3"]) {
        const got = await c.client(reader).get(`via-${id}`);
        expect(got.found).toBe(true);
        expect(got.value.toString()).toBe(`value-${id}`);
      }
    }
    await c.kill(leader);
    const survivors = ["n1", "n2", "n3"].filter((id) => id !== leader);
    const next = await c.waitForLeader(20_000, survivors);
    expect(next).not.toBe(leader);
    const via = survivors.find((id) => id !== next) as string;
    await waitFor("a write after failover", () => c.client(via).put("after-kill", "ok").then(() => true));
    // The killed node comes back on its data and catches up.
    c.start(leader);
    await waitFor("the old leader to catch up", async () => {
      const got = await c.client(leader).get("after-kill", { stale: true });
      return got.found;
    });
    for (const id of ["n1", "n2", "n3"]) expect((await c.client(leader).get(`via-${id}`)).value.toString()).toBe(`value-${id}`);
  });
});
