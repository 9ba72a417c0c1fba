/**
 * The node as a local agent, with a real node process and a real services directory: definitions
 * added, changed and removed at run time (raftmesh reload, SIGHUP, raftmesh services register),
 * a bad file named with its field while the last good version stays in force, re-registration
 * after the cluster lost an instance, and a hung check that leaves the node's heartbeats alone.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RaftmeshClient } from "../../../src/client/index.js";
import type { InstanceMsg } from "../../../src/common/messages.js";
import { type Backend, startBackend } from "../balancer/harness.js";
import { ProcessCluster, runCli, waitFor } from "../harness/process-cluster.js";

describe("local agent: a node registers, checks and heartbeats the instances of its services directory", () => {
  let c: ProcessCluster;
  let client: RaftmeshClient;
  let dir: string;
  let admin: string;
  let backend: Backend;
  let backendCode = 200;

  const instances = async (service: string): Promise<InstanceMsg[]> => {
    try {
      return (await client.getService(service)).instances;
    } catch {
      return [];
    }
  };
  const instance = async (service: string, id: string) => (await instances(service)).find((i) => i.id === id);
  /** reload asks the node's admin endpoint directly (the CLI is exercised where its output matters). */
  const reload = async () => {
    const res = await fetch(`http://${admin}/reload`, { method: "POST" });
    expect(res.status).toBe(200);
    return (await res.json()) as { added: string[]; changed: string[]; removed: string[]; unchanged: number; errors: unknown[] };
  };
  const def = (id: string, extra: object = {}) => ({
    service: "web",
    id,
    port: backend.port,
    ttlMs: 1_000,
    checks: [{ http: `http://127.0.0.1:${backend.port}/health`, intervalMs: 100, rise: 1, fall: 1, jitterMs: 0 }],
    ...extra,
  });

  beforeAll(async () => {
    backend = await startBackend("b", (_req, res) => {
      res.writeHead(backendCode).end(`code ${backendCode}`);
    });
    c = await ProcessCluster.create({ size: 1 });
    dir = join(c.dataDir, "services");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "a.json"), JSON.stringify(def("w1")));
    c.start("n1", { RAFTMESH_SERVICES_DIR: dir });
    await c.waitForLeader();
    client = c.client("n1");
    admin = `127.0.0.1:${c.specs.get("n1")?.adminPort}`;
  }, 20_000);
  afterAll(async () => {
    await c?.cleanup();
    await backend?.close();
  });

  it("local agent: definitions at start, added by reload, changed on SIGHUP, kept when their file turns bad, removed", async () => {
    await waitFor("w1 registered and passing", async () => (await instance("web", "w1"))?.health === "passing");

    await writeFile(join(dir, "b.json"), JSON.stringify({ services: [def("w2"), def("w3", { tags: ["x"] })] }));
    expect(await reload()).toEqual({ added: ["web/w2", "web/w3"], changed: [], removed: [], unchanged: 1, errors: [] });
    await waitFor("w2 and w3 registered", async () => (await instances("web")).filter((i) => i.health === "passing").length === 3);

    await writeFile(join(dir, "a.json"), JSON.stringify(def("w1", { weight: 5, metadata: { v: "2" } })));
    process.kill(c.pid("n1") as number, "SIGHUP");
    await waitFor("w1 re-registered with its new weight", async () => (await instance("web", "w1"))?.weight === 5);
    expect((await instance("web", "w1"))?.metadata).toEqual({ v: "2" });

    // A bad file: the reload names it and the field; its last good version stays registered and
    // heartbeated (TTL 1 s: it would expire within two seconds otherwise).
    await writeFile(join(dir, "b.json"), JSON.stringify({ services: [def("w2"), def("w3", { port: "eighty" })] }));
    const bad = await runCli(["reload", "--admin", admin]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`error: ${join(dir, "b.json")}: services[1].port must be an integer`);
    const log = await c.waitForLog("n1", "bad service definition; keeping the last good one of this file");
    expect(log).toContain('"field":"services[1].port"');
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await instances("web")).map((i) => `${i.id}:${i.health}`).sort()).toEqual(["w1:passing", "w2:passing", "w3:passing"]);

    await rm(join(dir, "a.json"));
    await writeFile(join(dir, "b.json"), JSON.stringify(def("w2")));
    expect(await reload()).toEqual({ added: [], changed: [], removed: ["web/w1", "web/w3"], unchanged: 1, errors: [] });
    expect((await instances("web")).map((i) => i.id)).toEqual(["w2"]);
  });

  it("local agent: a failing check turns the instance critical with its note, and back", async () => {
    await waitFor("w2 passing", async () => (await instance("web", "w2"))?.health === "passing");
    backendCode = 503;
    const down = await waitFor("w2 critical", async () => {
      const i = await instance("web", "w2");
      return i?.health === "critical" ? i : undefined;
    });
    expect(down.note).toBe(`http-0: HTTP GET http://127.0.0.1:${backend.port}/health: 503`);
    backendCode = 200;
    await waitFor("w2 passing again", async () => (await instance("web", "w2"))?.health === "passing");
  });

  it("local agent: an instance whose check fails from the start registers critical; no change ever shows it passing", async () => {
    // A watch on the service from index 0 sees every change of the instance, the registration
    // first. Registered passing and then heartbeated critical, the first one read passing for a
    // round trip, and a balancer or a failover could have chosen it.
    const changes: string[] = [];
    const w = client.watch({ fromIndex: 0, service: "cold" }, { onMessage: (m) => changes.push(...m.events.filter((e) => e.kind === "instance" && e.type === "put").map((e) => e.instance?.health ?? "?")), onEnd: () => undefined });
    try {
      await writeFile(join(dir, "cold.json"), JSON.stringify({ service: "cold", id: "c1", port: 1, ttlMs: 1_000, checks: [{ name: "tcp-1", tcp: "127.0.0.1:1", intervalMs: 100, rise: 1, fall: 1, jitterMs: 0 }] }));
      expect((await reload()).added).toEqual(["cold/c1"]);
      const c1 = await waitFor("c1 registered", async () => instance("cold", "c1"));
      expect(c1.health).toBe("critical");
      expect(c1.note).toMatch(/^tcp-1: /);
      // Three heartbeats later nothing has changed its health.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(changes.length).toBeGreaterThan(0);
      expect([...new Set(changes)]).toEqual(["critical"]);
    } finally {
      w.cancel();
      await rm(join(dir, "cold.json"));
      await reload();
    }
  });

  it("local agent: an instance the cluster lost is registered again", async () => {
    await client.deregister("web", "w2");
    const t0 = Date.now();
    await waitFor("w2 back", async () => (await instance("web", "w2"))?.health === "passing", 5_000);
    // The next heartbeat (every TTL/3, 333 ms) finds it unknown and registers it at once.
    expect(Date.now() - t0).toBeLessThan(1_500);
    await c.waitForLog("n1", "the cluster does not know this instance; registering it again");
  });

  it("local agent: services register -f validates and writes a definition into the services directory", async () => {
    const file = join(c.dataDir, "api.json");
    await writeFile(file, JSON.stringify({ service: "api", id: "a1", port: backend.port, ttlMs: 1_000 }));
    const ok = await runCli(["services", "register", "-f", file, "--admin", admin]);
    expect(ok.stdout).toContain("added: api/a1");
    expect(ok.code).toBe(0);
    expect(JSON.parse(await readFile(join(dir, "api.json"), "utf8")).id).toBe("a1");
    await waitFor("a1 registered", async () => (await instance("api", "a1"))?.health === "passing");

    const badFile = join(c.dataDir, "bad.json");
    await writeFile(badFile, JSON.stringify({ service: "api", id: "a2", port: backend.port, checks: [{ tcp: "127.0.0.1:1", rise: 0 }] }));
    const bad = await runCli(["services", "register", "-f", badFile, "--admin", admin]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("checks[0].rise must be within [1, 100], got 0");
    await expect(readFile(join(dir, "bad.json"))).rejects.toThrow(/ENOENT/);
  });

  it("local agent: a hung check is killed at its timeout and never delays the node's heartbeats", async () => {
    // h1's only check hangs for its whole timeout, over and over; p1 (TTL 1 s, no checks) is
    // heartbeated by the same node meanwhile. Had a check held up the heartbeats by a TTL, p1
    // would turn critical (its lease expired).
    await writeFile(
      join(dir, "hung.json"),
      JSON.stringify({
        services: [
          { service: "hung", id: "h1", port: 1, ttlMs: 1_000, checks: [{ name: "stuck", args: ["/bin/sh", "-c", "echo started; sleep 60"], intervalMs: 100, timeoutMs: 1_000, rise: 1, fall: 1 }] },
          { service: "hung", id: "p1", port: 2, ttlMs: 1_000 },
        ],
      }),
    );
    expect((await reload()).added).toEqual(["hung/h1", "hung/p1"]);
    const h1 = await waitFor("h1 critical: its check timed out", async () => {
      const i = await instance("hung", "h1");
      return i?.health === "critical" ? i : undefined;
    });
    expect(h1.note).toBe("stuck: timed out after 1000 ms: started");
    const seen = new Set<string>();
    // 2.5 TTLs of p1, during which h1's check hangs and is killed twice more.
    const until = Date.now() + 2_500;
    while (Date.now() < until) {
      const p1 = await instance("hung", "p1");
      seen.add(p1?.health ?? "absent");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect([...seen]).toEqual(["passing"]);
  });
});
