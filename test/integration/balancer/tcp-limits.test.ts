/**
 * TCP upstream connections count against the service's circuit breaker (maxConnections), across
 * the pool's workers: at the limit a new client is closed at once, and a closed connection frees
 * its place. And an instance that closes its side cleanly while a slow client still has bytes
 * to read: the client gets all of them, then the end.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkerPool } from "../../../src/balancer/workers.js";
import { endpointOf, table } from "./harness.js";

/** LIMIT is the test service's maxConnections. */
const LIMIT = 2;

/** startEcho starts a TCP server that greets with its name and echoes. */
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

/** Opened is a proxied connection that got its instance's greeting, or one the endpoint closed. */
type Opened = { readonly ok: true; readonly s: Socket } | { readonly ok: false; readonly afterMs: number; readonly got: string };

/** open connects and waits for the greeting or the close (bounded: 3 s). */
function open(port: number): Promise<Opened> {
  const at = Date.now();
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    let got = "";
    s.on("error", () => {});
    s.once("data", (c) => {
      got += c;
      resolve({ ok: true, s });
    });
    s.once("close", () => resolve({ ok: false, afterMs: Date.now() - at, got }));
    setTimeout(() => {
      s.destroy();
      resolve({ ok: false, afterMs: Number.POSITIVE_INFINITY, got });
    }, 3_000).unref();
  });
}

describe("balancer: TCP connections and the circuit breaker", () => {
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let pool: WorkerPool;
  let bye: Server;
  /** BYE_BYTES: a last answer larger than a socket's buffers, so some of it is still queued when the instance closes. */
  const BYE_BYTES = 4 << 20;

  beforeAll(async () => {
    echo = await startEcho("e1");
    bye = createServer((s) => {
      s.on("error", () => {});
      s.end(Buffer.alloc(BYE_BYTES, 9));
    });
    await new Promise<void>((r) => bye.listen(0, "127.0.0.1", () => r()));
    const byePort = (bye.address() as { port: number }).port;
    const tables = [table("capped", [endpointOf({ id: "e1", port: echo.port })], { maxConnections: LIMIT }), table("bye", [endpointOf({ id: "b1", port: byePort })])];
    // Two workers, one TCP listener of the service each: the limit must hold for the node.
    pool = await WorkerPool.start({
      workers: 2,
      listeners: [
        { kind: "tcp", name: "a", host: "127.0.0.1", port: 0, service: "capped" },
        { kind: "tcp", name: "b", host: "127.0.0.1", port: 0, service: "capped" },
        { kind: "tcp", name: "bye", host: "127.0.0.1", port: 0, service: "bye" },
      ],
      localZone: "",
      nodeId: "t1",
      logger: pino({ level: "silent" }),
      current: () => ({ t: "tables", full: true, tables, removed: [] }),
    });
  });
  afterAll(async () => {
    await pool.stop();
    for (const s of echo.sockets) s.destroy();
    echo.server.close();
    bye.close();
  });

  it("balancer: an instance that ends its side cleanly: the client gets every byte, then the end", async () => {
    const got = await new Promise<{ bytes: number; ended: boolean }>((resolve) => {
      const s = connect(pool.ports.get("bye")!, "127.0.0.1");
      let bytes = 0;
      let ended = false;
      s.on("error", () => {});
      // A slow reader: the endpoint's writes to it queue while the instance has already closed.
      s.pause();
      setTimeout(() => s.resume(), 300);
      s.on("data", (c: Buffer) => (bytes += c.length));
      s.on("end", () => (ended = true));
      s.on("close", () => resolve({ bytes, ended }));
      setTimeout(() => s.destroy(), 5_000).unref();
    });
    expect(got).toEqual({ bytes: BYE_BYTES, ended: true });
  });

  it("balancer: at maxConnections a TCP client is closed at once, whichever worker it reaches; a closed connection frees its place", async () => {
    const a = pool.ports.get("a")!;
    const b = pool.ports.get("b")!;
    const first = await open(a);
    const second = await open(b);
    expect(first.ok && second.ok).toBe(true);
    expect(echo.sockets.size).toBe(LIMIT);
    for (const port of [a, b]) {
      const refused = await open(port);
      expect(refused.ok).toBe(false);
      if (!refused.ok) {
        expect(refused.got).toBe("");
        expect(refused.afterMs).toBeLessThan(500);
      }
    }
    expect(echo.sockets.size).toBe(LIMIT);
    // One closes: its place is free again (released when the upstream socket closes).
    if (first.ok) first.s.destroy();
    const deadline = Date.now() + 2_000;
    let again = await open(a);
    while (!again.ok && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      again = await open(a);
    }
    expect(again.ok).toBe(true);
    if (again.ok) {
      again.s.write("ping");
      const echoed = await new Promise<string>((r) => again.s.once("data", (c) => r(String(c))));
      expect(echoed).toBe("ping");
      again.s.destroy();
    }
    if (second.ok) second.s.destroy();
  });
});
