/**
 * h2c through the endpoint: retries under the HTTP/1.1 proxy's rules and the circuit breaker's
 * maxConnections / maxPendingRequests, against real loopback HTTP/2 and gRPC backends.
 */
import * as grpc from "@grpc/grpc-js";
import { connect as h2connect, constants, createServer as createH2Server, type Http2Server, type ServerHttp2Stream } from "node:http2";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RETRY_BODY_BYTES_MAX } from "../../../src/balancer/limits.js";
import { count, endpointOf, startEndpoint, type TestEndpoint, table } from "./harness.js";

/** Behaviour of an HTTP/2 backend for each stream. */
type Behaviour = "ok" | "refuse" | "refuse-late" | "reset" | "5xx" | "hang" | "partial";

interface H2Backend {
  readonly id: string;
  readonly port: number;
  readonly server: Http2Server;
  /** hits counts streams; bodies records the body length each "ok" stream received. */
  hits: number;
  readonly bodies: number[];
}

async function startH2(id: string, behaviour: Behaviour): Promise<H2Backend> {
  const server = createH2Server();
  const b: H2Backend = { id, port: 0, server, hits: 0, bodies: [] };
  server.on("stream", (stream: ServerHttp2Stream) => {
    b.hits++;
    stream.on("error", () => {});
    if (behaviour === "refuse") return void stream.close(constants.NGHTTP2_REFUSED_STREAM);
    if (behaviour === "reset") return void stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    if (behaviour === "hang") return;
    let n = 0;
    stream.on("data", (c: Buffer) => (n += c.length));
    stream.once("end", () => {
      // refuse-late refuses once the whole body arrived: every byte of it was forwarded.
      if (behaviour === "refuse-late") return void stream.close(constants.NGHTTP2_REFUSED_STREAM);
      if (behaviour === "5xx") {
        stream.respond({ ":status": 503 });
        return void stream.end("down");
      }
      if (behaviour === "partial") {
        stream.respond({ ":status": 200 });
        stream.write("half");
        // destroy(err) resets the stream (close() would end its data cleanly first).
        setTimeout(() => stream.destroy(new Error("cut")), 20);
        return;
      }
      b.bodies.push(n);
      stream.respond({ ":status": 200 });
      stream.end(id);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  (b as { port: number }).port = typeof a === "object" && a ? a.port : 0;
  return b;
}

/** startSilent accepts TCP connections and never answers: an h2c session to it is never ready. */
async function startSilent(): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  return { server, port: typeof a === "object" && a ? a.port : 0, sockets };
}

/** freePort is a loopback port nothing listens on (bound, then closed). */
async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const a = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return typeof a === "object" && a ? a.port : 0;
}

interface H2Reply {
  readonly status: number;
  readonly body: string;
  /** reset: the stream was reset after (or instead of) the answer's start. */
  readonly reset: boolean;
  readonly headers: Record<string, unknown>;
}

/** Endpoint-bound HTTP/2 client. */
let client: ReturnType<typeof h2connect>;

/** h2 sends one request with :authority = service and reads the answer (bounded: 5 s). */
function h2(service: string, method: string, body?: Buffer | string): Promise<H2Reply> {
  return new Promise((resolve) => {
    const req = client.request({ ":method": method, ":path": "/x", ":authority": service });
    let status = 0;
    let headers: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    let finished = false;
    const end = (reset: boolean) => {
      if (finished) return;
      finished = true;
      resolve({ status, body: Buffer.concat(chunks).toString(), reset, headers });
    };
    req.on("response", (h) => {
      status = Number(h[":status"]);
      headers = h;
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    // Node ends a stream's data on RST_STREAM as well: only 'close' and rstCode tell a reset.
    req.on("error", () => {});
    req.on("close", () => end(req.rstCode !== constants.NGHTTP2_NO_ERROR));
    setTimeout(() => {
      req.close(constants.NGHTTP2_CANCEL);
      end(true);
    }, 5_000).unref();
    req.end(body);
  });
}

/** seq makes n requests one after another. */
async function seq(n: number, f: () => Promise<H2Reply>): Promise<H2Reply[]> {
  const out: H2Reply[] = [];
  for (let i = 0; i < n; i++) out.push(await f());
  return out;
}

/** NO_EJECT keeps round-robin strict over failing backends in these tests. */
const NO_EJECT = { outlierConsecutiveFailures: 0 };

describe("balancer: h2c retries and circuit limits", () => {
  const b: Record<string, H2Backend> = {};
  let silent: Awaited<ReturnType<typeof startSilent>>;
  let grpcServer: grpc.Server;
  let grpcPort: number;
  let dead: number;
  let ep: TestEndpoint;

  beforeAll(async () => {
    for (const [id, behaviour] of [
      ["ok1", "ok"],
      ["ok2", "ok"],
      ["ok3", "ok"],
      ["ok4", "ok"],
      ["ok5", "ok"],
      ["refuse", "refuse"],
      ["refuseLate", "refuse-late"],
      ["reset", "reset"],
      ["five", "5xx"],
      ["five2", "5xx"],
      ["hang", "hang"],
      ["partial", "partial"],
      ["down1", "reset"],
      ["down2", "reset"],
      ["down3", "reset"],
    ] as const)
      b[id] = await startH2(id, behaviour);
    silent = await startSilent();
    dead = await freePort();
    grpcServer = new grpc.Server();
    grpcServer.addService(WHO, { who: (_c: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from("g1")) });
    grpcPort = await new Promise<number>((ok, no) => grpcServer.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? no(e) : ok(p))));
    const ep_ = (id: string) => endpointOf({ id, port: b[id]!.port });
    ep = await startEndpoint([
      table("conn", [endpointOf({ id: "dead", port: dead }), ep_("ok1")], { retries: 1, ...NO_EJECT }),
      table("refused", [ep_("refuse"), ep_("ok1")], { retries: 1, ...NO_EJECT }),
      table("refused-late", [ep_("refuseLate"), ep_("ok1")], { retries: 1, ...NO_EJECT }),
      table("reset", [ep_("reset"), ep_("ok1")], { retries: 1, ...NO_EJECT }),
      table("five", [ep_("five"), ep_("ok1")], { retries: 1, ...NO_EJECT }),
      table("five-chain", [ep_("five"), ep_("five2"), ep_("ok1")], { retries: 2, ...NO_EJECT }),
      table("five-ok", [ep_("five"), ep_("ok1")], { retries: 1, retryOn5xx: true, ...NO_EJECT }),
      table("partial", [ep_("partial"), ep_("ok1")], { retries: 1, ...NO_EJECT }),
      table("slow", [ep_("hang"), ep_("ok1")], { retries: 1, perTryTimeoutMs: 200, ...NO_EJECT }),
      table("outage", [ep_("down1"), ep_("down2"), ep_("down3")], { retries: 3, retryBudgetPercent: 20, ...NO_EJECT }),
      table("conns", [ep_("ok2"), ep_("ok3")], { maxConnections: 1, ...NO_EJECT }),
      table("pend", [endpointOf({ id: "silent", port: silent.port })], { retries: 0, maxPendingRequests: 1, perTryTimeoutMs: 300, ...NO_EJECT }),
      table("grpc", [endpointOf({ id: "dead", port: dead }), ep_("refuse"), endpointOf({ id: "g1", port: grpcPort })], { retries: 2, ...NO_EJECT }),
    ]);
    client = h2connect(`http://127.0.0.1:${ep.port}`);
    client.on("error", () => {});
  });
  afterAll(async () => {
    client.close();
    await ep.stop();
    for (const x of Object.values(b)) x.server.close();
    for (const s of silent.sockets) s.destroy();
    silent.server.close();
    grpcServer.forceShutdown();
  });

  it("balancer: h2c: a connect failure and a refused stream are retried on another instance, even for POST, with the body", async () => {
    const conn = await seq(4, () => h2("conn", "POST", "abc"));
    expect(conn.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const before = b.ok1!.bodies.length;
    const refusedHits = b.refuse!.hits;
    const refused = await seq(4, () => h2("refused", "POST", "abcd"));
    expect(refused.map((r) => `${r.status} ${r.body}`)).toEqual(Array(4).fill("200 ok1"));
    expect(b.refuse!.hits - refusedHits).toBeGreaterThanOrEqual(2);
    expect(b.ok1!.bodies.slice(before)).toEqual([4, 4, 4, 4]);
  });

  it("balancer: h2c: a body of RETRY_BODY_BYTES_MAX is kept for the retry; one byte more is not, and that try is not retried", async () => {
    const atLimit = await seq(2, () => h2("refused-late", "POST", Buffer.alloc(RETRY_BODY_BYTES_MAX, 1)));
    expect(atLimit.map((r) => r.status)).toEqual([200, 200]);
    expect(b.ok1!.bodies.slice(-2)).toEqual([RETRY_BODY_BYTES_MAX, RETRY_BODY_BYTES_MAX]);
    const lateHits = b.refuseLate!.hits;
    const over = await seq(2, () => h2("refused-late", "POST", Buffer.alloc(RETRY_BODY_BYTES_MAX + 1, 1)));
    const refusedOver = b.refuseLate!.hits - lateHits;
    expect(refusedOver).toBeGreaterThanOrEqual(1);
    expect(over.filter((r) => r.status === 502).length).toBe(refusedOver);
  });

  it("balancer: h2c: a reset before response headers is retried for GET, not for POST", async () => {
    const gets = await seq(4, () => h2("reset", "GET"));
    expect(gets.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const posts = await seq(4, () => h2("reset", "POST", "x"));
    expect(count(posts.map((r) => String(r.status)))).toEqual({ 200: 2, 502: 2 });
    expect(posts.find((r) => r.status === 502)?.headers["x-raftmesh-error"]).toBe("upstream-failed");
  });

  it("balancer: h2c: a 5xx is retried for GET, passed through for POST, retried for POST when the service says so", async () => {
    expect((await seq(4, () => h2("five", "GET"))).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(count((await seq(4, () => h2("five", "POST", "x"))).map((r) => String(r.status)))).toEqual({ 200: 2, 503: 2 });
    expect((await seq(4, () => h2("five-ok", "POST", "x"))).map((r) => r.status)).toEqual([200, 200, 200, 200]);
  });

  it("balancer: h2c: a retry that fails again and is retried leaves nothing held in the retry budget", async () => {
    // Each request may need two retries (both 5xx instances first); a reservation kept by mistake
    // per such chain would use up the budget's floor of 3 within a few requests and turn the rest into 503s.
    const r = await seq(12, () => h2("five-chain", "GET"));
    expect(r.map((x) => x.status)).toEqual(Array(12).fill(200));
  });

  it("balancer: h2c: never retried once the answer started; a hung instance is left after the per-try timeout", async () => {
    const okHits = b.ok1!.hits;
    const partial = await seq(2, () => h2("partial", "GET"));
    const cut = partial.filter((r) => r.status === 200 && r.reset);
    expect(cut.length).toBe(1);
    expect(cut[0]!.body).toBe("half");
    expect(b.partial!.hits).toBe(1);
    expect(b.ok1!.hits - okHits).toBe(1); // only the other request; the cut one was not tried again
    const t0 = Date.now();
    const slow = await seq(2, () => h2("slow", "GET"));
    expect(slow.map((r) => `${r.status} ${r.body}`)).toEqual(["200 ok1", "200 ok1"]);
    expect(b.hang!.hits).toBeGreaterThanOrEqual(1);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it("balancer: h2c: the retry budget holds under a full outage (tries stay near one per request, not 1 + retries)", async () => {
    const REQUESTS = 60;
    const replies = await Promise.all(Array.from({ length: REQUESTS }, () => h2("outage", "GET")));
    expect(count(replies.map((r) => String(r.status)))).toEqual({ 502: REQUESTS });
    const tries = b.down1!.hits + b.down2!.hits + b.down3!.hits;
    // Without a budget: 240 tries. With 20 % of 60 in flight (at least 3): a few retries at a time.
    expect(tries).toBeGreaterThanOrEqual(REQUESTS);
    expect(tries).toBeLessThanOrEqual(REQUESTS * 1.5);
  });

  it("balancer: h2c: at maxConnections a request needing a new upstream session gets 503 naming the limit; one on an open session goes", async () => {
    const r = await seq(3, () => h2("conns", "GET"));
    expect(r.map((x) => x.status)).toEqual([200, 503, 200]);
    expect(JSON.parse(r[1]!.body)).toMatchObject({ error: "circuit-open", service: "conns", limit: "connections" });
    expect(r[0]!.body).toBe(r[2]!.body);
  });

  it("balancer: h2c: maxPendingRequests bounds the tries waiting for a session to be ready; the waiting one times out, freeing its place", async () => {
    const [first, second] = await Promise.all([h2("pend", "GET"), new Promise<H2Reply>((r) => setTimeout(() => r(h2("pend", "GET")), 50))]);
    expect(second.status).toBe(503);
    expect(JSON.parse(second.body)).toMatchObject({ error: "circuit-open", limit: "pending" });
    expect(first.status).toBe(504);
    // Its place is free again: the next one waits (and times out) rather than being refused.
    expect((await h2("pend", "GET")).status).toBe(504);
  });

  it("balancer: h2c: a grpc-js client's calls all succeed past a dead instance and one that refuses streams", async () => {
    const Ctor = grpc.makeGenericClientConstructor(WHO, "Who");
    const g = new Ctor(`127.0.0.1:${ep.port}`, grpc.credentials.createInsecure(), { "grpc.default_authority": "grpc" }) as unknown as grpc.Client & {
      who: (req: Buffer, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void;
    };
    const results: string[] = [];
    for (let i = 0; i < 9; i++) results.push(await new Promise<string>((ok) => g.who(Buffer.from("hi"), (err, res) => ok(err ? `error ${err.code}` : String(res)))));
    g.close();
    expect(results).toEqual(Array(9).fill("g1"));
  });
});

/** WHO is a one-method gRPC service over raw bytes. */
const identity = (x: Buffer) => x;
const WHO = {
  who: { path: "/demo.Who/Who", requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
} satisfies grpc.ServiceDefinition;
