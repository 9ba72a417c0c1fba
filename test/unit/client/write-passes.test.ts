/**
 * A sessioned write goes round its endpoints more than once while they cannot serve it: through an
 * election every node answers "no leader" for a few hundred ms, and a put overwritten by a new
 * leader's entry comes back ABORTED with not-applied. Each send keeps the seq (at-most-once), the
 * passes stop at WRITE_PASSES_MAX or the deadline, and an answer that is final stops them at once.
 *
 * Real grpc-js servers on loopback stand in for the nodes, each failing its first calls as scripted.
 */
import { Metadata, Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData, status } from "@grpc/grpc-js";
import { connect, createServer, type Server as NetServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { KEEPALIVE_MS_MIN, WRITE_PASSES_MAX } from "../../../src/client/client.js";
import { RaftmeshClient } from "../../../src/client/index.js";
import { METADATA_FINAL, METADATA_NOT_APPLIED } from "../../../src/common/metadata.js";
import { clientApi } from "../../../src/common/proto.js";

type PutCall = ServerUnaryCall<{ key: string; session?: { clientId: string; seq: number } }, object>;

/** Failure is how a scripted node fails a call: the code, and whether it says the write did not run. */
interface Failure {
  readonly code: status;
  readonly notApplied: boolean;
  /** final: the answer says a resend gets the same (a seq out of the session window). */
  readonly final?: boolean;
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
  const silentServers: NetServer[] = [];
  const sockets: Socket[] = [];
  let client: RaftmeshClient | undefined;
  afterEach(() => {
    client?.close();
    for (const s of servers.splice(0)) s.forceShutdown();
    for (const s of sockets.splice(0)) s.destroy();
    for (const s of silentServers.splice(0)) s.close();
  });

  /**
   * freezable is a TCP proxy to a node that can be frozen: from then on it neither reads nor writes
   * on its connections, as a stopped process's kernel keeps them open and says nothing.
   */
  async function freezable(target: string): Promise<{ address: string; freeze: () => void }> {
    const [host, port] = target.split(":") as [string, string];
    const pairs: [Socket, Socket][] = [];
    const server = createServer((front) => {
      const back = connect(Number(port), host);
      sockets.push(front, back);
      pairs.push([front, back]);
      front.pipe(back);
      back.pipe(front);
    });
    silentServers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
      address: `127.0.0.1:${(server.address() as { port: number }).port}`,
      freeze: () => {
        for (const [front, back] of pairs) {
          front.unpipe(back);
          back.unpipe(front);
          front.pause();
          back.pause();
        }
      },
    };
  }

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
        if (f.final) md.set(METADATA_FINAL, "1");
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
    // UNAVAILABLE from the node, or DEADLINE_EXCEEDED when a loaded machine spent the deadline on a try.
    const err = (await client.put("k", "v").catch((e: unknown) => e)) as { code: status };
    expect([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]).toContain(err.code);
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

  it("client: once a try's outcome is unknown, the write never ends saying it did not run", async () => {
    // A forward cut off (outcome unknown), then "no leader" (not applied) until the deadline: the
    // first try may yet commit, so the last answer's not-applied must not reach the caller.
    const unknownThenNoLeader: Failure[] = [{ code: status.DEADLINE_EXCEEDED, notApplied: false }, ...Array.from({ length: 100 }, () => NO_LEADER)];
    const n = await node(unknownThenNoLeader);
    client = new RaftmeshClient([n.address], { deadlineMs: 400 });
    const err = (await client.put("k", "v").catch((e: unknown) => e)) as { code: status; notApplied: boolean; details: string };
    expect(n.seqs.length).toBeGreaterThanOrEqual(2);
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
    expect(err.notApplied).toBe(false);
    expect(err.details).toMatch(/the outcome is unknown/);
    client.close();

    // The same after a final refusal: it speaks for its own try only.
    const refusedAfter = await node([{ code: status.DEADLINE_EXCEEDED, notApplied: false }, { code: status.FAILED_PRECONDITION, notApplied: true }]);
    client = new RaftmeshClient([refusedAfter.address], { deadlineMs: 5_000 });
    await expect(client.put("k", "v")).rejects.toMatchObject({ code: status.FAILED_PRECONDITION, notApplied: false });
  });

  it("client: a seq out of the session window is answered final: not sent again, anywhere, and the outcome is unknown", async () => {
    // DEADLINE_EXCEEDED alone would be resent with the same seq until the deadline (5 s here),
    // and every resend would get the same answer.
    const stale = await node(Array.from({ length: 100 }, () => ({ code: status.DEADLINE_EXCEEDED, notApplied: false, final: true })));
    const spare = await node([]);
    client = new RaftmeshClient([stale.address, spare.address], { deadlineMs: 5_000 });
    const started = Date.now();
    const err = (await client.put("k", "v").catch((e: unknown) => e)) as { code: status; notApplied: boolean; final: boolean };
    expect(err).toMatchObject({ code: status.DEADLINE_EXCEEDED, notApplied: false, final: true });
    expect(stale.seqs).toEqual([1]);
    expect(spare.seqs).toEqual([]);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("client: a write whose only try was never sent ends with that try's own answer", async () => {
    // Nothing listens there: grpc-js fails the call before writing it anywhere.
    client = new RaftmeshClient(["127.0.0.1:1"], { deadlineMs: 2_000, writeRounds: 1 });
    const err = (await client.put("k", "v").catch((e: unknown) => e)) as { code: status; details: string };
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toMatch(/^No connection established/);
  });

  it("client: seqs stay apart: the next write after a retried one takes the next seq", async () => {
    const n = await node([LOST]);
    client = new RaftmeshClient([n.address], { deadlineMs: 5_000 });
    await client.put("a", "v");
    await client.put("b", "v");
    expect(n.seqs).toEqual([1, 1, 2]);
  });

  it("client: a write to a node gone silent moves on when its connection's ping goes unanswered, long before the deadline", async () => {
    const a = await node([]);
    const b = await node([]);
    const proxy = await freezable(a.address);
    client = new RaftmeshClient([proxy.address, b.address], { deadlineMs: 20_000, keepaliveMs: 500 });
    await client.put("k1", "v");
    expect(a.seqs).toEqual([1]);
    proxy.freeze();
    const started = Date.now();
    await client.put("k2", "v");
    const ms = Date.now() - started;
    // The connection was open, so its pings run while the call waits: one within 500 ms,
    // unanswered for 500 ms more.
    expect(ms).toBeLessThan(5_000);
    expect(b.seqs).toEqual([2]);
  }, 30_000);

  it("client: without pings a node gone silent holds the write to its deadline (the control)", async () => {
    const a = await node([]);
    const b = await node([]);
    const proxy = await freezable(a.address);
    client = new RaftmeshClient([proxy.address, b.address], { deadlineMs: 1_500, keepaliveMs: 0 });
    await client.put("k1", "v");
    proxy.freeze();
    const started = Date.now();
    await client.put("k2", "v");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
    expect(b.seqs).toEqual([2]);
  });

  it("client: writeRounds 1 tries each endpoint once; writeRounds is a whole number from 1 to WRITE_PASSES_MAX", async () => {
    const n = await node([NO_LEADER, NO_LEADER]);
    client = new RaftmeshClient([n.address], { deadlineMs: 5_000, writeRounds: 1 });
    await expect(client.put("k", "v")).rejects.toMatchObject({ code: status.UNAVAILABLE, notApplied: true });
    expect(n.seqs).toEqual([1]);
    expect(() => new RaftmeshClient(["127.0.0.1:1"], { writeRounds: 0 })).toThrow(/writeRounds must be a whole number from 1/);
    expect(() => new RaftmeshClient(["127.0.0.1:1"], { writeRounds: WRITE_PASSES_MAX + 1 })).toThrow(/writeRounds/);
  });

  it("client: keepaliveMs is 0 or at least KEEPALIVE_MS_MIN whole milliseconds", () => {
    expect(() => new RaftmeshClient(["127.0.0.1:1"], { keepaliveMs: KEEPALIVE_MS_MIN - 1 })).toThrow(/keepaliveMs must be 0 \(off\) or a whole number/);
    expect(() => new RaftmeshClient(["127.0.0.1:1"], { keepaliveMs: 1_000.5 })).toThrow(/keepaliveMs/);
    new RaftmeshClient(["127.0.0.1:1"], { keepaliveMs: 0 }).close();
  });
});
