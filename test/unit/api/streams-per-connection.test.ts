/**
 * One client connection runs at most API_STREAMS_PER_CONNECTION_MAX calls at once: the server says
 * so in its HTTP/2 SETTINGS, so further calls wait in the client until one ends, instead of a whole
 * burst landing in one event-loop turn of the server (limits.ts says why). In-process: a real
 * grpc-js server and the project's client on one connection; the reads block in a gated read index.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kvService, type KvServiceDeps } from "../../../src/api/kv-service.js";
import { API_STREAMS_PER_CONNECTION_MAX } from "../../../src/api/limits.js";
import { registryService, type RegistryServiceDeps } from "../../../src/api/registry-service.js";
import { ApiServer } from "../../../src/api/server.js";
import { RaftmeshClient } from "../../../src/client/index.js";

describe("client API: concurrent calls per connection", () => {
  let server: ApiServer;
  let client: RaftmeshClient;
  /** started counts reads that reached the handler; release lets every waiting read go on. */
  let started = 0;
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  beforeAll(async () => {
    const deps = {
      registry: { kvGet: () => undefined, kvList: () => [], applied: 7 },
      reads: {
        readIndex: async () => {
          started++;
          await gate;
          return 7;
        },
      },
    } as unknown as KvServiceDeps;
    server = new ApiServer({ kv: kvService(deps), registry: registryService({} as RegistryServiceDeps), cluster: {} });
    const port = await server.listen("127.0.0.1:0");
    client = new RaftmeshClient([`127.0.0.1:${port}`], { deadlineMs: 60_000 });
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  it(`runs ${API_STREAMS_PER_CONNECTION_MAX} calls of one connection at once; the next waits in the client until one ends`, async () => {
    const extra = 50;
    const calls = Array.from({ length: API_STREAMS_PER_CONNECTION_MAX + extra }, (_, i) => client.get(`k${i}`));
    // Wait until the server holds as many as it will.
    const deadline = Date.now() + 20_000;
    let last = -1;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      if (started === last && started > 0) break;
      last = started;
    }
    expect(started).toBe(API_STREAMS_PER_CONNECTION_MAX);
    release();
    const answers = await Promise.all(calls);
    expect(answers).toHaveLength(API_STREAMS_PER_CONNECTION_MAX + extra);
    expect(started).toBe(API_STREAMS_PER_CONNECTION_MAX + extra);
  }, 60_000);
});
