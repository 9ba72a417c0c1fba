/**
 * The local agent's checks against real servers and processes: an HTTP endpoint that flaps
 * around rise/fall, TCP connects, gRPC health, script exit codes and notes, and a script that
 * hangs (killed at its timeout, with the event loop free meanwhile).
 */
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { afterEach, describe, expect, it } from "vitest";
import { CheckRunner, runProbe } from "../../../src/local/checks/runner.js";
import { CHECK_OUTPUT_BYTES_MAX } from "../../../src/local/limits.js";
import type { CheckResult, CheckSpec, CheckStatus, Probe } from "../../../src/local/types.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** alive says whether pid runs: a zombie (dead, its parent not having reaped it yet, as a reparented grandchild may stay in a container) is not alive. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

function spec(probe: Probe, timing: Partial<CheckSpec["timing"]> = {}): CheckSpec {
  return { name: "c", probe, timing: { intervalMs: 50, timeoutMs: 1_000, rise: 1, fall: 1, jitterMs: 0, ...timing } };
}

async function once(probe: Probe, timeoutMs = 1_000): Promise<CheckResult> {
  const abort = new AbortController();
  const t = setTimeout(() => abort.abort(), timeoutMs);
  try {
    return await runProbe(spec(probe, { timeoutMs }), abort.signal);
  } finally {
    clearTimeout(t);
  }
}

async function httpServer(handler: Parameters<typeof createHttpServer>[1]): Promise<number> {
  const server: HttpServer = createHttpServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  cleanups.push(() => server.closeAllConnections());
  return (server.address() as { port: number }).port;
}

