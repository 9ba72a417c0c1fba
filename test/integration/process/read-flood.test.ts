/**
 * A flood of linearizable reads against a real 3-node cluster whose pending-read limit is small:
 * reads past the limit, whether they reach the leader directly or are forwarded to it by a
 * follower, are refused with RESOURCE_EXHAUSTED; no node exits; the cluster takes writes after.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RaftmeshClient, RaftmeshError } from "../../../src/client/index.js";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

/** PENDING_READS_MAX is the limit every node runs with: far below the flood, so most reads overflow it. */
const PENDING_READS_MAX = 50;
/** READS_PER_NODE is how many reads are sent at once through each node (3,000 in all). */
const READS_PER_NODE = 1_000;
/** READ_DEADLINE_MS is each read's deadline: long enough that a loaded 2-core machine answers in time. */
const READ_DEADLINE_MS = 20_000;
/** FLOOD_MS_MAX bounds the whole flood: every read is answered well before its deadline. */
const FLOOD_MS_MAX = 30_000;

describe("read flood", () => {
  let c: ProcessCluster;
  const clients: RaftmeshClient[] = [];
  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3, env: { RAFTMESH_PENDING_READS_MAX: String(PENDING_READS_MAX) } });
    c.startAll();
    await c.waitForLeader();
  });
  afterAll(async () => {
    for (const cl of clients) cl.close();
    await c?.cleanup();
  });

  it("reads: a flood through the leader and the followers is answered or refused with RESOURCE_EXHAUSTED, and every node stays up", async () => {
    const ids = ["n1", "n2", "n3"];
    await c.client("n1").put("flood", "before");
    const termBefore = (await c.client(await c.waitForLeader()).status()).term;
    const started = Date.now();
    const details = new Set<string>();
    const outcomes = await Promise.all(
      ids.flatMap((id) => {
        // One client per node, pinned to it, so a refused read is not retried elsewhere.
        const client = new RaftmeshClient([c.api(id)], { deadlineMs: READ_DEADLINE_MS });
        clients.push(client);
        return Array.from({ length: READS_PER_NODE }, () =>
          client.get("flood").then(
            (res) => (res.value.toString() === "before" ? "ok" : `wrong value ${res.value.toString()}`),
            (err: unknown) => {
              if (!(err instanceof RaftmeshError)) return String(err);
              if (err.code === GrpcStatus.RESOURCE_EXHAUSTED) return "RESOURCE_EXHAUSTED";
              details.add(`${id}: ${err.details}`);
              // A leader that steps down refuses the reads it held at once: an honest answer, told apart from a hang.
              if (err.code === GrpcStatus.UNAVAILABLE && err.details.includes("linearizable read refused: not-leader")) return "UNAVAILABLE not-leader";
              return GrpcStatus[err.code] as string;
            },
          ),
        );
      }),
    );
    const elapsedMs = Date.now() - started;
    const counts = new Map<string, number>();
    for (const o of outcomes) counts.set(o, (counts.get(o) ?? 0) + 1);
    const termAfter = (await c.client(await c.waitForLeader()).status()).term;
    const summary = { ...Object.fromEntries(counts), elapsedMs, termBefore, termAfter, details: [...details].slice(0, 5) };
    for (const id of ids) expect(c.isRunning(id), `${id} is running after the flood (${JSON.stringify(summary)})`).toBe(true);
    expect(outcomes).toHaveLength(ids.length * READS_PER_NODE);
    // Every read is answered or refused for the limit; nothing times out or fails otherwise. Only
    // when this loaded machine starved a node of heartbeats may reads it held be refused as
    // not-leader: a leader that stepped down (a new term), or a follower whose election timer ran
    // out and which went to pre-vote (same term, "leader: unknown"). Either refuses only the reads
    // it was holding, so at most PENDING_READS_MAX per node.
    const notLeader = counts.get("UNAVAILABLE not-leader") ?? 0;
    const lostLeader = termAfter > termBefore || (details.size > 0 && [...details].every((d) => d.includes("not-leader (leader: unknown)")));
    const allowed = new Set(["ok", "RESOURCE_EXHAUSTED", ...(lostLeader ? ["UNAVAILABLE not-leader"] : [])]);
    expect(notLeader, JSON.stringify(summary)).toBeLessThanOrEqual(PENDING_READS_MAX * ids.length);
    expect([...counts.keys()].filter((k) => !allowed.has(k)), JSON.stringify(summary)).toEqual([]);
    // Reads are answered unless the leader was lost: a CI run saw the flood itself starve a loaded
    // leader past the election timeout before it confirmed any read index (termBefore 2, termAfter
    // 3: 2,869 refused for the limit, the 131 it held refused as not-leader, none answered). That
    // refusal is the honest outcome this test is about; the reads after the flood show liveness.
    if (!lostLeader) expect(counts.get("ok") ?? 0, JSON.stringify(summary)).toBeGreaterThan(0);
    expect(counts.get("RESOURCE_EXHAUSTED") ?? 0, JSON.stringify(summary)).toBeGreaterThan(0);
    expect(elapsedMs).toBeLessThan(FLOOD_MS_MAX);
    // The cluster still takes writes, through every node, and reads them back.
    await c.waitForLeader();
    for (const id of ids) {
      await waitFor(`a write through ${id}`, () => c.client(id).put(`after-${id}`, "ok").then(() => true));
      expect((await c.client(id).get(`after-${id}`)).value.toString()).toBe("ok");
    }
  });
});
