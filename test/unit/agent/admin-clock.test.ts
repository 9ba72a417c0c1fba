import { afterEach, describe, expect, it } from "vitest";
import { AdminHttp, TEST_CLOCK_OFFSET_MS_MAX } from "../../../src/agent/admin-http.js";
import { WallClock } from "../../../src/agent/clock.js";

describe("admin clock control", () => {
  const servers: AdminHttp[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  async function start(clock?: WallClock): Promise<string> {
    const admin = new AdminHttp({ status: () => ({ leader: "n1" }), running: () => true, clock });
    servers.push(admin);
    return `http://127.0.0.1:${await admin.listen("127.0.0.1:0")}`;
  }

  it("admin: POST /test/clock shifts the wall clock only when the control is on, within its bound", async () => {
    const clock = new WallClock();
    const base = await start(clock);
    const before = Date.now();
    expect((await fetch(`${base}/test/clock?offset_ms=600000`, { method: "POST" })).status).toBe(200);
    expect(clock.now() - before).toBeGreaterThanOrEqual(600_000);
    expect((await fetch(`${base}/test/clock?offset_ms=abc`, { method: "POST" })).status).toBe(400);
    expect((await fetch(`${base}/test/clock?offset_ms=${TEST_CLOCK_OFFSET_MS_MAX + 1}`, { method: "POST" })).status).toBe(400);
    expect(clock.offset).toBe(600_000);
    // At the bound (a week, either way) it is taken: the clock nemesis jumps by days.
    expect((await fetch(`${base}/test/clock?offset_ms=${-TEST_CLOCK_OFFSET_MS_MAX}`, { method: "POST" })).status).toBe(200);
    expect(clock.offset).toBe(-TEST_CLOCK_OFFSET_MS_MAX);
    expect(TEST_CLOCK_OFFSET_MS_MAX).toBeGreaterThanOrEqual(2 * 24 * 3_600_000);
    const off = await start();
    expect((await fetch(`${off}/test/clock?offset_ms=5`, { method: "POST" })).status).toBe(405);
    expect((await fetch(`${off}/test/clock`)).status).toBe(404);
  });
});