async function freePort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe("local: HTTP checks", () => {
  it("local: 2xx passing, 429 warning, others critical; method, headers and body are honoured", async () => {
    let code = 200;
    const seen: { method?: string; token?: string }[] = [];
    const port = await httpServer((req, res) => {
      seen.push({ method: req.method, token: req.headers["x-token"] as string });
      res.writeHead(code).end("status: all good");
    });
    const probe: Probe = { kind: "http", url: `http://127.0.0.1:${port}/health`, method: "HEAD", headers: { "x-token": "t1" }, body: "" };
    expect((await once(probe)).status).toBe("passing");
    expect(seen[0]).toEqual({ method: "HEAD", token: "t1" });
    code = 204;
    expect((await once(probe)).status).toBe("passing");
    code = 429;
    expect(await once(probe)).toEqual({ status: "warning", note: `HTTP HEAD http://127.0.0.1:${port}/health: 429` });
    code = 503;
    expect((await once(probe)).status).toBe("critical");
    code = 200;
    const get = { ...probe, method: "GET" };
    expect((await once({ ...get, body: "all good" })).status).toBe("passing");
    const missing = await once({ ...get, body: "degraded" });
    expect(missing.status).toBe("critical");
    expect(missing.note).toContain('body lacks "degraded"');
  });

  it("local: no listener, or an answer later than the timeout, is critical", async () => {
    const closed = await freePort();
    expect((await once({ kind: "http", url: `http://127.0.0.1:${closed}/`, method: "GET", headers: {}, body: "" })).status).toBe("critical");
    const port = await httpServer(() => undefined); // never answers
    const t0 = performance.now();
    const r = await once({ kind: "http", url: `http://127.0.0.1:${port}/`, method: "GET", headers: {}, body: "" }, 200);
    expect(r).toEqual({ status: "critical", note: `HTTP GET http://127.0.0.1:${port}/: timed out` });
    expect(performance.now() - t0).toBeLessThan(1_000);
  });

  it("local: a flapping endpoint changes status only after fall failures or rise successes in a row", async () => {
    // The server answers from a script of codes, one per request; past its end, 200.
    const script = [200, 500, 500, 200, 500, 500, 500, 200, 500, 200, 200];
    let n = 0;
    const port = await httpServer((_req, res) => {
      res.writeHead(script[n++] ?? 200).end();
    });
    const runner = new CheckRunner(spec({ kind: "http", url: `http://127.0.0.1:${port}/`, method: "GET", headers: {}, body: "" }, { intervalMs: 20, rise: 2, fall: 3 }));
    const results: CheckStatus[] = [];
    const changes: { status: CheckStatus; afterResult: number }[] = [];
    runner.events.on("result", (r) => results.push(r.status));
    runner.events.on("change", (e) => changes.push({ status: e.status, afterResult: results.length }));
    cleanups.push(() => runner.stop());
    runner.start();
    const deadline = Date.now() + 10_000;
    while (results.length < script.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    runner.stop();
    expect(results.slice(0, script.length)).toEqual(script.map((c) => (c === 200 ? "passing" : "critical")));
    // First result passing at once; two failures are not enough; three are (result 7); one
    // success after them is not enough to come back, two are (result 11).
    expect(changes).toEqual([
      { status: "passing", afterResult: 1 },
      { status: "critical", afterResult: 7 },
      { status: "passing", afterResult: 11 },
    ]);
  });
});

describe("local: TCP and gRPC checks", () => {
  it("local: TCP connect accepted is passing; refused is critical", async () => {
    const server = createTcpServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    expect((await once({ kind: "tcp", host: "127.0.0.1", port })).status).toBe("passing");
    await new Promise<void>((r) => server.close(() => r()));
    const r = await once({ kind: "tcp", host: "127.0.0.1", port });
    expect(r.status).toBe("critical");
    expect(r.note).toContain("ECONNREFUSED");
  });

  it("local: gRPC health SERVING is passing; NOT_SERVING, an unknown service or no server is critical", async () => {
    const health = new HealthImplementation({ "": "SERVING", web: "NOT_SERVING" });
    const server = new Server();
    health.addToServer(server);
    const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    cleanups.push(() => new Promise<void>((r) => server.tryShutdown(() => r())));
    const probe = (service: string): Probe => ({ kind: "grpc", host: "127.0.0.1", port, service });
    expect(await once(probe(""))).toEqual({ status: "passing", note: `gRPC health 127.0.0.1:${port}: SERVING` });
    expect(await once(probe("web"))).toEqual({ status: "critical", note: `gRPC health 127.0.0.1:${port}/web: NOT_SERVING` });
    health.setStatus("web", "SERVING");
    expect((await once(probe("web"))).status).toBe("passing");
    const unknown = await once(probe("nope"));
    expect(unknown.status).toBe("critical");
    expect(unknown.note).toMatch(/NOT_FOUND|not found|Unknown/i);
    const closed = await freePort();
    expect((await once({ kind: "grpc", host: "127.0.0.1", port: closed, service: "" }, 300)).status).toBe("critical");
  });
});

describe("local: script checks", () => {
  it("local: exit 0 passing, 1 warning, 2 critical, with the output as the note", async () => {
    const sh = (body: string): Probe => ({ kind: "script", args: ["/bin/sh", "-c", body] });
    expect(await once(sh("echo all fine"))).toEqual({ status: "passing", note: "exit 0: all fine" });
    expect(await once(sh("echo disk 91% >&2; exit 1"))).toEqual({ status: "warning", note: "exit 1: disk 91%" });
    expect(await once(sh("echo down; exit 2"))).toEqual({ status: "critical", note: "exit 2: down" });
    expect(await once(sh("kill -9 $$"))).toEqual({ status: "critical", note: "killed by SIGKILL" });
    const missing = await once({ kind: "script", args: ["/no/such/check"] });
    expect(missing.status).toBe("critical");
    expect(missing.note).toContain("cannot run /no/such/check");
  });

  it("local: output is kept up to CHECK_OUTPUT_BYTES_MAX bytes; the rest is drained and dropped", async () => {
    const exact = await once({ kind: "script", args: ["/bin/sh", "-c", `head -c ${CHECK_OUTPUT_BYTES_MAX} /dev/zero | tr '\\0' x`] });
    expect(exact.note).toBe(`exit 0: ${"x".repeat(CHECK_OUTPUT_BYTES_MAX)}`);
    // A megabyte of output: the script must not block on a full pipe, and the note stays bounded.
    const big = await once({ kind: "script", args: ["/bin/sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' y; exit 1"] }, 5_000);
    expect(big.status).toBe("warning");
    expect(big.note).toBe(`exit 1: ${"y".repeat(CHECK_OUTPUT_BYTES_MAX)} …`);
  });

  it("local: a hung script is killed at its timeout with its children, and the event loop stays free meanwhile", async () => {
    // The script prints its shell's pid and a child's, then hangs.
    const probe: Probe = { kind: "script", args: ["/bin/sh", "-c", "sleep 30 & echo $$ $!; wait"] };
    let ticks = 0;
    let worstGapMs = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worstGapMs = Math.max(worstGapMs, now - last);
      last = now;
      ticks++;
    }, 10);
    const t0 = performance.now();
    const r = await once(probe, 500);
    const tookMs = performance.now() - t0;
    clearInterval(timer);
    expect(r.status).toBe("critical");
    expect(r.note).toMatch(/^timed out after 500 ms: \d+ \d+$/);
    expect(tookMs).toBeGreaterThanOrEqual(490);
    expect(tookMs).toBeLessThan(1_500);
    expect(ticks).toBeGreaterThan(10);
    expect(worstGapMs).toBeLessThan(200);
    const pids = r.note.split(": ")[1]?.split(" ").map(Number) ?? [];
    await new Promise((res) => setTimeout(res, 100));
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(alive(pid), `pid ${pid}`).toBe(false);
  });
});
