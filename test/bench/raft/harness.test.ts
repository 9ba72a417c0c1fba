import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FailoverTimeoutError } from "./errors.js";
import { type Cluster, runFailover } from "./failover.js";
import { LOAD_CONCURRENCY_LIMIT, LOAD_OPS_LIMIT, runLoad } from "./load.js";
import { PacedWriter } from "./paced-writer.js";
import { formatTable, median, percentile, summarizeLatencies } from "./stats.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("bench stats", () => {
  it("stats: percentile is nearest-rank", () => {
    const xs = [50, 15, 40, 20, 35];
    expect([0, 30, 40, 50, 100].map((p) => percentile(xs, p))).toEqual([15, 20, 20, 35, 50]);
  });

  it("stats: percentile matches a sort-and-index reference", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: 1 }), fc.integer({ min: 1, max: 100 }), (xs, p) => {
        const sorted = [...xs].sort((a, b) => a - b);
        expect(Object.is(percentile(xs, p), sorted[Math.ceil((p / 100) * xs.length) - 1])).toBe(true);
      }),
    );
  });

  it("stats: percentile rejects p outside [0, 100]", () => {
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], -1)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });

  it("stats: median averages the middle pair and is NaN without samples", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it("stats: summarizeLatencies reports p50, p99 and max", () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(summarizeLatencies(xs)).toEqual({ count: 100, p50Ms: 50, p99Ms: 99, maxMs: 100 });
    expect(summarizeLatencies([]).maxMs).toBeNaN();
  });

  it("stats: formatTable pads columns and right-aligns numbers", () => {
    const text = formatTable(["name", "n"], [["a", 5], ["bbb", 12345], ["c", Number.NaN]]);
    expect(text.split("\n")).toEqual(["name      n", "----  -----", "a         5", "bbb   12345", "c         -"]);
    expect(() => formatTable(["x"], [[1, 2]])).toThrow(RangeError);
  });
});

describe("bench load", () => {
  it("load: stops at maxOps with a unique key per op", async () => {
    const keys = new Set<string>();
    const r = await runLoad({ put: async (key) => void keys.add(key), concurrency: 8, durationMs: 10_000, maxOps: 1_000 });
    expect(r.ops).toBe(1_000);
    expect(keys.size).toBe(1_000);
    expect(r.errors).toBe(0);
  });

  it("load: stops at durationMs and counts failures apart from latencies", async () => {
    let n = 0;
    const put = async () => {
      await sleep(1);
      if (n++ % 2 === 0) throw new Error("odd one out");
    };
    const r = await runLoad({ put, concurrency: 4, durationMs: 100 });
    expect(r.seconds).toBeGreaterThanOrEqual(0.1);
    expect(r.seconds).toBeLessThan(1);
    expect(r.errors).toBeGreaterThan(0);
    expect(r.ops).toBeGreaterThan(0);
    expect(r.firstError).toBe("odd one out");
    expect(r.p50Ms).toBeGreaterThanOrEqual(1);
  });

  it("load: rejects budgets outside the limits", async () => {
    const put = async () => {};
    await expect(runLoad({ put, concurrency: 0 })).rejects.toThrow(RangeError);
    await expect(runLoad({ put, concurrency: LOAD_CONCURRENCY_LIMIT + 1 })).rejects.toThrow(RangeError);
    await expect(runLoad({ put, concurrency: 1, maxOps: LOAD_OPS_LIMIT + 1 })).rejects.toThrow(RangeError);
  });
});

describe("bench failover", () => {
  it("paced writer: reports the first ack of a put sent after the mark, not one sent before", async () => {
    const outageMs = 50;
    let markMs: number | undefined;
    const put = async () => {
      const sentMs = performance.now();
      // Puts sent before the mark answer 30 ms later, inside the outage; they must not count.
      if (markMs === undefined) return sleep(30);
      if (sentMs < markMs + outageMs) throw new Error("down");
      await sleep(1);
    };
    const writer = new PacedWriter({ put, intervalMs: 5, valueBytes: 8, keyPrefix: "t" });
    writer.start();
    await sleep(40);
    const t0 = writer.mark();
    markMs = t0;
    const ack = await writer.firstAckAfterMark(1_000);
    await writer.stop();
    expect(ack).toBeDefined();
    expect((ack ?? 0) - t0).toBeGreaterThanOrEqual(outageMs);
    expect(writer.snapshot().failed).toBeGreaterThan(0);
    expect(writer.snapshot().acked).toBeGreaterThan(1);
  });

  it("failover: measures from the kill to the first write acknowledged after it", async () => {
    const outageMs = 80;
    let downUntilMs = 0;
    let leader = "a";
    const restarted: string[] = [];
    const cluster: Cluster = {
      leader: async () => leader,
      kill: async (id) => {
        downUntilMs = performance.now() + outageMs;
        leader = id === "a" ? "b" : "a";
      },
      restart: async (id) => void restarted.push(id),
      put: async () => {
        if (performance.now() < downUntilMs) throw new Error("no leader");
      },
    };
    const r = await runFailover({ cluster, rounds: 2, warmupMs: 20 });
    expect(r.rounds.map((x) => x.killedId)).toEqual(["a", "b"]);
    expect(restarted).toEqual(["a", "b"]);
    for (const ms of r.failoverMs) {
      expect(ms).toBeGreaterThanOrEqual(outageMs);
      expect(ms).toBeLessThan(outageMs + 100);
    }
    expect(r.maxMs).toBe(Math.max(...r.failoverMs));
  });

  it("failover: gives up with FailoverTimeoutError and still restarts the member", async () => {
    let dead = false;
    const restarted: string[] = [];
    const cluster: Cluster = {
      leader: async () => "a",
      kill: async () => void (dead = true),
      restart: async (id) => {
        dead = false;
        restarted.push(id);
      },
      put: async () => {
        if (dead) throw new Error("no leader");
      },
    };
    await expect(runFailover({ cluster, rounds: 1, warmupMs: 20, roundTimeoutMs: 50 })).rejects.toBeInstanceOf(FailoverTimeoutError);
    expect(restarted).toEqual(["a"]);
  });
});
