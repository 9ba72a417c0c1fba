import { describe, expect, it } from "vitest";
import { CRASH_LOOP_RESTARTS, CRASH_LOOP_WINDOW_MS, RESTART_BACKOFF_BASE_MS, RESTART_BACKOFF_CAP_MS, RestartPolicy, STABLE_RUN_MS } from "../../../src/local/restart-policy.js";

/** run starts at `at`, exits `ranMs` later and returns the decision. */
function run(p: RestartPolicy, at: number, ranMs: number) {
  p.started(at);
  return p.exited(at + ranMs);
}

describe("restart policy", () => {
  it("restart policy: the delay doubles from the base up to the cap", () => {
    const p = new RestartPolicy({ crashLoopRestarts: 100 });
    const delays: number[] = [];
    let t = 0;
    for (let i = 0; i < 12; i++) {
      const d = run(p, t, 1);
      if (!("restartInMs" in d)) throw new Error("crash loop too early");
      delays.push(d.restartInMs);
      t += 1 + d.restartInMs;
    }
    expect(delays.slice(0, 5)).toEqual([100, 200, 400, 800, 1_600]);
    expect(Math.max(...delays)).toBe(RESTART_BACKOFF_CAP_MS);
    expect(delays.at(-1)).toBe(RESTART_BACKOFF_CAP_MS);
    expect(RESTART_BACKOFF_BASE_MS).toBe(100);
  });

  it("restart policy: a run of STABLE_RUN_MS resets the backoff; one ms less does not", () => {
    const p = new RestartPolicy();
    expect(run(p, 0, 1)).toEqual({ restartInMs: 100 });
    expect(run(p, 1_000, 1)).toEqual({ restartInMs: 200 });
    expect(run(p, 2_000, STABLE_RUN_MS - 1)).toEqual({ restartInMs: 400 });
    expect(run(p, 20_000, STABLE_RUN_MS)).toEqual({ restartInMs: 100 });
  });

  it("restart policy: CRASH_LOOP_RESTARTS exits within the window restart; the next one is a crash loop", () => {
    const p = new RestartPolicy();
    let t = 0;
    for (let i = 0; i < CRASH_LOOP_RESTARTS; i++) {
      const d = run(p, t, 10);
      expect(d).toHaveProperty("restartInMs");
      t += 1_000;
    }
    expect(run(p, t, 10)).toEqual({ crashLoop: { restarts: CRASH_LOOP_RESTARTS, windowMs: CRASH_LOOP_WINDOW_MS } });
  });

  it("restart policy: exits older than the window do not count (at the window's edge exactly, they are out)", () => {
    const p = new RestartPolicy({ crashLoopRestarts: 2, crashLoopWindowMs: 1_000 });
    expect(run(p, 0, 0)).toHaveProperty("restartInMs"); // exit at 0
    expect(run(p, 100, 0)).toHaveProperty("restartInMs"); // exit at 100
    // Exit at 1000: the one at 0 is exactly one window old and out; two in the window.
    expect(run(p, 1_000, 0)).toHaveProperty("restartInMs");
    // Exit at 1099: 100, 1000, 1099 are three within the window: a crash loop.
    expect(run(p, 1_099, 0)).toEqual({ crashLoop: { restarts: 2, windowMs: 1_000 } });
  });

  it("restart policy: reset forgets the history; bad limits are refused naming the field", () => {
    const p = new RestartPolicy({ crashLoopRestarts: 0 });
    expect(run(p, 0, 0)).toHaveProperty("crashLoop");
    p.reset();
    expect(run(p, 0, 0)).toHaveProperty("crashLoop"); // zero restarts allowed: the first exit ends it
    expect(() => new RestartPolicy({ backoffBaseMs: -1 })).toThrow(/backoffBaseMs/);
    expect(() => new RestartPolicy({ backoffBaseMs: 10, backoffCapMs: 5 })).toThrow(/backoffCapMs/);
  });
});
