/**
 * The client keeps the seqs of its unanswered sessioned writes within the server's session
 * window, so a slow write's retry is never refused as stale while newer writes complete.
 */
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { clientApi } from "../../../src/common/proto.js";
import { RaftmeshClient } from "../../../src/client/index.js";
import { SESSION_WINDOW } from "../../../src/common/limits.js";

/** WRITES is enough writes to push far past one window while the first is held. */
const WRITES = 3 * SESSION_WINDOW;

describe("client: session window", () => {
  let server: Server | undefined;
  let client: RaftmeshClient | undefined;
  afterEach(() => {
    client?.close();
    server?.forceShutdown();
  });

  it("client: a new write waits while the oldest unanswered seq is SESSION_WINDOW - 1 behind", async () => {
    let release: (() => void) | undefined;
    let firstAnswered = false;
    let newestWhileFirstHeld = 0;
    server = new Server();
    server.addService(clientApi().KV.service, {
      Put: (call: ServerUnaryCall<{ session: { seq: number } }, object>, callback: sendUnaryData<object>) => {
        const seq = call.request.session.seq;
        if (seq === 1) {
          // The first write is slow: it is answered only when the test says so.
          release = () => callback(null, { index: 1 });
          return;
        }
        if (!firstAnswered) newestWhileFirstHeld = Math.max(newestWhileFirstHeld, seq);
        callback(null, { index: seq });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server?.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    client = new RaftmeshClient([`127.0.0.1:${port}`], { deadlineMs: 10_000 });
    const c = client;
    let answered = 0;
    const writes = Array.from({ length: WRITES }, (_, i) =>
      c.put(`k${i}`, "v").then(() => {
        answered++;
      }),
    );
    // Every write but the slow one that may go out is answered; after that, newer seqs would go
    // out at once if the client let them.
    for (let i = 0; i < 500 && answered < SESSION_WINDOW - 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBe(SESSION_WINDOW - 1);
    for (let i = 0; i < 25 && newestWhileFirstHeld <= SESSION_WINDOW; i++) await new Promise((r) => setTimeout(r, 20));
    expect(newestWhileFirstHeld).toBe(SESSION_WINDOW);
    firstAnswered = true;
    release?.();
    await Promise.all(writes);
    expect(answered).toBe(WRITES);
  });
});
