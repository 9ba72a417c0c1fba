import { describe, expect, it } from "vitest";
import { parseRunOptions, UsageError } from "../../jepsen/runner/options.js";
import { canReceive, deafLeader, pickPartition, PARTITION_NAMES } from "../../jepsen/runner/partitions.js";
import { Rng } from "../../jepsen/runner/rng.js";
import { checkRegister } from "../../jepsen/workloads/register.js";
import type { OpRecord } from "../../jepsen/runner/history.js";

const nodes = ["n1", "n2", "n3", "n4", "n5"];

describe("runner options", () => {
  it("options: the documented command line parses, with defaults", () => {
    const o = parseRunOptions(["--workload", "register", "--nemesis", "partition,kill,pause", "--time-limit", "60", "--seed", "7"], 1);
    expect(o).toMatchObject({ workload: "register", nemesis: ["partition", "kill", "pause"], timeLimitMs: 60_000, seed: 7, cluster: "netns", unsafeBlindRetry: false });
    expect(parseRunOptions([], 42).seed).toBe(42);
    expect(parseRunOptions(["--nemesis", "none", "--unsafe", "stale-reads"], 1)).toMatchObject({ nemesis: [], unsafe: ["stale-reads"] });
    expect(parseRunOptions([], 1)).toMatchObject({ clients: "roaming", partitions: [...PARTITION_NAMES] });
    expect(parseRunOptions(["--workload", "lease", "--clients", "pinned", "--partitions", "isolate-leader", "--unsafe", "unconfirmed-lease-ack"], 1)).toMatchObject({
      clients: "pinned",
      partitions: ["isolate-leader"],
      unsafe: ["unconfirmed-lease-ack"],
    });
  });

  it("options: deaf-leader with snapshots every 100 entries and 8 s deadlines", () => {
    const o = parseRunOptions(["--nemesis", "deaf-leader", "--snapshot-entries", "100", "--op-timeout-ms", "8000"], 1);
    expect(o).toMatchObject({ nemesis: ["deaf-leader"], snapshotEntries: 100, opTimeoutMs: 8_000 });
    expect(parseRunOptions([], 1).snapshotEntries).toBeUndefined();
    // The agent refuses fewer than 100 (SNAPSHOT_ENTRIES_RANGE): the runner says so before starting anything.
    expect(() => parseRunOptions(["--snapshot-entries", "99"], 1)).toThrow(UsageError);
  });

  it("options: bad usage is a UsageError", () => {
    for (const argv of [["--workload", "nope"], ["--time-limit", "x"], ["--bogus"], ["--nemesis", "flood"], ["--unsafe", "fsync"], ["--workload", "set", "--unsafe-blind-retry"], ["--clients", "pinned"], ["--workload", "lease", "--clients", "mobile"], ["--partitions", "isolate-all"], ["--partitions", ","]]) {
      expect(() => parseRunOptions(argv, 1)).toThrow(UsageError);
    }
  });
});

describe("partition shapes", () => {
  it("partitions: every shape leaves some node seeing a majority, and the same seed gives the same shape", () => {
    for (const name of PARTITION_NAMES) {
      const a = pickPartition(name, nodes, new Rng(9), "n2");
      expect(pickPartition(name, nodes, new Rng(9), "n2")).toEqual(a);
      const sees = (n: string) => nodes.filter((m) => canReceive(a, m, n)).length;
      expect(nodes.some((n) => sees(n) >= 3), name).toBe(true);
    }
  });

  it("partitions: deaf-leader: the leader hears nobody, everybody hears the leader and each other", () => {
    const deaf = deafLeader(nodes, new Rng(3), "n2");
    expect(deaf.name).toBe("deaf-leader");
    for (const n of nodes.filter((m) => m !== "n2")) {
      expect(canReceive(deaf, n, "n2")).toBe(false);
      expect(canReceive(deaf, "n2", n)).toBe(true);
      for (const m of nodes.filter((k) => k !== "n2")) expect(canReceive(deaf, m, n)).toBe(true);
    }
    expect(deafLeader(nodes, new Rng(3), undefined).name).toBe("deaf-node");
  });

  it("partitions: isolate-leader cuts the leader off both ways; the majorities ring gives each node a different majority", () => {
    const iso = pickPartition("isolate-leader", nodes, new Rng(1), "n4");
    expect(nodes.filter((n) => n !== "n4").every((n) => !canReceive(iso, n, "n4") && !canReceive(iso, "n4", n))).toBe(true);
    const ring = pickPartition("majorities-ring", nodes, new Rng(1), undefined);
    const views = nodes.map((n) => nodes.filter((m) => canReceive(ring, m, n)).sort().join(","));
    expect(views.every((v) => v.split(",").length === 3)).toBe(true);
    expect(new Set(views).size).toBe(5);
  });
});

describe("register verdict", () => {
  let id = 0;
  const rec = (input: object, status: OpRecord["status"], call: number, ret: number, output?: unknown): OpRecord => ({
    type: "op",
    id: id++,
    process: id,
    node: "n1",
    f: (input as { f: string }).f,
    input,
    status,
    call,
    return: ret,
    ...(output === undefined ? {} : { output }),
  });

  it("register: a stale read is not linearizable; an indeterminate write may explain a read", () => {
    const stale = checkRegister([rec({ f: "put", key: "k", value: "a" }, "ok", 0, 10), rec({ f: "put", key: "k", value: "b" }, "ok", 20, 30), rec({ f: "get", key: "k" }, "ok", 40, 50, "a")], 1_000);
    expect(stale.valid).toBe(false);
    expect(stale.anomalies[0]?.example.length).toBeGreaterThan(0);
    const maybe = checkRegister([rec({ f: "put", key: "k", value: "a" }, "info", 0, 10), rec({ f: "get", key: "k" }, "ok", 40, 50, "a")], 1_000);
    expect(maybe.valid).toBe(true);
  });

  it("register: a cas recorded false whose value is later read is caught (what a blind retry produces)", () => {
    const r = checkRegister(
      [rec({ f: "put", key: "k", value: "a" }, "ok", 0, 10), rec({ f: "cas", key: "k", expected: "a", value: "b" }, "ok", 20, 300, false), rec({ f: "get", key: "k" }, "ok", 400, 410, "b")],
      1_000,
    );
    expect(r.valid).toBe(false);
  });
});
