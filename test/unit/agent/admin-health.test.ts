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

  it("readiness: a part that takes traffic and does not serve yet (the balancing endpoint) makes a caught-up node not ready, with its reason", () => {
    expect(readiness(true, { leader: "n1", commit: 1, applied: 1 }, "balancing endpoint not listening yet")).toEqual({ ok: false, reason: "balancing endpoint not listening yet" });
    expect(readiness(true, { leader: "n1", commit: 1, applied: 1 }, undefined)).toEqual({ ok: true });
    // The node's own state comes first: a node with no leader says so, not that its endpoint starts.
    expect(readiness(true, { leader: "", commit: 1, applied: 1 }, "balancing endpoint not listening yet").reason).toBe("no leader known");
  });

  it("serves /healthz (process up) whatever the node's state, /readyz by readiness, /health as before, and routes before 404", async () => {
    const state = { leader: "", commit: 10, applied: 10 };
    let endpoint: string | undefined = "balancing endpoint not listening yet";
    const admin = new AdminHttp({
      status: () => ({ ...state }),
      running: () => true,
      notServing: () => endpoint,
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
    const starting = await fetch(`${base}/readyz`);
    expect(starting.status).toBe(503);
    expect(await starting.json()).toMatchObject({ ok: false, reason: "balancing endpoint not listening yet", leader: "n2" });
    endpoint = undefined;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect(await (await fetch(`${base}/hello`)).text()).toBe("hi");
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});
