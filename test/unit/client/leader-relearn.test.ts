/**
 * A leader this client cannot use, though the cluster can (a firewall between the client and that
 * node, a broken proxy): followers keep naming it in their forwarded answers. The client must not
 * pay a failed try on every write: after a write to the named leader fails, answers naming it are
 * ignored for leaderRelearnMs, then followed again. A retry keeps its seq (at-most-once).
 *
 * Two real grpc-js servers on loopback stand in for the nodes: "follower" answers every Put and
 * names "leader" in its headers, as a forwarding follower does (leader-route.ts); "leader" fails
 * every Put with UNAVAILABLE, as a client sees a node it cannot reach.
 */
import { Metadata, Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData, status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { RaftmeshClient } from "../../../src/client/index.js";
import { METADATA_LEADER_API } from "../../../src/common/metadata.js";
import { clientApi } from "../../../src/common/proto.js";

/** RELEARN_MS is the test's leaderRelearnMs: long beside a loopback write (~1 ms), short to wait out. */
const RELEARN_MS = 400;
/** WRITES_IN_WINDOW: writes sent inside the window; each would try the leader first without the rule. */
const WRITES_IN_WINDOW = 8;

type PutCall = ServerUnaryCall<{ key: string; session?: { seq: number } }, object>;

async function listen(server: Server): Promise<string> {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return `127.0.0.1:${port}`;
}

describe("client: leader relearn", () => {
  const servers: Server[] = [];
  let client: RaftmeshClient | undefined;
  afterEach(() => {
    client?.close();
    for (const s of servers.splice(0)) s.forceShutdown();
  });

  it("client: a named leader a write failed on is skipped for leaderRelearnMs, then followed again; the retry keeps its seq", async () => {
    const leaderSeqs: number[] = [];
    const followerSeqs: number[] = [];
    const leader = new Server();
    leader.addService(clientApi().KV.service, {
      Put: (call: PutCall, callback: sendUnaryData<object>) => {
        leaderSeqs.push(call.request.session?.seq ?? -1);
        callback({ code: status.UNAVAILABLE, details: "connection refused" });
      },
    });
    const follower = new Server();
    servers.push(leader, follower);
    const leaderAddress = await listen(leader);
    follower.addService(clientApi().KV.service, {
      Put: (call: PutCall, callback: sendUnaryData<object>) => {
        followerSeqs.push(call.request.session?.seq ?? -1);
        const md = new Metadata();
        md.set(METADATA_LEADER_API, leaderAddress);
        call.sendMetadata(md);
        callback(null, { index: followerSeqs.length });
      },
    });
    const followerAddress = await listen(follower);
    client = new RaftmeshClient([followerAddress, leaderAddress], { deadlineMs: 5_000, leaderRelearnMs: RELEARN_MS });

    // The first write goes to the first endpoint, whose answer names the leader.
    await client.put("k0", "v");
    expect(leaderSeqs).toEqual([]);
    // The second goes to the named leader first, fails there, and is answered by the follower
    // under the same seq.
    await client.put("k1", "v");
    expect(leaderSeqs).toEqual([2]);
    expect(followerSeqs).toEqual([1, 2]);
    // Inside the window the follower's answers still name the leader, and no write tries it.
    const started = Date.now();
    for (let i = 0; i < WRITES_IN_WINDOW; i++) await client.put(`w${i}`, "v");
    expect(Date.now() - started, "the writes in the window took longer than the window").toBeLessThan(RELEARN_MS);
    expect(leaderSeqs).toEqual([2]);
    // Past the window, the next answer naming the leader is followed again: the write after it
    // tries the leader first.
    await new Promise((r) => setTimeout(r, RELEARN_MS + 50));
    await client.put("after", "v");
    expect(leaderSeqs).toEqual([2]);
    await client.put("again", "v");
    const again = WRITES_IN_WINDOW + 4;
    expect(leaderSeqs).toEqual([2, again]);
    expect(followerSeqs.at(-1)).toBe(again);
  });

  it("client: leaderRelearnMs must be a whole number of milliseconds", () => {
    expect(() => new RaftmeshClient(["127.0.0.1:1"], { leaderRelearnMs: -1 })).toThrow(/leaderRelearnMs must be a whole number/);
    expect(() => new RaftmeshClient(["127.0.0.1:1"], { leaderRelearnMs: 1.5 })).toThrow(/leaderRelearnMs/);
  });
});
