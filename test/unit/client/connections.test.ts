/**
 * Each RaftmeshClient has its own connection to a node, shared by its services: a node bounds the
 * calls one connection runs at once (API_STREAMS_PER_CONNECTION_MAX, watches included), and a
 * second client is the way past that bound. grpc-js would otherwise share one connection between
 * all clients of a process. A real gRPC server on loopback records the peer of every call.
 */
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RaftmeshClient } from "../../../src/client/index.js";
import { clientApi } from "../../../src/common/proto.js";

const peers: string[] = [];
let server: Server;
let endpoint = "";

beforeAll(async () => {
  server = new Server();
  const answer = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
    peers.push(call.getPeer());
    callback(null, {});
  };
  server.addService(clientApi().Cluster.service, { Status: answer, Members: answer });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  endpoint = `127.0.0.1:${port}`;
});

afterAll(() => {
  server.forceShutdown();
});

describe("client: connections", () => {
  it("client: two clients to one node use two connections; one client's services share its one", async () => {
    const a = new RaftmeshClient([endpoint]);
    const b = new RaftmeshClient([endpoint]);
    try {
      peers.length = 0;
      await a.status();
      await a.members();
      await a.status();
      await b.status();
      expect(peers).toHaveLength(4);
      const [a1, a2, a3, b1] = peers;
      expect(new Set([a1, a2, a3]).size).toBe(1);
      expect(b1).not.toBe(a1);
    } finally {
      a.close();
      b.close();
    }
  });

  it("client: 'shared' clients ride one connection per node, which outlives the first to close", async () => {
    const a = new RaftmeshClient([endpoint], { connection: "shared" });
    const b = new RaftmeshClient([endpoint], { connection: "shared" });
    const own = new RaftmeshClient([endpoint]);
    try {
      peers.length = 0;
      await a.status();
      await b.status();
      await own.status();
      a.close();
      await b.members();
      expect(peers).toHaveLength(4);
      const [a1, b1, own1, b2] = peers;
      expect(b1).toBe(a1);
      expect(b2).toBe(a1);
      expect(own1).not.toBe(a1);
      expect(a.clientId).not.toBe(b.clientId);
    } finally {
      a.close();
      b.close();
      own.close();
    }
  });

  it("client: a connection other than 'own' or 'shared', or 'shared' with TLS, is refused", () => {
    expect(() => new RaftmeshClient([endpoint], { connection: "pooled" as "own" })).toThrow(/connection must be "own" or "shared"/);
    expect(() => new RaftmeshClient([endpoint], { connection: "shared", tls: { ca: "/nonexistent/ca.pem" } })).toThrow(/works without TLS only/);
  });

  it("client: a closed client's connection goes, and a new client opens another", async () => {
    const a = new RaftmeshClient([endpoint]);
    peers.length = 0;
    await a.status();
    a.close();
    const c = new RaftmeshClient([endpoint]);
    try {
      await c.status();
      expect(peers[1]).not.toBe(peers[0]);
    } finally {
      c.close();
    }
  });
});
