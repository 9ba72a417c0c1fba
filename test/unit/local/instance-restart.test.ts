/**
 * A supervised process that exits takes its checks down with it: after the restart, the instance
 * reports passing only once each check has had `rise` passing results against the new process.
 * Real HTTP checks against a real loopback server; the supervisor is an emitter the test drives
 * (its own behaviour is test/integration/local/supervisor.test.ts's), the SDK a recorder.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Emitter } from "../../../src/common/emitter.js";
import type { Logger } from "../../../src/common/logger.js";
import { type InstanceClient, LocalInstance } from "../../../src/local/instance.js";
import type { ProcessEvent, SupervisedProcess } from "../../../src/local/process.js";
import type { CheckStatus, Definition } from "../../../src/local/types.js";

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const RISE = 3;
const INTERVAL_MS = 40;

interface Beat {
  readonly status: CheckStatus;
  readonly note: string;
  /** okServed is how many 200s the server had answered when the heartbeat was sent. */
  readonly okServed: number;
}

describe("local: a restarted supervised process must pass its checks again", () => {
  let server: Server | undefined;
  let instance: LocalInstance | undefined;
  afterEach(async () => {
    await instance?.stop({ deregister: false, keepProcess: true });
    await new Promise((r) => server?.close(r));
  });

  it("local: after an exit, the instance stays critical through the restart until rise passing checks of the new process", async () => {
    let ready = true;
    let okServed = 0;
    server = createServer((_q, s) => {
      if (ready) okServed++;
      s.statusCode = ready ? 200 : 503;
      s.end();
    });
    await new Promise<void>((r) => server?.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;

    const events = new Emitter<{ event: ProcessEvent }>();
    const proc: SupervisedProcess = { events, start: () => undefined, stop: async () => undefined, running: true };
    const beats: Beat[] = [];
    const client: InstanceClient = {
      register: async () => undefined as never,
      deregister: async () => undefined as never,
      heartbeat: async (_s, _i, status, note) => {
        beats.push({ status: status as CheckStatus, note: note ?? "", okServed });
        return undefined as never;
      },
    };
    const def: Definition = {
      file: "web.json",
      instance: { service: "web", id: "p1", address: "127.0.0.1", port, tags: [], metadata: {}, weight: 1, ttlMs: 30_000 } as unknown as Definition["instance"],
      checks: [
        {
          name: "http",
          probe: { kind: "http", url: `http://127.0.0.1:${port}/`, method: "GET", headers: {}, body: "" },
          timing: { intervalMs: INTERVAL_MS, timeoutMs: 1_000, rise: RISE, fall: 3, jitterMs: 0 },
        },
      ],
    };
    instance = new LocalInstance(def, client, quiet, proc);
    instance.start();
    await until(() => beats.some((b) => b.status === "passing"));

    // The process dies and its supervisor restarts it after a short backoff (shorter than the
    // check's fall: the check has not fallen by itself); the new process is not ready yet.
    ready = false;
    const exitAt = beats.length;
    events.emit("event", { kind: "exited", code: null, signal: "SIGKILL", restartInMs: 10 });
    await until(() => beats.length > exitAt);
    await sleep(10);
    events.emit("event", { kind: "started", pid: 2 });
    await sleep(INTERVAL_MS * 10);
    const whileNotReady = beats.slice(exitAt);
    expect(whileNotReady[0]?.status).toBe("critical");
    expect(whileNotReady.map((b) => b.status)).not.toContain("passing");
    expect(instance.health()?.status).toBe("critical");

    // The new process becomes ready: passing again only after RISE passing results.
    const readyFrom = okServed;
    ready = true;
    await until(() => beats.slice(exitAt).some((b) => b.status === "passing"));
    const firstPassing = beats.slice(exitAt).find((b) => b.status === "passing") as Beat;
    expect(firstPassing.okServed - readyFrom).toBeGreaterThanOrEqual(RISE);
  });

  it("local: a health that changes back while a heartbeat is in flight is sent after it", async () => {
    const events = new Emitter<{ event: ProcessEvent }>();
    const proc: SupervisedProcess = { events, start: () => undefined, stop: async () => undefined, running: true };
    const beats: CheckStatus[] = [];
    const client: InstanceClient = {
      register: async () => undefined as never,
      deregister: async () => undefined as never,
      heartbeat: async (_s, _i, status) => {
        await sleep(30); // the cluster takes its time to acknowledge
        beats.push(status as CheckStatus);
        return undefined as never;
      },
    };
    const def: Definition = {
      file: "worker.json",
      instance: { service: "worker", id: "w1", address: "127.0.0.1", port: 1, tags: [], metadata: {}, weight: 1, ttlMs: 30_000 } as unknown as Definition["instance"],
      checks: [],
    };
    instance = new LocalInstance(def, client, quiet, proc);
    instance.start();
    await until(() => beats.includes("passing"));
    // Exit and restart within one heartbeat's round trip: the critical one is in flight when the
    // process is up again, and the cluster must not be left at critical until the next TTL/3 beat.
    events.emit("event", { kind: "exited", code: 1, signal: null, restartInMs: 0 });
    await sleep(5);
    events.emit("event", { kind: "started", pid: 3 });
    await sleep(200);
    expect(beats.slice(1)).toEqual(["critical", "passing"]);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(5);
  }
}
