import { createServer, type Server, type Socket, connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HEADER_BYTES_MAX } from "../../../src/balancer/limits.js";
import { type Backend, call, endpointOf, startBackend, startEndpoint, type TestEndpoint, table } from "./harness.js";

/** HEADERS_TIMEOUT_TEST_MS shrinks HEADERS_TIMEOUT_MS so the slowloris test takes a second. */
const HEADERS_TIMEOUT_TEST_MS = 1_000;

/** raw sends bytes on a fresh connection and reads until the server closes (or timeoutMs). */
function raw(port: number, data: string | Buffer, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    let out = "";
    s.on("data", (c) => (out += c));
    s.on("error", () => {});
    s.on("close", () => resolve(out));
    s.setTimeout(timeoutMs, () => s.destroy());
    s.write(data);
  });
}

/** startEcho starts a TCP server that echoes, prefixed by its name. */
async function startEcho(name: string): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    s.write(`${name}:`);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  return { server, port: typeof a === "object" && a ? a.port : 0, sockets };
}

describe("balancer: hostile input, upgrades and TCP upstreams", () => {
  let backends: Backend[];
  let echoes: Awaited<ReturnType<typeof startEcho>>[];
  let ep: TestEndpoint;

  beforeAll(async () => {
    backends = await Promise.all(["a", "b"].map((id) => startBackend(id)));
    backends[0]!.server.on("upgrade", (_req, socket: Socket) => {
      socket.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n");
      socket.pipe(socket);
    });
    echoes = await Promise.all(["e1", "e2"].map((n) => startEcho(n)));
    const tcpEps = echoes.map((e, i) => endpointOf({ id: `e${i + 1}`, port: e.port }));
    ep = await startEndpoint(
      [
        table("hello", backends.map((b) => endpointOf(b))),
        table("ws", [endpointOf(backends[0]!)]),
        table("db", tcpEps, { mode: "master-slave" }, { id: "e1", epoch: 3 }),
        table("echo", tcpEps),
      ],
      [{ service: "db" }, { service: "echo" }],
      { headersTimeoutMs: HEADERS_TIMEOUT_TEST_MS },
    );
  });
  afterAll(async () => {
    await ep.stop();
    await Promise.all(backends.map((b) => b.close()));
    for (const e of echoes) {
      for (const s of e.sockets) s.destroy();
      e.server.close();
    }
  });

  it("balancer: a head just under HEADER_BYTES_MAX goes through; over it gets 431", async () => {
    const fill = (n: number) => "x".repeat(n);
    const base = "GET /svc/hello/ HTTP/1.1\r\nhost: x\r\nx-fill: \r\nconnection: close\r\n\r\n".length;
    const ok = await raw(ep.port, `GET /svc/hello/ HTTP/1.1\r\nhost: x\r\nx-fill: ${fill(HEADER_BYTES_MAX - base - 64)}\r\nconnection: close\r\n\r\n`);
    expect(ok).toMatch(/^HTTP\/1\.1 200/);
    const big = await raw(ep.port, `GET /svc/hello/ HTTP/1.1\r\nhost: x\r\nx-fill: ${fill(HEADER_BYTES_MAX + 1)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431/);
    expect(big).toContain("headers-too-large");
  });

  it("balancer: a malformed request gets 400 with a JSON body", async () => {
    const r = await raw(ep.port, "GARBAGE\x01 / HTTP/9\r\n\r\n");
    expect(r).toMatch(/^HTTP\/1\.1 400/);
    expect(r).toContain("malformed-request");
    const noHost = await call(ep.port, "/", { headers: { host: "" } });
    expect(noHost.status).toBe(404);
  });

  it("balancer: slowloris: heads that trickle are cut after the head timeout, all of them", async () => {
    const started = Date.now();
    const conns = Array.from({ length: 50 }, () => {
      const s = connect(ep.port, "127.0.0.1");
      s.on("error", () => {});
      s.write("GET /svc/hello/ HTTP/1.1\r\nhost: x\r\n");
      const drip = setInterval(() => s.writable && s.write("x-a: b\r\n"), 200);
      return new Promise<{ ms: number; out: string }>((resolve) => {
        let out = "";
        s.on("data", (c) => (out += c));
        s.on("close", () => {
          clearInterval(drip);
          resolve({ ms: Date.now() - started, out });
        });
      });
    });
    const ends = await Promise.all(conns);
    for (const e of ends) {
      expect(e.ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_TEST_MS - 50);
      expect(e.ms).toBeLessThan(HEADERS_TIMEOUT_TEST_MS + 3_000);
    }
    expect(ends.some((e) => e.out.startsWith("HTTP/1.1 408"))).toBe(true);
  });

  it("balancer: an Upgrade request is tunnelled both ways", async () => {
    const out = await new Promise<string>((resolve) => {
      const s = connect(ep.port, "127.0.0.1");
      let buf = "";
      s.on("data", (c) => {
        buf += c;
        if (buf.includes("\r\n\r\n") && !buf.includes("ping")) s.write("ping");
        if (buf.endsWith("ping")) s.end();
      });
      s.on("close", () => resolve(buf));
      s.write("GET /svc/ws/chat HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n");
    });
    expect(out).toMatch(/^HTTP\/1\.1 101/);
    expect(out.endsWith("ping")).toBe(true);
  });

  it("balancer: a TCP upstream streams bytes both ways to the service's instances", async () => {
    const payload = Buffer.alloc(1 << 20, 7);
    const got = await new Promise<Buffer>((resolve) => {
      const s = connect(ep.tcpPort("echo"), "127.0.0.1");
      const chunks: Buffer[] = [];
      let n = 0;
      s.on("data", (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (n >= payload.length + 3) s.end();
      });
      s.on("close", () => resolve(Buffer.concat(chunks)));
      s.write(payload);
    });
    expect(got.subarray(0, 3).toString()).toMatch(/^e[12]:$/);
    expect(got.subarray(3).equals(payload)).toBe(true);
  });

  it("balancer: TCP connections to a master are cut at once when the master changes; new ones go to the new master", async () => {
    const port = ep.tcpPort("db");
    const s = connect(port, "127.0.0.1");
    const first = await new Promise<string>((r) => s.once("data", (c) => r(String(c))));
    expect(first).toBe("e1:");
    const closed = new Promise<number>((r) => s.on("close", () => r(Date.now())));
    s.on("error", () => {});
    const tcpEps = echoes.map((e, i) => endpointOf({ id: `e${i + 1}`, port: e.port }));
    const at = Date.now();
    await ep.set([table("db", tcpEps, { mode: "master-slave" }, { id: "e2", epoch: 5 }), table("echo", tcpEps)]);
    expect((await closed) - at).toBeLessThan(500);
    const s2 = connect(port, "127.0.0.1");
    const again = await new Promise<string>((r) => s2.once("data", (c) => r(String(c))));
    s2.destroy();
    expect(again).toBe("e2:");
  });
  it("balancer: TCP connections to an instance that turned critical are cut; to one removed while healthy they drain (active-active) or are cut (master-slave)", async () => {
    const eps = (over: Record<string, Partial<import("../../../src/balancer/types.js").Endpoint>>, drop: string[] = []) =>
      echoes.map((e, i) => endpointOf({ id: `e${i + 1}`, port: e.port }, over[`e${i + 1}`])).filter((e) => !drop.includes(e.id));
    const open = async (service: string) => {
      const s = connect(ep.tcpPort(service), "127.0.0.1");
      s.on("error", () => {});
      const hello = await new Promise<string>((r) => s.once("data", (c) => r(String(c))));
      // Bounded: a connection never cut resolves as Infinity after 5 s and fails the check.
      const closed = new Promise<number>((r) => {
        s.on("close", () => r(Date.now()));
        setTimeout(() => r(Number.POSITIVE_INFINITY), 5_000).unref();
      });
      return { s, id: hello.slice(0, 2), closed };
    };
    const alive = async (s: Socket) => {
      s.write("ping");
      return await new Promise<string>((r) => {
        s.once("data", (c) => r(String(c)));
        setTimeout(() => r("silent"), 1_000);
      });
    };
    const db = (over = {}, drop: string[] = []) => table("db", eps(over, drop), { mode: "master-slave" }, { id: "e2", epoch: 5 });
    // Active-active: removed while passing, the connection drains (still echoes).
    const a = await open("echo");
    await ep.set([db(), table("echo", eps({}, [a.id]))]);
    expect(await alive(a.s)).toBe("ping");
    // Back, then critical: cut at once.
    await ep.set([db(), table("echo", eps({}))]);
    let at = Date.now();
    await ep.set([db(), table("echo", eps({ [a.id]: { health: "critical" } }))]);
    expect((await a.closed) - at).toBeLessThan(500);
    // Master-slave: the master (e2) removed from the service is cut.
    await ep.set([db(), table("echo", eps({}))]);
    const m = await open("db");
    expect(m.id).toBe("e2");
    at = Date.now();
    await ep.set([db({}, ["e2"]), table("echo", eps({}))]);
    expect((await m.closed) - at).toBeLessThan(500);
    // And one that turned critical.
    await ep.set([db(), table("echo", eps({}))]);
    const m2 = await open("db");
    at = Date.now();
    await ep.set([db({ e2: { health: "critical" } }), table("echo", eps({}))]);
    expect((await m2.closed) - at).toBeLessThan(500);
  });
});
