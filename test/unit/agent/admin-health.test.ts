import { afterEach, describe, expect, it } from "vitest";
import { AdminHttp, READY_APPLY_LAG_MAX, readiness } from "../../../src/agent/admin-http.js";

describe("admin /healthz and /readyz", () => {
  const servers: AdminHttp[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  it("readiness: a leader known and applying within READY_APPLY_LAG_MAX of the commit index (at the limit ready, one past it not)", () => {
    expect(readiness(true, { leader: "n1", commit: 5_000, applied: 5_000 - READY_APPLY_LAG_MAX })).toEqual({ ok: true });
    expect(readiness(true, { leader: "n1", commit: 5_001, applied: 5_000 - READY_APPLY_LAG_MAX }).ok).toBe(false);
    expect(readiness(true, { leader: "n1", commit: 5_001, applied: 5_000 - READY_APPLY_LAG_MAX }).reason).toMatch(/behind the commit index/);
    expect(readiness(true, { leader: "", commit: 1, applied: 1 })).toEqual({ ok: false, reason: "no leader known" });
    expect(readiness(false, { leader: "n1", commit: 1, applied: 1 })).toEqual({ ok: false, reason: "node stopped" });
  });

  it("serves /healthz (process up) whatever the node's state, /readyz by readiness, /health as before, and routes before 404", async () => {
    const state = { leader: "", commit: 10, applied: 10 };
    const admin = new AdminHttp({
      status: () => ({ ...state }),
      running: () => true,
      routes: [
        (_req, res, path) => {
          if (path !== "/hello") return false;
          res.writeHead(200).end("hi");
          return true;
        },
      ],
    });
    servers.push(admin);
    const base = `http://127.0.0.1:${await admin.listen("127.0.0.1:0")}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({ ok: false, reason: "no leader known" });
    expect((await fetch(`${base}/health`)).status).toBe(503);
    state.leader = "n2";
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect(await (await fetch(`${base}/hello`)).text()).toBe("hi");
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});
