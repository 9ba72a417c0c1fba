/**
 * Maintenance through a real node: two instances defined in the node's services directory take
 * traffic through its balancing endpoint; `raftmesh maint web m1 on` drains m1 — the requests it
 * is serving finish, it gets no new ones, it stays registered and passing (still heartbeated) —
 * and `off` returns it to rotation. No request fails at any point.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Backend, call, count, startBackend } from "../balancer/harness.js";
import { ProcessCluster, runCli, waitFor } from "../harness/process-cluster.js";

/** SERVE_MS is how long each backend takes per request, so a drain meets requests in flight. */
const SERVE_MS = 150;
/** CLIENTS request in parallel, each in a loop, for the whole test (bounded by LOOP_REQUESTS_MAX). */
const CLIENTS = 4;
const LOOP_REQUESTS_MAX = 2_000;

describe("maintenance: a drained instance finishes its requests and takes no new ones", () => {
  let c: ProcessCluster;
  let backends: Backend[];
  const inFlight = new Map<string, number>();
  const inFlightAtDrain: number[] = [];

  beforeAll(async () => {
    backends = await Promise.all(
      ["m1", "m2"].map((id) =>
        startBackend(id, (_req, res, b) => {
          inFlight.set(b.id, (inFlight.get(b.id) ?? 0) + 1);
          setTimeout(() => {
            inFlight.set(b.id, (inFlight.get(b.id) ?? 0) - 1);
            res.end(b.id);
          }, SERVE_MS);
        }),
      ),
    );
    c = await ProcessCluster.create({ size: 1 });
    const dir = join(c.dataDir, "services");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "web.json"), JSON.stringify({ services: backends.map((b) => ({ service: "web", id: b.id, port: b.port, ttlMs: 1_000 })) }));
    c.start("n1", { RAFTMESH_SERVICES_DIR: dir });
    await c.waitForLeader();
  }, 20_000);
  afterAll(async () => {
    await c?.cleanup();
    await Promise.all((backends ?? []).map((b) => b.close()));
  });

  it("maintenance: maint on drains m1 with no failed request; maint off brings it back", async () => {
    const port = c.specs.get("n1")?.balancerPort as number;
    const client = c.client("n1");
    const endpoints = ["--endpoints", c.api("n1")];
    await waitFor("both instances take traffic", async () => {
      const seen = [];
      for (let i = 0; i < 4; i++) seen.push((await call(port, "/svc/web/")).body);
      return Object.keys(count(seen)).length === 2;
    });

    const replies: { status: number; body: string; at: number }[] = [];
    let running = true;
    const loops = Array.from({ length: CLIENTS }, async () => {
      for (let i = 0; running && i < LOOP_REQUESTS_MAX; i++) {
        try {
          const r = await call(port, "/svc/web/");
          replies.push({ status: r.status, body: r.body, at: Date.now() });
        } catch (err) {
          replies.push({ status: 0, body: String(err), at: Date.now() });
        }
      }
    });
    await waitFor("m1 serving", () => (inFlight.get("m1") ?? 0) > 0);
    inFlightAtDrain.push(inFlight.get("m1") ?? 0);
    const hitsBefore = backends[0]?.hits ?? 0;
    const on = await runCli(["maint", "web", "m1", "on", "--reason", "kernel upgrade", ...endpoints]);
    expect(on.stderr).toBe("");
    expect(on.code).toBe(0);
    expect(on.stdout).toContain("web/m1: maintenance on");
    const drainedAt = Date.now();
    // The table reaches the balancer's worker within milliseconds of the apply; from then on m1
    // gets nothing new.
    await new Promise((r) => setTimeout(r, 200));
    const hitsAfterDrain = backends[0]?.hits ?? 0;
    await new Promise((r) => setTimeout(r, 2_000)); // past two TTLs: m1 is still heartbeated
    expect(backends[0]?.hits).toBe(hitsAfterDrain);
    expect(inFlight.get("m1")).toBe(0);
    const m1 = (await client.getService("web")).instances.find((i) => i.id === "m1");
    expect(m1).toMatchObject({ health: "passing", maintenance: true, maintenanceReason: "kernel upgrade" });

    const off = await runCli(["maint", "web", "m1", "off", ...endpoints]);
    expect(off.code).toBe(0);
    await waitFor("m1 takes traffic again", () => (backends[0]?.hits ?? 0) > hitsAfterDrain, 5_000);
    running = false;
    await Promise.all(loops);

    const failed = replies.filter((r) => r.status !== 200);
    expect(failed).toEqual([]);
    expect(inFlightAtDrain[0]).toBeGreaterThan(0);
    // Requests m1 had accepted when it was drained finished with 200 (no failure above), and
    // m2 took every request after the drain until maint off.
    const duringDrain = replies.filter((r) => r.at > drainedAt + 200 + SERVE_MS && r.at < drainedAt + 2_200);
    expect(duringDrain.length).toBeGreaterThan(10);
    expect(count(duringDrain.map((r) => r.body))).toEqual({ m2: duringDrain.length });
    expect(hitsAfterDrain).toBeGreaterThanOrEqual(hitsBefore);
  });
});
