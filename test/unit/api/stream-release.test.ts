/**
 * A finished call's HTTP/2 stream lets go of its listeners (src/common/stream-release.ts): what
 * they reach (grpc-js's call, the handler's closures, the request) must not live on with the
 * stream. Real sockets on loopback: a plain HTTP/2 server, and the client API server answering a
 * real client.
 */
import { connect, createServer, type Http2Server, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { ApiServer } from "../../../src/api/server.js";
import { RaftmeshClient } from "../../../src/client/index.js";
import { releaseOnClose } from "../../../src/common/stream-release.js";
import { listenersAfterClose, type WatchedStream, watchClose } from "../../fixtures/http2-streams.js";

describe("a closed HTTP/2 stream releases its listeners", () => {
  let plain: Http2Server | undefined;
  let api: ApiServer | undefined;
  afterEach(async () => {
    await new Promise((r) => (plain ? plain.close(r) : r(undefined)));
    await api?.close();
    plain = undefined;
    api = undefined;
  });

  it("releaseOnClose: only a no-op error listener is left, and a late error is not thrown", async () => {
    plain = createServer();
    const streams: WatchedStream<ServerHttp2Stream>[] = [];
    plain.on("stream", (stream) => {
      streams.push(watchClose(stream));
      releaseOnClose(stream);
      stream.on("data", () => undefined);
      stream.on("end", () => {
        stream.respond({ ":status": 200 });
        stream.end("ok");
      });
    });
    await new Promise<void>((r) => plain?.listen(0, "127.0.0.1", r));
    const session = connect(`http://127.0.0.1:${(plain.address() as AddressInfo).port}`);
    try {
      const req = session.request({ ":method": "POST", ":path": "/" });
      req.end("hi");
      req.resume();
      await new Promise((r) => req.on("close", r));
      expect(streams).toHaveLength(1);
      const first = streams[0] as WatchedStream<ServerHttp2Stream>;
      expect(await listenersAfterClose(first)).toEqual(["error"]);
      const stream = first.stream;
      // Emitting 'error' on an emitter without a listener throws; the no-op one takes it.
      expect(() => stream.emit("error", new Error("late"))).not.toThrow();
    } finally {
      session.close();
    }
  });

  it("the client API server releases every call's stream once it closed", async () => {
    const answer = (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => callback(null, {});
    api = new ApiServer({ kv: {}, registry: {}, cluster: { Status: answer } }, []);
    const port = await api.listen("127.0.0.1:0");
    // The test watches the streams where the server's own listener does: grpc-js's http2 servers.
    const listeners = (api as unknown as { server: { http2Servers: Map<Http2Server, unknown> } }).server.http2Servers;
    const streams: WatchedStream<ServerHttp2Stream>[] = [];
    for (const h of listeners.keys()) h.on("stream", (stream: ServerHttp2Stream) => streams.push(watchClose(stream)));
    const client = new RaftmeshClient([`127.0.0.1:${port}`], { deadlineMs: 2_000 });
    try {
      await client.status();
      await client.status();
      expect(streams).toHaveLength(2);
      for (const s of streams) expect(await listenersAfterClose(s)).toEqual(["error"]);
    } finally {
      client.close();
    }
  });
});
