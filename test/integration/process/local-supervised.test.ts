/**
 * A definition that names a process: the node starts it under its supervisor, registers it once
 * its check passes, reports it critical the moment it exits (no TTL, no check interval), restarts
 * it, and reports it passing again once its check passes; removing the definition stops the
 * process and deregisters the instance.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RaftmeshClient } from "../../../src/client/index.js";
import { freePorts, ProcessCluster, waitFor } from "../harness/process-cluster.js";

/**
 * SERVER is a tiny HTTP server that writes its pid to a file, then answers 200 with a token. The
 * check asks for the token, so its passing results come from this server. (The instance seen
 * passing with no pid file, twice in fresh-clone runs, was not a stranger on the port: see the
 * first wait below.)
 */
const SERVER = `
const fs = require("node:fs");
fs.writeFileSync(process.argv[2], String(process.pid));
require("node:http").createServer((q, s) => s.end(process.argv[3])).listen(Number(process.argv[1]), "127.0.0.1");
`;

describe("local agent: supervised processes", () => {
  let c: ProcessCluster;
  let client: RaftmeshClient;
  let dir: string;
  let port: number;
  let pidFile: string;

  const web = async () => (await client.getService("web").catch(() => undefined))?.instances.find((i) => i.id === "p1");

  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 1 });
    dir = join(c.dataDir, "services");
    await mkdir(dir, { recursive: true });
    [port] = (await freePorts(1)) as [number];
    pidFile = join(c.dataDir, "server.pid");
    const token = `supervised-${randomBytes(8).toString("hex")}`;
    await writeFile(
      join(dir, "web.json"),
      JSON.stringify({
        service: "web",
        id: "p1",
        port,
        ttlMs: 3_000,
        process: { command: process.execPath, args: ["-e", SERVER, String(port), pidFile, token] },
        checks: [{ http: `http://127.0.0.1:${port}/`, body: token, intervalMs: 100, rise: 1, fall: 1, jitterMs: 0 }],
      }),
    );
    c.start("n1", { RAFTMESH_SERVICES_DIR: dir });
    await c.waitForLeader();
    client = c.client("n1");
  }, 20_000);
  afterAll(async () => {
    await c?.cleanup();
  });

  it("local agent: a supervised process is registered, critical at once when it dies, restarted and passing again; removed with its definition", async () => {
    // Passing with its server up: a new registration reads "passing" until its first heartbeat,
    // and the agent registers once every check has a first result, even a critical one (the server
    // not listening yet), then heartbeats it critical. A poll in that round trip saw "passing"
    // before the server had written its pid file (two fresh-clone runs).
    const written = async () => (await readFile(pidFile, "utf8").catch(() => "")) !== "";
    await waitFor("p1 passing with its server up", async () => (await web())?.health === "passing" && (await written()));
    const pid = Number(await readFile(pidFile, "utf8"));
    const t0 = performance.now();
    process.kill(pid, "SIGKILL");
    const down = await waitFor("p1 critical", async () => {
      const i = await web();
      return i?.health === "critical" ? i : undefined;
    }, 5_000);
    // Critical at once, not at the TTL (3 s): the supervisor reports the exit by itself, unless
    // the check (every 100 ms, fall 1) got there first: the kernel closes a killed process's
    // sockets before its parent reads the exit, so a check in that gap is refused and reports it.
    const criticalAfterMs = performance.now() - t0;
    expect(down.note).toMatch(/^process exited \(signal SIGKILL\); restart in \d+ ms|ECONNREFUSED/);
    expect(criticalAfterMs).toBeLessThan(1_000);
    const newPid = async () => Number(await readFile(pidFile, "utf8").catch(() => String(pid)));
    await waitFor("p1 restarted and passing", async () => (await web())?.health === "passing" && (await newPid()) !== pid, 10_000);
    console.log(`supervised exit seen as critical in ${Math.round(criticalAfterMs)} ms (polling every 50 ms)`);

    await rm(join(dir, "web.json"));
    const res = await fetch(`http://127.0.0.1:${c.specs.get("n1")?.adminPort}/reload`, { method: "POST" });
    expect(((await res.json()) as { removed: string[] }).removed).toEqual(["web/p1"]);
    expect(await web()).toBeUndefined();
    const last = Number(await readFile(pidFile, "utf8"));
    expect(() => process.kill(last, 0)).toThrow();
  });
});
