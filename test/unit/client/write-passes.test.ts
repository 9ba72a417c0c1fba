/**
 * A sessioned write goes round its endpoints more than once while they cannot serve it: through an
 * election every node answers "no leader" for a few hundred ms, and a put overwritten by a new
 * leader's entry comes back ABORTED with not-applied. Each send keeps the seq (at-most-once), the
 * passes stop at WRITE_PASSES_MAX or the deadline, and an answer that is final stops them at once.
 *
 * Real grpc-js servers on loopback stand in for the nodes, each failing its first calls as scripted.
 */
import { Metadata, Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData, status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { WRITE_PASSES_MAX } from "../../../src/client/client.js";
import { RaftmeshClient } from "../../../src/client/index.js";
import { METADATA_NOT_APPLIED } from "../../../src/common/metadata.js";
import { clientApi } from "../../../src/common/proto.js";

type PutCall = ServerUnaryCall<{ key: string; session?: { clientId: string; seq: number } }, object>;

/** Failure is how a scripted node fails a call: the code, and whether it says the write did not run. */
interface Failure {
  readonly code: status;
  readonly notApplied: boolean;
}

const NO_LEADER: Failure = { code: status.UNAVAILABLE, notApplied: true };
const LOST: Failure = { code: status.ABORTED, notApplied: true };

/** DEADLINE_MS: a deadline that ends the passes after the third at the latest (25 + 50 + 100 ms of pauses). */
const DEADLINE_MS = 130;

/** ScriptedNode answers its calls with the failures given, in order, then with success. */
interface ScriptedNode {
  readonly address: string;
  readonly seqs: number[];
}

describe("client: write passes", () => {
  const servers: Server[] = [];
  let client: RaftmeshClient | undefined;
  afterEach(() => {
    client?.close();
    for (const s of servers.splice(0)) s.forceShutdown();
  });

  async function node(failures: readonly Failure[]): Promise<ScriptedNode> {
    const seqs: number[] = [];
    const server = new Server();
    servers.push(server);
    server.addService(clientApi().KV.service, {
      Put: (call: PutCall, callback: sendUnaryData<object>) => {
        seqs.push(call.request.session?.seq ?? -1);
        const f = failures[seqs.length - 1];
        if (!f) return callback(null, { index: seqs.length });
        const md = new Metadata();
        if (f.notApplied) md.set(METADATA_NOT_APPLIED, "1");
        callback({ code: f.code, details: "scripted", metadata: md });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    return { address: `127.0.0.1:${port}`, seqs };
  }

  it("client: one endpoint through an election: sent again after a pause, same seq, until it is served", async () => {
    const n = await node([NO_LEADER, NO_LEADER, LOST]);
    client = new RaftmeshClient([n.address], { deadlineMs: 5_000 });
    const started = Date.now();
    await client.put("k", "v");
    // Three pauses: 25 + 50 + 100 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(170);
    expect(n.seqs).toEqual([1, 1, 1, 1]);
  });

  it("client: every endpoint refusing: WRITE_PASSES_MAX passes over all of them, then the last error", async () => {
    const always = Array.from({ length: 100 }, () => NO_LEADER);
    const a = await node(always);
    const b = await node(always);
    // A deadline past the passes' pauses (25 + 50 + 100 + 200 + 27 × 250 ms = 7.1 s) and calls.
    client = new RaftmeshClient([a.address, b.address], { deadlineMs: 30_000 });
    await expect(client.put("k", "v")).rejects.toMatchObject({ code: status.UNAVAILABLE, notApplied: true });
    expect(a.seqs).toEqual(Array.from({ length: WRITE_PASSES_MAX }, () => 1));
    expect(b.seqs).toEqual(Array.from({ length: WRITE_PASSES_MAX }, () => 1));
  }, 20_000);

  it("client: the passes end with the deadline", async () => {
    const n = await node(Array.from({ length: 100 }, () => NO_LEADER));
    client = new RaftmeshClient([n.address], { deadlineMs: DEADLINE_MS });
    const started = Date.now();
    await expect(client.put("k", "v")).rejects.toMatchObject({ code: status.UNAVAILABLE });
    // Passes start at 0, 25 and 75 ms at the soonest; the fourth could not start before 175 ms, past
    // the deadline (a loaded machine may start fewer).
    expect(n.seqs.length).toBeGreaterThanOrEqual(1);
    expect(n.seqs.length).toBeLessThan(WRITE_PASSES_MAX);
    expect(new Set(n.seqs)).toEqual(new Set([1]));
    expect(Date.now() - started).toBeLessThan(DEADLINE_MS + 1_000);
  });

  it("client: a final answer is not sent again: ABORTED without not-applied, or a refusal", async () => {
    const aborted = await node([{ code: status.ABORTED, notApplied: false }]);
    const spare = await node([]);
    client = new RaftmeshClient([aborted.address, spare.address], { deadlineMs: 5_000 });
    await expect(client.put("k", "v")).rejects.toMatchObject({ code: status.ABORTED, notApplied: false });
    expect(aborted.seqs).toEqual([1]);
    expect(spare.seqs).toEqual([]);
    client.close();

    const refused = await node([{ code: status.FAILED_PRECONDITION, notApplied: true }]);
    client = new RaftmeshClient([refused.address, spare.address], { deadlineMs: 5_000 });
    await expect(client.put("k", "v")).rejects.toMatchObject({ code: status.FAILED_PRECONDITION });
    expect(refused.seqs).toEqual([1]);
    expect(spare.seqs).toEqual([]);
  });

  it("client: seqs stay apart: the next write after a retried one takes the next seq", async () => {
    const n = await node([LOST]);
    client = new RaftmeshClient([n.address], { deadlineMs: 5_000 });
    await client.put("a", "v");
    await client.put("b", "v");
    expect(n.seqs).toEqual([1, 1, 2]);
  });
});
