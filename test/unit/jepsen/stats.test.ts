import { describe, expect, it } from "vitest";
import type { NemesisRecord, OpRecord } from "../../jepsen/runner/history.js";
import { faultIntervals, healToFirstWriteMs, latencies, longestUnavailable, opCounts, quantile, throughput } from "../../jepsen/runner/stats.js";
import { exitStatus } from "../../jepsen/runner/results.js";
import { combineValidity } from "../../jepsen/workloads/types.js";

let id = 0;
const op = (f: string, status: OpRecord["status"], call: number, ret: number): OpRecord => ({ type: "op", id: id++, process: 0, node: "n1", f, input: {}, status, call, return: ret });

describe("summary stats", () => {
  const ops = [op("get", "ok", 0, 10), op("put", "info", 5, 1_005), op("put", "ok", 20, 40), op("get", "fail", 50, 60), op("put", "ok", 3_000, 3_050)];

  it("stats: counts operations by type and outcome", () => {
    expect(opCounts(ops)).toEqual({ get: { ok: 1, fail: 1, info: 0 }, put: { ok: 2, fail: 0, info: 1 } });
  });

  it("stats: latency quantiles of ok operations, nearest rank", () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(quantile([], 0.5)).toBeUndefined();
    expect(latencies(ops).put).toMatchObject({ count: 2, p50Ms: 20, maxMs: 50 });
  });

  it("stats: heal to first write counts only writes invoked after the heal", () => {
    expect(healToFirstWriteMs(ops, 15, ["put"])).toBe(25);
    expect(healToFirstWriteMs(ops, 100, ["put"])).toBe(2_950);
    expect(healToFirstWriteMs(ops, 5_000, ["put"])).toBeUndefined();
  });

  it("stats: longest unavailable window includes the edges", () => {
    expect(longestUnavailable(ops, 0, 4_000)).toEqual({ from: 40, to: 3_050, ms: 3_010 });
    expect(longestUnavailable(ops, 0, 10_000)).toEqual({ from: 3_050, to: 10_000, ms: 6_950 });
    expect(longestUnavailable([], 100, 200)).toEqual({ from: 100, to: 200, ms: 100 });
  });

  it("stats: throughput buckets by return time; never-completed ops are left out", () => {
    const b = throughput([...ops, op("put", "info", 10, Number.POSITIVE_INFINITY)], 4_000, 1_000);
    expect(b.map((x) => x.ok + x.fail + x.info)).toEqual([3, 1, 0, 1]);
  });

  it("stats: fault intervals pair starts and stops; one left open ends at the heal", () => {
    const ev = (f: string, phase: "start" | "stop", time: number): NemesisRecord => ({ type: "nemesis", f, phase, time, value: [] });
    expect(faultIntervals([ev("kill:one", "start", 1), ev("kill:one", "stop", 2), ev("pause:one", "start", 3), ev("heal", "stop", 9)], 10)).toEqual([
      { f: "kill:one", value: [], from: 1, to: 2 },
      { f: "pause:one", value: [], from: 3, to: 9 },
    ]);
  });

  it("stats: exit status is 0 only when every verdict is valid", () => {
    expect(exitStatus(combineValidity([true, true]))).toBe(0);
    expect(exitStatus(combineValidity([true, "unknown", false]))).toBe(1);
    expect(exitStatus(combineValidity([true, "unknown"]))).toBe(2);
  });
});
