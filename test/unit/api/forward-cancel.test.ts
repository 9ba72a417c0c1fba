/**
 * A follower forwards writes to its leader. When that leader goes silent (stopped, partitioned),
 * its connection stays open and a forwarded call would wait for the caller's deadline, long after
 * this node follows a new leader. LeaderRoute.leaderChanged cancels the calls forwarded to any
 * other leader: they fail at once as outcome-unknown (DEADLINE_EXCEEDED without not-applied),
 * which a sessioned client sends again. Calls to the leader still followed are left alone.
 *
 * A real grpc-js server that never answers stands in for the silent leader, and a real Forwarder
 * calls it.
 */
import { Metadata, Server, ServerCredentials, type ServerUnaryCall, status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { toStatus } from "../../../src/api/errors.js";
import { Forwarder } from "../../../src/api/forwarder.js";
import { LeaderRoute } from "../../../src/api/leader-route.js";
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

    // The same leader again (a repeated event): nothing is cancelled.
    route.leaderChanged("n2");
    const still = await Promise.race([outcome, new Promise((r) => setTimeout(() => r("waiting"), 200))]);
    expect(still).toBe("waiting");

    leader = "n3";
    const started = Date.now();
    route.leaderChanged("n3");
    const err = await outcome;
    expect(Date.now() - started).toBeLessThan(2_000);
    const st = toStatus(err);
    expect(st.code).toBe(status.DEADLINE_EXCEEDED);
    expect(st.metadata?.get(METADATA_NOT_APPLIED) ?? []).toEqual([]);
    expect(String(st.details)).toMatch(/was cancelled: this node no longer follows it/);
  });

  it("api: no known leader also cancels (an election under way)", async () => {
    const old = await silentLeader();
    const forwarder = new Forwarder();
    forwarders.push(forwarder);
    const route = new LeaderRoute({ isLeader: () => false, leader: () => "n2" }, () => ({ peer: "", api: old.address }), forwarder);
    const outcome = forwardedPut(route).catch((err: unknown) => err);
    while (old.received() < 1) await new Promise((r) => setTimeout(r, 5));
    const started = Date.now();
    route.leaderChanged("");
    const st = toStatus(await outcome);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(st.code).toBe(status.DEADLINE_EXCEEDED);
    expect(String(st.details)).toMatch(/was cancelled/);
  });
});
