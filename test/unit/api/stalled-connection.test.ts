/**
 * A connection that stops inside an HTTP/2 frame (its header declares 16 MiB, then nothing) is
 * closed by the client API server's keepalive pings instead of holding a descriptor for ever (the
 * HTTP/2 frame fuzz found it held open); a live grpc-js client, which answers pings by itself, is
 * not cut. In-process: a real grpc-js server with short limits and raw sockets.
 */
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kvService, type KvServiceDeps } from "../../../src/api/kv-service.js";
import { registryService, type RegistryServiceDeps } from "../../../src/api/registry-service.js";
import { ApiServer } from "../../../src/api/server.js";
import { encode, RawClient, statusName } from "../../integration/harness/raw-grpc.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/** An empty SETTINGS frame: length 0, type 4, no flags, stream 0. */
const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
/** A DATA frame header on stream 1 declaring 0xffffff bytes, of which only a few follow. */
const STALLED_FRAME = Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1]), Buffer.alloc(100, 0x61)]);
/** Short limits so the test sees the close; the node's are API_KEEPALIVE_TIME_MS and _TIMEOUT_MS. */
const KEEPALIVE_MS = 300;
const KEEPALIVE_TIMEOUT_MS = 300;

/** closedWithin resolves with the ms until socket closed, or undefined if it is still open after ms. */
function closedWithin(socket: Socket, ms: number): Promise<number | undefined> {
  const start = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Date.now() - start);
    });
  });
}

describe("client API: stalled connections", () => {
  let server: ApiServer;
  let port: number;
  beforeAll(async () => {
    server = new ApiServer({ kv: kvService({} as KvServiceDeps), registry: registryService({} as RegistryServiceDeps), cluster: {} }, [], {
      keepaliveMs: KEEPALIVE_MS,
      keepaliveTimeoutMs: KEEPALIVE_TIMEOUT_MS,
    });
    port = await server.listen("127.0.0.1:0");
  });
  afterAll(async () => {
    await server?.close();
  });

  it("a peer stalled inside a frame is closed after an unanswered ping; a silent peer after the preface too", async () => {
    for (const tail of [STALLED_FRAME, Buffer.alloc(0)]) {
      const socket = connect(port, "127.0.0.1");
      socket.on("error", () => undefined);
      socket.on("data", () => undefined);
      await new Promise((r) => socket.once("connect", r));
      socket.write(Buffer.concat([PREFACE, SETTINGS, tail]));
      const ms = await closedWithin(socket, 10 * (KEEPALIVE_MS + KEEPALIVE_TIMEOUT_MS));
      socket.destroy();
      expect(ms, "the stalled connection was still open").toBeDefined();
    }
  });

  it("a live client that stays connected past several ping rounds keeps its channel and is answered", async () => {
    const raw = new RawClient(`127.0.0.1:${port}`);
    try {
      const first = await raw.unary("KV", "Get", encode("KV", "Get", { key: "" }), 3_000);
      expect(statusName(first.code)).toBe("INVALID_ARGUMENT");
      await new Promise((r) => setTimeout(r, 4 * (KEEPALIVE_MS + KEEPALIVE_TIMEOUT_MS)));
      const later = await raw.unary("KV", "Get", encode("KV", "Get", { key: "" }), 3_000);
      expect(later.details).toBe("key: must not be empty");
    } finally {
      raw.close();
    }
  });
});
