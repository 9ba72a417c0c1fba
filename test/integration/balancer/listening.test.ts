/**
 * The pool says when a listener is not served: /readyz reports it (src/agent/admin-http.ts), so a
 * load balancer that asks a node's readiness before sending mesh traffic skips a node whose
 * balancing worker died and is starting again (WORKER_RESTART_MS), and does not skip it after.
 */
import { connect, createServer, type Server } from "node:net";
import type { Worker } from "node:worker_threads";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { WorkerPool } from "../../../src/balancer/workers.js";
import { endpointOf, table } from "./harness.js";
import { acceptsConnection as accepts, freePorts } from "../harness/ports.js";
import { waitFor } from "../harness/process-cluster.js";

describe("balancer: the pool reports listeners it does not serve", () => {
  let pool: WorkerPool | undefined;
  afterEach(async () => {
    await pool?.stop();
    pool = undefined;
  });

  it("balancer: every listener served after start; a dead worker is reported until its restart listens again, then served", async () => {
    pool = await WorkerPool.start({
      workers: 2,
      listeners: [
        { kind: "http", name: "http", host: "127.0.0.1", port: 0 },
        { kind: "tcp", name: "tcp:db", host: "127.0.0.1", port: 0, service: "db" },
      ],
      localZone: "",
      nodeId: "t1",
      logger: pino({ level: "silent" }),
      current: () => ({ t: "tables", full: true, tables: [], removed: [] }),
    });
    expect(pool.notListening()).toBeUndefined();
    const oldTcpPort = pool.ports.get("tcp:db") as number;
    expect(await accepts(oldTcpPort)).toBe(true);
    // The worker serving the TCP listener (dealt round-robin: the second) exits as a crash would.
    const slots = (pool as unknown as { slots: { worker: Worker | undefined }[] }).slots;
    const tcpWorker = slots[1]?.worker;
    if (!tcpWorker) throw new Error("the pool has no second worker");
    await tcpWorker.terminate();
    expect(pool.notListening()).toMatch(/balancing worker 1 is not listening/);
    expect(await accepts(oldTcpPort)).toBe(false);
    // Started again after WORKER_RESTART_MS, on a fresh port here (the spec asked for port 0).
    await waitFor("the restarted worker listens", async () => pool?.notListening() === undefined, 10_000);
    const newTcpPort = pool.ports.get("tcp:db") as number;
    expect(await accepts(newTcpPort)).toBe(true);
    expect(await accepts(pool.ports.get("http") as number)).toBe(true);
    await pool.stop();
    expect(pool.notListening()).toBe("balancing endpoint stopped");
  });

  it("balancer: a worker started again while its port is taken says why, tries again every second, and listens once the port is free", async () => {
    const [port] = (await freePorts(1)) as [number];
    pool = await WorkerPool.start({
      workers: 1,
      listeners: [{ kind: "tcp", name: "tcp:db", host: "127.0.0.1", port, service: "db" }],
      localZone: "",
      nodeId: "t1",
      logger: pino({ level: "silent" }),
      current: () => ({ t: "tables", full: true, tables: [], removed: [] }),
    });
    const slots = (pool as unknown as { slots: { worker: Worker | undefined }[] }).slots;
    const worker = slots[0]?.worker;
    if (!worker) throw new Error("the pool has no worker");
    await worker.terminate();
    // Another process takes the port during the restart pause.
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen({ host: "127.0.0.1", port }, resolve));
    try {
      await waitFor("the failed start reported", () => /could not listen \(tcp:db: .*EADDRINUSE.*\); trying again/.test(pool?.notListening() ?? ""), 10_000);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
    await waitFor("listening once the port is free", () => pool?.notListening() === undefined, 10_000);
    expect(await accepts(port)).toBe(true);
  });

  it("balancer: a listener says it listens only with its first route table: a TCP connection made the moment the pool started is proxied", async () => {
    // A TCP listener picks its upstream when a connection arrives: before the table it would have
    // none and close the connection. The filler service makes the table slow to apply (~50,000
    // endpoints), widening any window between listening and routing.
    const echo: Server = createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
    const echoPort = (echo.address() as { port: number }).port;
    const filler = Array.from({ length: 50_000 }, (_, i) => endpointOf({ id: `f${i}`, port: 1 + (i % 60_000) }));
    try {
      for (let round = 0; round < 3; round++) {
        pool = await WorkerPool.start({
          workers: 1,
          listeners: [{ kind: "tcp", name: "tcp:echo", host: "127.0.0.1", port: 0, service: "echo" }],
          localZone: "",
          nodeId: "t1",
          logger: pino({ level: "silent" }),
          current: () => ({ t: "tables", full: true, tables: [table("filler", filler), table("echo", [endpointOf({ id: "e1", port: echoPort })])], removed: [] }),
        });
        const answer = await new Promise<string>((resolve, reject) => {
          const sock = connect(pool?.ports.get("tcp:echo") as number, "127.0.0.1", () => sock.write("ping"));
          let got = "";
          sock.on("data", (d) => {
            got += d.toString();
            if (got === "ping") sock.end();
          });
          sock.on("close", () => resolve(got));
          sock.on("error", reject);
        });
        expect(answer, `round ${round}`).toBe("ping");
        await pool.stop();
        pool = undefined;
      }
    } finally {
      echo.close();
    }
  });
});
