/**
 * The client API server holds at most connectionsMax connections at once (API_CONNECTIONS_MAX in a
 * node): one more is closed as it is accepted and counted, a client then gets UNAVAILABLE, and a
 * connection that ends makes room again. In-process: a real grpc-js server with a bound of 3, raw
 * TCP sockets to fill it and a real client.
 */
import { connect, type Socket } from "node:net";
import { status as grpcStatus, type sendUnaryData, type ServerUnaryCall } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_CONNECTIONS_MAX, API_MEMBER_CONNECTIONS_RESERVED } from "../../../src/api/limits.js";
import { ApiServer } from "../../../src/api/server.js";
import { RaftmeshClient, RaftmeshError } from "../../../src/client/index.js";

const BOUND = 3;
/** WAIT_MS bounds each wait for the server to act on a socket (it acts within an event-loop turn). */
const WAIT_MS = 5_000;

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    s.on("error", () => undefined);
    // Flowing, so the server's close is read (a paused socket would not see the end).
    s.resume();
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** closedWithin is whether socket closes within ms. */
function closedWithin(socket: Socket, ms: number): Promise<boolean> {
  if (socket.closed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

const answer = (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => callback(null, {});

describe("client API: connections at once", () => {
  let server: ApiServer;
  let port = 0;
  let refused = 0;
  beforeAll(async () => {
    server = new ApiServer({ kv: {}, registry: {}, cluster: { Status: answer } }, [], {
      connectionsMax: BOUND,
      isMember: () => false,
      onRefused: () => {
        refused++;
      },
    });
    port = await server.listen("127.0.0.1:0");
    // With the grpc-js this lock file pins, the bound is set; a release that moved its listeners fails here.
    expect(server.connectionsBounded).toBe(true);
  });
  afterAll(async () => {
    await server?.close();
  });

  it("the node's bounds are numbers: room for thousands of clients and a reserve for members", () => {
    expect(API_CONNECTIONS_MAX).toBe(10_000);
    expect(API_MEMBER_CONNECTIONS_RESERVED).toBe(64);
    expect(() => new ApiServer({ kv: {}, registry: {}, cluster: {} }, [], { connectionsMax: 0 })).toThrow(/connectionsMax must be a positive integer/);
    expect(() => new ApiServer({ kv: {}, registry: {}, cluster: {} }, [], { memberReserve: -1 })).toThrow(/memberReserve must be a non-negative integer/);
  });

  it("past the bound a connection is closed at once and counted; one that ends makes room", async () => {
    const held = await Promise.all(Array.from({ length: BOUND }, () => open(port)));
    try {
      // The bound's connections stay open.
      expect(await closedWithin(held[0] as Socket, 300)).toBe(false);
      const extra = await open(port);
      expect(await closedWithin(extra, WAIT_MS)).toBe(true);
      expect(refused).toBe(1);

      const client = new RaftmeshClient([`127.0.0.1:${port}`], { deadlineMs: 2_000 });
      try {
        const err = await client.status().then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(RaftmeshError);
        expect((err as RaftmeshError).code).toBe(grpcStatus.UNAVAILABLE);
        expect(refused).toBeGreaterThanOrEqual(2);

        (held.pop() as Socket).destroy();
        // The server counts the ended socket on its close; the client's next try then gets in.
        const deadline = Date.now() + WAIT_MS;
        let answered = false;
        while (!answered && Date.now() < deadline) {
          answered = await client.status().then(() => true, () => false);
          if (!answered) await new Promise((r) => setTimeout(r, 50));
        }
        expect(answered, "no room after a connection ended").toBe(true);
      } finally {
        client.close();
      }
    } finally {
      for (const s of held) s.destroy();
    }
  });
});

describe("client API: connections of members past the bound", () => {
  const RESERVE = 2;
  let server: ApiServer;
  let port = 0;
  let member = false;
  let refused = 0;
  beforeAll(async () => {
    server = new ApiServer({ kv: {}, registry: {}, cluster: { Status: answer } }, [], {
      connectionsMax: BOUND,
      memberReserve: RESERVE,
      isMember: (remote) => member && remote.startsWith("127.0.0.1:"),
      onRefused: () => {
        refused++;
      },
    });
    port = await server.listen("127.0.0.1:0");
  });
  afterAll(async () => {
    await server?.close();
  });

  it("a member's connection is taken past the bound, up to the reserve; then no one's is", async () => {
    const held = await Promise.all(Array.from({ length: BOUND }, () => open(port)));
    try {
      member = true;
      for (let i = 0; i < RESERVE; i++) held.push(await open(port));
      for (const s of held) expect(await closedWithin(s, 100)).toBe(false);
      expect(refused).toBe(0);
      // Members, they too, stop at the hard bound (connectionsMax + memberReserve).
      const past = await open(port);
      expect(await closedWithin(past, WAIT_MS)).toBe(true);
      expect(refused).toBe(1);
    } finally {
      for (const s of held) s.destroy();
    }
  });
});
