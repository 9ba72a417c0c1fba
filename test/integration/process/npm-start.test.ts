/**
 * `npm start`, the README's local cluster, as a user runs it: three agents and the demo service
 * on the fixed local ports (7101-7103 peer, 7201-7203 API, 7301-7303 balancing endpoint, 7401-7403
 * admin, 7701-7703 demo; tests choose theirs from 20000 up, so none collide), data in a temporary
 * directory. Its report comes once every node is ready, so the endpoints it prints take
 * connections at once; the demo it suggests answers through every node; Ctrl-C (SIGINT to the
 * process group, as a terminal sends it) stops everything cleanly.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { acceptsConnection as accepts } from "../harness/ports.js";
import { REPO_ROOT, waitFor } from "../harness/process-cluster.js";

/** START_WAIT_MS bounds the wait for the report (three agents compiled by tsx on a loaded machine). */
const START_WAIT_MS = 90_000;
/** STOP_WAIT_MS bounds the clean stop after Ctrl-C (start-local's own bound is 12 s). */
const STOP_WAIT_MS = 20_000;
const BALANCER_PORTS = [7301, 7302, 7303];
const ALL_PORTS = [7101, 7102, 7103, 7201, 7202, 7203, ...BALANCER_PORTS, 7401, 7402, 7403, 7701, 7702, 7703];

describe("npm start: the local cluster", () => {
  let child: ChildProcess | undefined;
  let dir = "";
  let out = "";
  afterAll(async () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("npm start: reports once every node is ready (the printed endpoints take connections at once), the demo answers through every node, Ctrl-C stops all of it", async () => {
    for (const p of ALL_PORTS) expect(await accepts(p), `port ${p} is already taken on this machine`).toBe(false);
    dir = await mkdtemp(join(tmpdir(), "raftmesh-npm-start-"));
    const c = spawn("npm", ["start"], { cwd: REPO_ROOT, env: { ...process.env, RAFTMESH_DATA_DIR: dir }, stdio: ["ignore", "pipe", "pipe"], detached: true });
    child = c;
    c.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    c.stderr?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<string>((r) => c.once("exit", (code, signal) => r(signal ?? `code ${code}`)));
    await waitFor("the leader line of npm start's report", () => /^leader: n\d \(term \d+\)/m.test(out), START_WAIT_MS);
    // At the report, every node's endpoint listens (the report waits for /readyz).
    for (const p of BALANCER_PORTS) expect(await accepts(p), `balancing endpoint ${p} at the report`).toBe(true);
    expect(out).toContain("curl 127.0.0.1:7301/svc/hello/");
    // The demo instances register themselves; then the suggested call answers through every node.
    for (const p of BALANCER_PORTS) {
      const body = await waitFor(`the demo through ${p}`, async () => {
        const r = await fetch(`http://127.0.0.1:${p}/svc/hello/`).catch(() => undefined);
        return r?.status === 200 ? await r.text() : undefined;
      });
      expect(body).toMatch(/hello-\d/);
    }
    process.kill(-(c.pid as number), "SIGINT");
    const end = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("timeout"), STOP_WAIT_MS))]);
    // npm itself ends by the signal (as in a terminal); what it ran stopped every node cleanly.
    expect(["code 0", "SIGINT"], out.slice(-2_000)).toContain(end);
    expect(out).toContain("stopping the local cluster");
    for (const id of ["n1", "n2", "n3"]) expect(out, `${id} stopped cleanly`).toMatch(new RegExp(`^${id} \\| INFO  agent stopped`, "m"));
    // Nothing of it is left listening.
    await waitFor("every port closed", async () => (await Promise.all(ALL_PORTS.map(accepts))).every((a) => !a), 10_000);
  }, 150_000);
});
