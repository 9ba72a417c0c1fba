/**
 * A supervised master-slave service: two demo backends (src/demo/main.ts --adopt), each run by
 * `raftmesh run`, on a one-node cluster with a 5 s TTL. The master's process is SIGKILLed; its
 * supervisor reports the exit at once, naming the process, and the standby takes the writes the
 * balancing endpoint routes, in well under a TTL: neither the lease nor the handover fence (which
 * would hold the new master back until the dead master's last lease ran out, about 3.3 s after the
 * kill at the earliest) is waited for. The API refuses an exit report without critical.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostMonotonicMs } from "../../../src/demo/backend.js";
import { freePorts, ProcessCluster, REPO_ROOT, waitFor } from "../harness/process-cluster.js";
import { RunProcess } from "../harness/run-process.js";

const SERVICE = "run-ms";
const TTL_MS = 5_000;
/** FAILOVER_WITHIN_MS: a fenced handover could not come before TTL − TTL/3 after the kill; this is well below, with room for a loaded machine. */
const FAILOVER_WITHIN_MS = 1_500;
const DEMO_MAIN = join(REPO_ROOT, "src/demo/main.ts");

describe("raftmesh run: a supervised master crashes", () => {
  let c: ProcessCluster;
  const runs: RunProcess[] = [];

  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 1 });
    c.startAll();
    await c.waitForLeader();
  }, 30_000);

  afterAll(async () => {
    for (const r of runs) r.child.kill("SIGKILL");
    await c?.cleanup();
  });

  it("run: the standby takes the endpoint's writes within FAILOVER_WITHIN_MS of the master's crash, far below the TTL", async () => {
    const client = c.client("n1");
    await client.putService(SERVICE, { mode: "master-slave", retries: 3 });
    const api = c.api("n1");
    const ports = await freePorts(2);
    for (const [i, id] of ["a", "b"].entries()) {
      const port = ports[i] as number;
      runs.push(
        new RunProcess(
          ["--service", SERVICE, "--id", id, "--port", String(port), "--ttl", String(TTL_MS), "--node", api, "--log-dir", join(c.root, "run-logs")],
          [process.execPath, "--import", "tsx", DEMO_MAIN, "--adopt", "--endpoints", api, "--service", SERVICE, "--id", id, "--listen", `127.0.0.1:${port}`, "--ttl-ms", String(TTL_MS)],
        ),
      );
    }
    await Promise.all(runs.map((r) => r.next("registered")));
    const endpoint = `http://127.0.0.1:${c.specs.get("n1")?.balancerPort}/svc/${SERVICE}`;
    const write = async () => {
      const res = await fetch(`${endpoint}/write`, { method: "POST", body: "x", signal: AbortSignal.timeout(2_000) });
      return res.status === 200 ? ((await res.json()) as { id: string; epoch: number }) : undefined;
    };
    const first = await waitFor("a write accepted by the master", write, 20_000);
    const victim = runs[first.id === "a" ? 0 : 1] as RunProcess;
    const linesBefore = victim.lines.length;
    const killedAt = hostMonotonicMs();
    process.kill(victim.pid as number, "SIGKILL");
    const next = await waitFor(
      "a write accepted by the other instance",
      async () => {
        const w = await write().catch(() => undefined);
        return w !== undefined && w.id !== first.id ? w : undefined;
      },
      TTL_MS * 3,
    );
    const tookMs = hostMonotonicMs() - killedAt;
    expect(next.epoch).toBeGreaterThan(first.epoch);
    expect(tookMs).toBeLessThan(FAILOVER_WITHIN_MS);
    // The old master comes back as a standby; writes stay with the new master.
    await victim.next("reported", linesBefore, 20_000, (l) => l.why === "up");
    expect((await write())?.id).toBe(next.id);
    // An exit report must come with critical.
    const err = await client.heartbeat(SERVICE, first.id, "passing", "", { exitedProcess: "abc" }).then(
      () => undefined,
      (e: unknown) => e as { code: number; message: string },
    );
    expect(err?.code).toBe(3);
    expect(err?.message).toMatch(/exited_process: needs status critical/);
    const bad = await client.heartbeat(SERVICE, first.id, "", "", { processToken: "a b" }).then(
      () => undefined,
      (e: unknown) => e as { code: number; message: string },
    );
    expect(bad?.message).toMatch(/process_token: "a b" may hold only/);
    for (const r of runs) expect(await r.stop()).toBe(0);
    expect((await client.getService(SERVICE)).instances).toEqual([]);
  });
});
