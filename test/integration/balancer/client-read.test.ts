import { connect, createServer, type Server, type Socket } from "node:net";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { ClientReader, isShared } from "../../../src/balancer/client-read.js";
import { noise } from "./harness.js";

/** serve starts a server that pauses its connections on accept (as the HTTP listener does) and gives each to onSocket. */
async function serve(onSocket: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ pauseOnConnect: true }, onSocket);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  return { server, port: typeof a === "object" && a ? a.port : 0 };
}

/** sendInPieces writes payload in 16 KiB pieces a turn of the event loop apart (several reads at the server), then ends. */
function sendInPieces(port: number, payload: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    let at = 0;
    const step = () => {
      if (at >= payload.length) return void s.end(resolve);
      s.write(payload.subarray(at, (at += 16 * 1024)));
      setImmediate(step);
    };
    s.on("connect", step);
  });
}

describe("balancer: client connections read into the shared buffer (client-read.ts)", () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  it("client read: chunks are views of the shared buffer (on this Node); copies kept of them hold every byte", async () => {
    const payload = noise(512 * 1024, 3);
    const kept: Buffer[] = [];
    let views = 0;
    const done = new Promise<void>((resolve) => {
      void serve((s) => {
        new ClientReader(s, (c) => {
          if (isShared(c)) views++;
          kept.push(Buffer.from(c));
        });
        s.on("end", () => resolve());
      }).then((x) => {
        server = x.server;
        void sendInPieces(x.port, payload);
      });
    });
    await done;
    expect(views).toBe(kept.length);
    expect(kept.length).toBeGreaterThan(1);
    expect(Buffer.concat(kept).equals(payload)).toBe(true);
  });

  it("client read: after release() a stream reader that holds chunks (a write not yet done) gets copies: every byte intact", async () => {
    const payload = noise(512 * 1024, 4);
    const held: Buffer[] = [];
    // A writable that keeps each chunk it is given and completes the write a turn later, as a
    // socket whose write did not complete at once keeps the caller's bytes.
    const slow = new Writable({
      highWaterMark: 1 << 30,
      write(chunk: Buffer, _enc, cb) {
        held.push(chunk);
        setImmediate(cb);
      },
    });
    const finished = new Promise<void>((resolve) => slow.on("finish", () => resolve()));
    const x = await serve((s) => {
      const reader = new ClientReader(s, () => {});
      reader.release();
      s.pipe(slow);
    });
    server = x.server;
    await sendInPieces(x.port, payload);
    await finished;
    expect(held.length).toBeGreaterThan(1);
    expect(held.some(isShared)).toBe(false);
    expect(Buffer.concat(held).equals(payload)).toBe(true);
  });

  it("client read: pause() stops the reads and resume() starts them again", async () => {
    const payload = noise(256 * 1024, 5);
    const got: Buffer[] = [];
    let pausedReads = 0;
    let paused = false;
    const done = new Promise<void>((resolve) => {
      void serve((s) => {
        new ClientReader(s, (c) => {
          if (paused) pausedReads++;
          got.push(Buffer.from(c));
          if (got.length === 1) {
            paused = true;
            s.pause();
            setTimeout(() => {
              paused = false;
              s.resume();
            }, 100);
          }
        });
        s.on("end", () => resolve());
      }).then((x) => {
        server = x.server;
        void sendInPieces(x.port, payload);
      });
    });
    await done;
    expect(pausedReads).toBe(0);
    expect(Buffer.concat(got).equals(payload)).toBe(true);
  });
});
