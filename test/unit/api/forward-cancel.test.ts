/**
 * A follower forwards writes to its leader. When that leader goes silent (stopped, partitioned),
 * its connection stays open and a forwarded call would wait for the caller's deadline, long after
 * this node follows a new leader. LeaderRoute.leaderChanged cancels the calls forwarded to any
 * other leader: they fail at once as outcome-unknown (DEADLINE_EXCEEDED without not-applied),
 * which a sessioned client sends again. Calls to the leader still followed are left alone, and so
 * are all while no leader is known.
 *
 * A real grpc-js server that never answers stands in for the silent leader, and a real Forwarder
 * calls it.
 */
import { Metadata, Server, ServerCredentials, type ServerUnaryCall, status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { toStatus } from "../../../src/api/errors.js";
import { Forwarder } from "../../../src/api/forwarder.js";
import { FORWARD_CANCEL_GRACE_MS, LeaderRoute } from "../../../src/api/leader-route.js";
import { METADATA_NOT_APPLIED } from "../../../src/common/metadata.js";
import { clientApi } from "../../../src/common/proto.js";

/** CALL_DEADLINE_MS: the caller's deadline, far beyond what the test waits for a cancelled call. */
const CALL_DEADLINE_MS = 20_000;

describe("api: forwarded calls and a change of leader", () => {
  const servers: Server[] = [];
  const forwarders: Forwarder[] = [];
  afterEach(() => {
    for (const f of forwarders.splice(0)) f.close();
    for (const s of servers.splice(0)) s.forceShutdown();
  });

  async function silentLeader(): Promise<{ address: string; received: () => number }> {
    let received = 0;
    const server = new Server();
    servers.push(server);
    // Receives every Put and never answers, as a stopped process's open connection does.
    server.addService(clientApi().KV.service, { Put: () => void received++ });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    return { address: `127.0.0.1:${port}`, received: () => received };
  }

  function forwardedPut(route: LeaderRoute): Promise<unknown> {
    const call = {
      request: { key: "k", value: Buffer.from("v") },
      metadata: new Metadata(),
      getDeadline: () => new Date(Date.now() + CALL_DEADLINE_MS),
      sendMetadata: () => undefined,
    } as unknown as ServerUnaryCall<object, object>;
    return route.onLeader(call, "KV", "Put", CALL_DEADLINE_MS, () => Promise.reject(new Error("this node does not lead")));
  }

  it("api: a call forwarded to the old leader fails at once as outcome-unknown when another leads; one to the leader still followed waits", async () => {
    const old = await silentLeader();
    const forwarder = new Forwarder();
    forwarders.push(forwarder);
    let leader = "n2";
    const route = new LeaderRoute({ isLeader: () => false, leader: () => leader }, () => ({ peer: "", api: old.address }), forwarder);
    const outcome = forwardedPut(route).then(
      () => "answered",
      (err: unknown) => err,
    );
    while (old.received() < 1) await new Promise((r) => setTimeout(r, 5));

    // The leader still followed (an event that lagged the node's view): nothing is cancelled.
    route.leaderChanged();
    // No leader known (a pre-vote, a dropped peer connection): nothing is cancelled either.
    leader = "";
    route.leaderChanged();
    const still = await Promise.race([outcome, new Promise((r) => setTimeout(() => r("waiting"), 200))]);
    expect(still).toBe("waiting");

    leader = "n3";
    const started = Date.now();
    route.leaderChanged();
    const err = await outcome;
    // After the grace a live old leader has to answer, not at the caller's deadline.
    expect(Date.now() - started).toBeGreaterThanOrEqual(FORWARD_CANCEL_GRACE_MS - 50);
    expect(Date.now() - started).toBeLessThan(FORWARD_CANCEL_GRACE_MS + 2_000);
    const st = toStatus(err);
    expect(st.code).toBe(status.DEADLINE_EXCEEDED);
    expect(st.metadata?.get(METADATA_NOT_APPLIED) ?? []).toEqual([]);
    expect(String(st.details)).toMatch(/was cancelled: this node no longer follows it/);
  });

  it("api: this node leading cancels the calls it forwarded to the old leader", async () => {
    const old = await silentLeader();
    const forwarder = new Forwarder();
    forwarders.push(forwarder);
    let leader = "n2";
    const route = new LeaderRoute({ isLeader: () => leader === "n1", leader: () => leader }, () => ({ peer: "", api: old.address }), forwarder);
    const outcome = forwardedPut(route).catch((err: unknown) => err);
    while (old.received() < 1) await new Promise((r) => setTimeout(r, 5));
    leader = "n1";
    const started = Date.now();
    route.leaderChanged();
    const st = toStatus(await outcome);
    expect(Date.now() - started).toBeLessThan(FORWARD_CANCEL_GRACE_MS + 2_000);
    expect(st.code).toBe(status.DEADLINE_EXCEEDED);
    expect(String(st.details)).toMatch(/was cancelled/);
  });

  it("api: an old leader that answers within the grace is heard (a leader transfer answers just after the new leader took over)", async () => {
    let answer: (() => void) | undefined;
    const server = new Server();
    servers.push(server);
    server.addService(clientApi().KV.service, {
      Put: (_call: unknown, callback: (err: null, res: object) => void) => {
        answer = () => callback(null, { index: 42 });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const forwarder = new Forwarder();
    forwarders.push(forwarder);
    let leader = "n2";
    const route = new LeaderRoute({ isLeader: () => false, leader: () => leader }, () => ({ peer: "", api: `127.0.0.1:${port}` }), forwarder);
    const outcome = forwardedPut(route);
    while (answer === undefined) await new Promise((r) => setTimeout(r, 5));
    leader = "n3";
    route.leaderChanged();
    await new Promise((r) => setTimeout(r, FORWARD_CANCEL_GRACE_MS / 4));
    answer();
    await expect(outcome).resolves.toMatchObject({ index: 42 });
  });
});
