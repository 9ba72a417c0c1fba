import { afterEach, describe, expect, it } from "vitest";
import { type BackendRecord, DemoBackend, EPOCH_HEADER, type MasterView, PROMOTION_WAIT_MS_MAX, WRITE_BODY_BYTES_MAX } from "../../../src/demo/backend.js";
import { DemoUsageError } from "../../../src/demo/errors.js";
import { hostClock, parseDemoArgs } from "../../../src/demo/main.js";

/** view is a hand-set master view (the session's timing has its own tests). */
function view(master: boolean, epoch: number, newest = epoch): MasterView & { master: boolean; e: number; n: number } {
  return {
    master,
    e: epoch,
    n: newest,
    isMaster() {
      return this.master;
    },
    get epoch() {
      return this.master ? this.e : 0;
    },
    get newestEpoch() {
      return this.n;
    },
  };
}

const open: DemoBackend[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
});

async function start(v: MasterView) {
  const records: BackendRecord[] = [];
  const b = new DemoBackend({ id: "a", session: v, now: () => 1, record: (r) => records.push(r) });
  open.push(b);
  const port = await b.listen(0);
  const call = async (method: string, path: string, epoch?: string, body?: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers: epoch === undefined ? {} : { [EPOCH_HEADER]: epoch }, ...(body === undefined ? {} : { body }) });
    return { code: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return { b, call, records, port };
}

describe("demo backend", () => {
  it("demo: the master accepts writes with its own epoch or none", async () => {
    const { call, records } = await start(view(true, 12));
    expect(await call("POST", "/write", "12", "x")).toEqual({ code: 200, body: { id: "a", epoch: 12, seq: 1 } });
    expect((await call("POST", "/write")).code).toBe(200);
    expect(records.map((r) => r.type)).toEqual(["write", "write"]);
  });

  it("demo: a request with an epoch older than the newest seen is refused with 409, reads too", async () => {
    const { call } = await start(view(true, 12));
    const w = await call("POST", "/write", "11", "x");
    expect(w.code).toBe(409);
    expect(w.body).toMatchObject({ error: "stale-epoch", requestEpoch: 11, newestEpoch: 12 });
    expect((await call("GET", "/read", "11")).body).toMatchObject({ error: "stale-epoch" });
  });

  it("demo: a newer epoch in a request makes the backend's own epoch stale", async () => {
    const { call, b } = await start(view(true, 12));
    expect((await call("POST", "/write", "20", "x")).body).toMatchObject({ error: "epoch-mismatch", newestEpoch: 20 });
    expect(b.newestEpoch).toBe(20);
    expect((await call("POST", "/write", "12", "x")).body).toMatchObject({ error: "stale-epoch", newestEpoch: 20 });
  });

  it("demo: a standby refuses writes and answers reads", async () => {
    const { call } = await start(view(false, 0, 30));
    expect((await call("POST", "/write", "30", "x")).body).toMatchObject({ error: "not-master" });
    expect(await call("GET", "/read", "30")).toMatchObject({ code: 200, body: { role: "standby", newestEpoch: 30 } });
    expect(await call("GET", "/status")).toMatchObject({ code: 200, body: { role: "standby" } });
  });

  it("demo: a write sent to a standby as master of an epoch it is not master of asks the cluster at once and is accepted once the session is promoted", async () => {
    let nudges = 0;
    const v = Object.assign(view(false, 0, 30), { heartbeatNow: () => void nudges++ });
    const { call, b, records } = await start(v);
    const t0 = performance.now();
    const w = call("POST", "/write", "31", "x");
    while (nudges === 0) await new Promise((r) => setTimeout(r, 5));
    // The session's answer arrives: it is master of 31 now.
    v.master = true;
    v.e = 31;
    v.n = 31;
    b.roleChanged();
    expect(await w).toEqual({ code: 200, body: { id: "a", epoch: 31, seq: 1 } });
    expect(performance.now() - t0).toBeLessThan(PROMOTION_WAIT_MS_MAX);
    expect(nudges).toBe(1);
    expect(records.map((r) => r.type)).toEqual(["write"]);
  });

  it("demo: a standby not promoted within PROMOTION_WAIT_MS_MAX refuses the write (not-master); a promotion to another epoch is refused too", async () => {
    const v = view(false, 0, 30);
    const { call, b } = await start(v);
    const t0 = performance.now();
    expect((await call("POST", "/write", "31", "x")).body).toMatchObject({ error: "not-master" });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(PROMOTION_WAIT_MS_MAX - 5);
    // Promoted, but as master of 32: the write meant for the master of 31 is not taken.
    const w = call("POST", "/write", "31", "x");
    await new Promise((r) => setTimeout(r, 20));
    v.master = true;
    v.e = 32;
    v.n = 32;
    b.roleChanged();
    expect((await w).body).toMatchObject({ error: "stale-epoch" });
  });

  it("demo: a bad epoch header is a 400 naming the header; a body over the limit is a 413", async () => {
    const { call, port } = await start(view(true, 12));
    const r = await call("POST", "/write", "-1", "x");
    expect(r.code).toBe(400);
    expect(String(r.body.message)).toContain(EPOCH_HEADER);
    expect((await call("POST", "/write", "12", "x".repeat(WRITE_BODY_BYTES_MAX))).code).toBe(200);
    const big = await fetch(`http://127.0.0.1:${port}/write`, { method: "POST", body: "x".repeat(WRITE_BODY_BYTES_MAX + 1) }).catch(() => undefined);
    expect(big === undefined || big.status === 413).toBe(true);
  });

  it("demo: arguments name the flag at fault; unsafe switches come only from RAFTMESH_TEST_UNSAFE", () => {
    const base = ["--endpoints", "127.0.0.1:7201", "--service", "db", "--id", "a", "--listen", "127.0.0.1:0"];
    expect(parseDemoArgs(base, {})).toMatchObject({ ttlMs: 3_000, marginMs: undefined, unsafe: [] });
    expect(parseDemoArgs(base, { RAFTMESH_TEST_UNSAFE: "zero-demotion-margin" })).toMatchObject({ marginMs: 0 });
    expect(() => parseDemoArgs(base, { RAFTMESH_TEST_UNSAFE: "nope" })).toThrow(DemoUsageError);
    expect(() => parseDemoArgs(base.slice(2), {})).toThrow(/--endpoints/);
    expect(() => parseDemoArgs([...base, "--ttl-ms", "x"], {})).toThrow(/--ttl-ms/);
  });

  it("demo: the slow-clock control's session clock runs at the given rate and converts back to host time", async () => {
    const c = hostClock(0.5);
    const t0 = c.now();
    await new Promise((r) => setTimeout(r, 200));
    const elapsed = c.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(99);
    expect(elapsed).toBeLessThan(200);
    expect(c.toHost(t0 + 100) - c.toHost(t0)).toBeCloseTo(200, 6);
  });
});
