import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { count, endpointOf, startEndpoint, type TestEndpoint, table } from "./harness.js";

/** WHO is a one-method gRPC service over raw bytes: the answer is the backend's id. */
const identity = (b: Buffer) => b;
const WHO = {
  who: { path: "/demo.Who/Who", requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
} satisfies grpc.ServiceDefinition;

async function startGrpcBackend(id: string): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(WHO, {
    who: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      if (call.request.toString() === "fail") cb({ code: grpc.status.FAILED_PRECONDITION, details: `refused by ${id}` });
      else cb(null, Buffer.from(id));
    },
  });
  const port = await new Promise<number>((ok, fail) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? fail(e) : ok(p))));
  return { server, port };
}

describe("balancer: h2c (gRPC) through the endpoint", () => {
  let backends: { server: grpc.Server; port: number }[];
  let ep: TestEndpoint;
  let client: grpc.Client & { who: (req: Buffer, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void };

  beforeAll(async () => {
    backends = await Promise.all(["g1", "g2", "g3"].map((id) => startGrpcBackend(id)));
    ep = await startEndpoint([table("who", backends.map((b, i) => endpointOf({ id: `g${i + 1}`, port: b.port })))]);
    const Ctor = grpc.makeGenericClientConstructor(WHO, "Who");
    client = new Ctor(`127.0.0.1:${ep.port}`, grpc.credentials.createInsecure(), { "grpc.default_authority": "who" }) as unknown as typeof client;
  });
  afterAll(async () => {
    client.close();
    await ep.stop();
    for (const b of backends) b.server.forceShutdown();
  });

  const call = (req: string) =>
    new Promise<{ err: grpc.ServiceError | null; res?: string }>((ok) => client.who(Buffer.from(req), (err, res) => ok({ err, res: res?.toString() })));

  it("balancer: one grpc-js channel's calls spread over the three backends (per request, not per connection)", async () => {
    const seen: string[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await call("hi");
      expect(r.err).toBeNull();
      seen.push(r.res!);
    }
    expect(count(seen)).toEqual({ g1: 10, g2: 10, g3: 10 });
  });

  it("balancer: a gRPC error's status and details (trailers) pass through", async () => {
    const r = await call("fail");
    expect(r.err?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(r.err?.details).toMatch(/^refused by g[123]$/);
  });

  it("balancer: HTTP/1.1 still works on the same port", async () => {
    const res = await fetch(`http://127.0.0.1:${ep.port}/svc/nope/`);
    expect(res.status).toBe(404);
  });
});
