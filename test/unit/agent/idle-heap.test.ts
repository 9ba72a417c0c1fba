import { describe, expect, it, vi } from "vitest";
import { REST_CHECKS, REST_CPU_SHARE_MAX, RestDetector, startIdleHeap, WORK_CPU_SHARE_MIN } from "../../../src/agent/idle-heap.js";

describe("idle heap: rest detector", () => {
  it("idle heap: rest after REST_CHECKS quiet checks in a row; a busy check in between starts the count again", () => {
    const d = new RestDetector();
    const quiet = REST_CPU_SHARE_MAX / 2;
    for (let i = 1; i < REST_CHECKS; i++) expect(d.observe(quiet, 1)).toBeUndefined();
    expect(d.observe(REST_CPU_SHARE_MAX, 1)).toBeUndefined(); // at the limit is not quiet
    for (let i = 1; i < REST_CHECKS; i++) expect(d.observe(quiet * 2, 2)).toBeUndefined();
    expect(d.observe(quiet, 1)).toBe("rest");
    expect(d.current).toBe("rest");
    expect(d.observe(quiet, 1)).toBeUndefined();
  });

  it("idle heap: rest ends at WORK_CPU_SHARE_MIN, not between the two lines; a zero-length check changes nothing", () => {
    const d = new RestDetector({ restShareMax: 0.1, workShareMin: 0.2, restChecks: 1 });
    expect(d.observe(0.01, 1)).toBe("rest");
    expect(d.observe(0.15, 1)).toBeUndefined();
    expect(d.observe(5, 0)).toBeUndefined();
    expect(d.observe(0.4, 2)).toBe("work");
    expect(d.observe(0.15, 1)).toBeUndefined();
    expect(d.current).toBe("work");
    expect(WORK_CPU_SHARE_MIN).toBeGreaterThan(REST_CPU_SHARE_MAX);
  });

  it("idle heap: the controller sets V8's flag at rest, clears it at work and at stop", () => {
    vi.useFakeTimers();
    const flags: string[] = [];
    let cpu = 0;
    const idle = startIdleHeap({ checkMs: 1000, cpuMicros: () => cpu, now: () => Date.now(), apply: (state) => flags.push(state === "rest" ? "--optimize-for-size" : "--no-optimize-for-size"), detector: new RestDetector({ restShareMax: 0.1, workShareMin: 0.2, restChecks: 2 }) });
    try {
      vi.advanceTimersByTime(1000);
      expect(flags).toEqual([]);
      vi.advanceTimersByTime(1000);
      expect(flags).toEqual(["--optimize-for-size"]);
      expect(idle.state()).toBe("rest");
      // Half a core over the next check: work.
      cpu += 500_000;
      vi.advanceTimersByTime(1000);
      expect(flags).toEqual(["--optimize-for-size", "--no-optimize-for-size"]);
      vi.advanceTimersByTime(2000);
      expect(idle.state()).toBe("rest");
    } finally {
      idle.stop();
      vi.useRealTimers();
    }
    expect(flags).toEqual(["--optimize-for-size", "--no-optimize-for-size", "--optimize-for-size", "--no-optimize-for-size"]);
  });
});
