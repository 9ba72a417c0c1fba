import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { classifyOp, type Operation, type OpStatus } from "../../jepsen/checker/history.js";
import { checkLinearizable } from "../../jepsen/checker/linearizability.js";
import {
  type KvInput,
  kvAppendModel,
  type MeshKvInput,
  type MeshKvOutput,
  meshKvModel,
  type RegisterInput,
  type RegisterOutput,
  type RegisterValue,
  registerModel,
} from "../../jepsen/checker/models.js";
import {
  loadDatasets,
  parseEtcdLog,
  parseKvHistory,
  parseVerdicts,
} from "../../jepsen/checker/parse-jepsen.js";

// Reference histories with known verdicts, kept in the repository (test/fixtures/linearizability,
// see its README for their source and licence) so a fresh clone tests the checker on its own.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const dataDir = path.resolve(repoRoot, "test", "fixtures", "linearizability");

/** Generous for histories that take milliseconds; running out still fails the test. */
const DATASET_BUDGET_MS = 20_000;

type RegOp = Operation<RegisterInput, RegisterOutput>;

function op<I, O>(
  clientId: number,
  call: number,
  ret: number,
  input: I,
  output: O | undefined,
  status: OpStatus = "ok",
): Operation<I, O> {
  return { clientId, input, output, call, return: ret, status };
}
const write = (c: number, call: number, ret: number, value: RegisterValue, status?: OpStatus) =>
  op<RegisterInput, RegisterOutput>(c, call, ret, { f: "write", value }, undefined, status);
const read = (c: number, call: number, ret: number, value: RegisterValue | null) =>
  op<RegisterInput, RegisterOutput>(c, call, ret, { f: "read" }, value);
const cas = (
  c: number,
  call: number,
  ret: number,
  from: RegisterValue,
  to: RegisterValue,
  swapped: boolean | undefined,
  status?: OpStatus,
) => op<RegisterInput, RegisterOutput>(c, call, ret, { f: "cas", from, to }, swapped, status);
/** An indeterminate write: the client never learned whether it happened. */
const lostWrite = (c: number, call: number, value: RegisterValue) =>
  write(c, call, Number.POSITIVE_INFINITY, value, "info");

const verdictOf = (history: RegOp[]) => checkLinearizable(registerModel, history).verdict;

/**
 * bruteForce decides linearizability by trying every subset of the indeterminate operations and
 * every order of the chosen ones that respects real time (a before b when a returns strictly
 * before b is called). Exponential, for histories of a handful of operations only.
 */
function bruteForce(history: RegOp[]): boolean {
  const ops = history.filter((o) => classifyOp(o) !== "dropped");
  const maybe = ops.filter((o) => classifyOp(o) === "indeterminate");
  const ret = (o: RegOp) =>
    classifyOp(o) === "indeterminate" ? Number.POSITIVE_INFINITY : o.return;
  const orderFrom = (left: RegOp[], state: RegisterValue | null): boolean => {
    if (left.length === 0) return true;
    return left.some((o) => {
      if (left.some((p) => p !== o && ret(p) < o.call)) return false;
      const out = classifyOp(o) === "completed" ? o.output : undefined;
      const r = registerModel.step(state, o.input, out);
      return r.ok && orderFrom(left.filter((p) => p !== o), r.state);
    });
  };
  for (let mask = 0; mask < 1 << maybe.length; mask++) {
    const chosen = ops.filter(
      (o) => classifyOp(o) === "completed" || (mask >> maybe.indexOf(o)) & 1,
    );
    if (orderFrom(chosen, registerModel.init())) return true;
  }
  return false;
}

/** mulberry32: a seeded generator, so a failing random history can be reproduced. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function randomHistory(rand: () => number): RegOp[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const n = 1 + Math.floor(rand() * 6);
  const ops: RegOp[] = [];
  for (let c = 0; c < n; c++) {
    // Small integer times, so that equal call and return times are common.
    const call = Math.floor(rand() * 8);
    const ret = call + Math.floor(rand() * 4);
    const kind = pick(["read", "write", "cas"] as const);
    const roll = rand();
    const status: OpStatus = roll < 0.7 ? "ok" : roll < 0.85 ? "info" : "fail";
    // An info op sometimes has a finite return (the client gave up): it may still happen later.
    const end = status === "info" && rand() < 0.5 ? Number.POSITIVE_INFINITY : ret;
    if (kind === "read") {
      const value = status === "ok" ? pick([null, 1, 2]) : undefined;
      ops.push(op(c, call, end, { f: "read" }, value, status));
    } else if (kind === "write") {
      ops.push(write(c, call, end, pick([1, 2]), status));
    } else {
      // A failed cas is either a failed compare (output false) or not executed (no output).
      const swapped =
        status === "ok" ? rand() < 0.5 : status === "fail" && rand() < 0.7 ? false : undefined;
      ops.push(cas(c, call, end, pick([1, 2]), pick([1, 2]), swapped, status));
    }
  }
  return ops;
}

describe("checker: behaviour", () => {
  describe("register histories made by hand", () => {
    it("accepts the empty history", () => {
      const r = checkLinearizable(registerModel, []);
      expect(r.verdict).toBe("linearizable");
      expect(r.perPartition).toHaveLength(1);
    });

    it("accepts a sequential history and rejects a stale read", () => {
      expect(verdictOf([write(0, 0, 1, 1), read(1, 2, 3, 1)])).toBe("linearizable");
      expect(verdictOf([read(1, 0, 1, null), write(0, 2, 3, 1), read(1, 4, 5, null)])).toBe(
        "not-linearizable",
      );
    });

    it("lets a read concurrent with a write see either value", () => {
      expect(verdictOf([write(0, 0, 10, 1), read(1, 2, 3, null)])).toBe("linearizable");
      expect(verdictOf([write(0, 0, 10, 1), read(1, 2, 3, 1)])).toBe("linearizable");
      expect(verdictOf([write(0, 0, 10, 1), read(1, 2, 3, 2)])).toBe("not-linearizable");
    });

    it("rejects a read seeing a value before its write was invoked", () => {
      expect(verdictOf([read(1, 0, 1, 1), write(0, 2, 3, 1)])).toBe("not-linearizable");
    });

    it("rejects reads that go back to an older value in real time", () => {
      // The write is concurrent with both reads, but once one read saw 1, a later one cannot
      // see nil.
      const h = [write(0, 0, 10, 1), read(1, 1, 2, 1), read(2, 3, 4, null)];
      expect(verdictOf(h)).toBe("not-linearizable");
      // With the reads overlapping, the nil read may come first.
      expect(verdictOf([write(0, 0, 10, 1), read(1, 1, 4, 1), read(2, 3, 5, null)])).toBe(
        "linearizable",
      );
    });

    it("finds the one order of concurrent writes that explains the reads", () => {
      const h = [
        write(0, 0, 10, 1),
        write(1, 0, 10, 2),
        write(2, 0, 10, 3),
        read(3, 11, 12, 2),
        read(4, 1, 2, 3),
        read(5, 3, 4, 1),
      ];
      expect(verdictOf(h)).toBe("linearizable");
      expect(verdictOf([...h, read(6, 13, 14, 1)])).toBe("not-linearizable");
    });

    it("accepts an indeterminate write that took effect", () => {
      expect(verdictOf([lostWrite(0, 0, 1), read(1, 5, 6, 1), read(1, 7, 8, 1)])).toBe(
        "linearizable",
      );
    });

    it("accepts an indeterminate write that never took effect", () => {
      const h = [write(0, 0, 1, 2), lostWrite(1, 2, 1), read(2, 5, 6, 2), read(2, 100, 101, 2)];
      expect(verdictOf(h)).toBe("linearizable");
    });

    it("lets an indeterminate write take effect long after the client gave up on it", () => {
      // Status info with a finite return: the request may still be applied after that time.
      const h = [write(0, 0, 3, 1, "info"), read(1, 4, 5, null), read(1, 50, 51, 1)];
      expect(verdictOf(h)).toBe("linearizable");
    });

    it("rejects an indeterminate write seen before its call or undone after being seen", () => {
      expect(verdictOf([read(1, 0, 1, 1), lostWrite(0, 2, 1)])).toBe("not-linearizable");
      const undone = [lostWrite(0, 0, 1), read(1, 1, 2, 1), read(1, 3, 4, null)];
      expect(verdictOf(undone)).toBe("not-linearizable");
    });

    it("applies an indeterminate cas only if its compare holds", () => {
      const h = [write(0, 0, 1, 1), cas(1, 2, Number.POSITIVE_INFINITY, 1, 2, undefined, "info")];
      expect(verdictOf([...h, read(2, 5, 6, 2)])).toBe("linearizable");
      expect(verdictOf([...h, read(2, 5, 6, 1)])).toBe("linearizable");
      const wrongFrom = [
        write(0, 0, 1, 1),
        cas(1, 2, Number.POSITIVE_INFINITY, 3, 2, undefined, "info"),
      ];
      expect(verdictOf([...wrongFrom, read(2, 5, 6, 2)])).toBe("not-linearizable");
    });

    it("checks a cas that swapped against the value it replaced", () => {
      const h = [write(0, 0, 1, 1), cas(1, 2, 3, 1, 2, true)];
      expect(verdictOf([...h, read(2, 4, 5, 2)])).toBe("linearizable");
      expect(verdictOf([...h, read(2, 4, 5, 1)])).toBe("not-linearizable");
      expect(verdictOf([write(0, 0, 1, 3), cas(1, 2, 3, 1, 2, true)])).toBe("not-linearizable");
    });

    it("keeps a failed cas whose compare failed: it observed the value", () => {
      // status fail WITH an output is a completed, read-like operation.
      const failed = cas(1, 2, 3, 1, 2, false, "fail");
      expect(classifyOp(failed)).toBe("completed");
      expect(verdictOf([write(0, 0, 1, 1), failed])).toBe("not-linearizable");
      expect(verdictOf([write(0, 0, 1, 3), failed, read(2, 4, 5, 3)])).toBe("linearizable");
      // Reported as ok with output false, it means the same.
      expect(verdictOf([write(0, 0, 1, 1), cas(1, 2, 3, 1, 2, false)])).toBe("not-linearizable");
    });

    it("drops a fail that was never executed", () => {
      // status fail WITHOUT an output: rejected before execution, as if never sent.
      const rejected = write(0, 0, 1, 1, "fail");
      expect(classifyOp(rejected)).toBe("dropped");
      expect(verdictOf([rejected, read(1, 2, 3, null)])).toBe("linearizable");
      expect(verdictOf([rejected, read(1, 2, 3, 1)])).toBe("not-linearizable");
      const rejectedCas = cas(0, 0, 1, 1, 2, undefined, "fail");
      expect(classifyOp(rejectedCas)).toBe("dropped");
    });

    it("treats intervals that only touch (return time = call time) as concurrent", () => {
      // The write returns at 5 and the read is called at 5: equal times cannot show which came
      // first, so the read may be ordered before the write.
      expect(verdictOf([write(0, 0, 5, 1), read(1, 5, 6, null)])).toBe("linearizable");
      expect(verdictOf([write(0, 0, 5, 1), read(1, 6, 7, null)])).toBe("not-linearizable");
      // An operation may also take no time at all.
      expect(verdictOf([write(0, 3, 3, 1), read(1, 3, 3, 1)])).toBe("linearizable");
    });

    it("explains a violation with the longest prefix and the operation that got stuck", () => {
      const stale = read(2, 5, 6, null);
      const h = [write(0, 0, 1, 1), read(1, 2, 3, 1), stale];
      const r = checkLinearizable(registerModel, h);
      const v = r.perPartition[0]?.violation;
      expect(r.verdict).toBe("not-linearizable");
      expect(v?.longestPrefix).toEqual([h[0], h[1]]);
      expect(v?.stateAfterPrefix).toBe("1");
      expect(v?.blocking).toBe(stale);
      expect(v?.pending).toEqual([stale]);
      expect(v?.message).toContain("read() = nil");
    });

    it("rejects impossible operation times", () => {
      expect(() => checkLinearizable(registerModel, [read(0, 5, 4, null)])).toThrow(RangeError);
      const okNeverReturned = write(0, 0, Number.POSITIVE_INFINITY, 1, "ok");
      expect(() => checkLinearizable(registerModel, [okNeverReturned])).toThrow(RangeError);
    });

    it("agrees with a brute-force search on 3000 small random histories", () => {
      const rand = prng(20240611);
      for (let i = 0; i < 3000; i++) {
        const h = randomHistory(rand);
        const expected = bruteForce(h) ? "linearizable" : "not-linearizable";
        const got = checkLinearizable(registerModel, h).verdict;
        if (got !== expected) {
          expect.fail(`history ${i}: got ${got}, expected ${expected}: ${JSON.stringify(h)}`);
        }
      }
    });
  });

  describe("key-value models", () => {
    const get = (c: number, call: number, ret: number, key: string, value: string | null) =>
      op<MeshKvInput, MeshKvOutput>(c, call, ret, { f: "get", key }, value);
    const put = (c: number, call: number, ret: number, key: string, value: string) =>
      op<MeshKvInput, MeshKvOutput>(c, call, ret, { f: "put", key, value }, undefined);
    const meshCas = (
      c: number,
      call: number,
      ret: number,
      key: string,
      expected: string | null,
      value: string,
      swapped: boolean,
    ) => op<MeshKvInput, MeshKvOutput>(c, call, ret, { f: "cas", key, expected, value }, swapped);

    it("checks each key of the raftmesh KV on its own", () => {
      const h = [
        get(0, 0, 1, "a", null),
        put(0, 2, 3, "a", "1"),
        put(1, 2, 3, "b", "x"),
        meshCas(2, 4, 5, "a", "1", "2", true),
        meshCas(3, 4, 5, "b", "1", "2", false),
        get(0, 6, 7, "a", "2"),
        get(1, 6, 7, "b", "x"),
      ];
      const r = checkLinearizable(meshKvModel, h);
      expect(r.verdict).toBe("linearizable");
      expect(r.perPartition.map((p) => [p.index, p.operations, p.verdict])).toEqual([
        [0, 4, "linearizable"],
        [1, 3, "linearizable"],
      ]);
    });

    it("treats cas with expected null as create-if-absent", () => {
      const h = [meshCas(0, 0, 1, "k", null, "v", true), meshCas(1, 2, 3, "k", null, "w", false)];
      expect(checkLinearizable(meshKvModel, [...h, get(2, 4, 5, "k", "v")]).verdict).toBe(
        "linearizable",
      );
      const twice = [
        meshCas(0, 0, 1, "k", null, "v", true),
        meshCas(1, 2, 3, "k", null, "w", true),
      ];
      expect(checkLinearizable(meshKvModel, twice).verdict).toBe("not-linearizable");
    });

    it("reports a violation on one key, and stops searching the others", () => {
      const bad = [put(0, 0, 1, "b", "1"), get(1, 2, 3, "b", "2")];
      const good = [put(0, 0, 1, "a", "1"), get(1, 2, 3, "a", "1")];
      const r = checkLinearizable(meshKvModel, [...good, ...bad]);
      expect(r.verdict).toBe("not-linearizable");
      expect(r.perPartition.map((p) => p.verdict)).toEqual(["linearizable", "not-linearizable"]);
      expect(r.perPartition[1]?.violation?.message).toContain('get("b") = "2"');
      // A partition not finished when another shows a violation is not searched further.
      const hard = hardRegisterHistory(18).map((o) => ({
        ...o,
        input: (o.input.f === "write"
          ? { f: "put", key: "h", value: String(o.input.value) }
          : { f: "get", key: "h" }) as MeshKvInput,
        output: o.output === undefined ? undefined : String(o.output),
      }));
      const r2 = checkLinearizable(meshKvModel, [...hard, ...bad]);
      expect(r2.verdict).toBe("not-linearizable");
      expect(r2.perPartition[0]).toMatchObject({ verdict: "unknown", reason: "skipped" });
      expect(r2.budgetExhausted).toBe(false);
    });

    it("checks get/put/append per key", () => {
      type KvOp = Operation<KvInput, string>;
      const h: KvOp[] = [
        op<KvInput, string>(0, 0, 1, { f: "append", key: "k", value: "x" }, undefined),
        op<KvInput, string>(1, 0, 1, { f: "append", key: "k", value: "y" }, undefined),
        op(2, 2, 3, { f: "get", key: "k" }, "yx"),
        op(3, 2, 3, { f: "get", key: "j" }, ""),
      ];
      expect(checkLinearizable(kvAppendModel, h).verdict).toBe("linearizable");
      const wrong: KvOp = op(4, 4, 5, { f: "get", key: "k" }, "xy");
      expect(checkLinearizable(kvAppendModel, [...h, wrong]).verdict).toBe("not-linearizable");
    });
  });

  describe("budgets", () => {
    it("says unknown, never linearizable, when the time budget runs out", () => {
      const r = checkLinearizable(registerModel, hardRegisterHistory(22), { timeBudgetMs: 50 });
      expect(r.verdict).toBe("unknown");
      expect(r.budgetExhausted).toBe(true);
      expect(r.perPartition[0]).toMatchObject({ verdict: "unknown", reason: "time-budget" });
      expect(r.elapsedMs).toBeLessThan(2000);
    });

    it("says unknown when the memo cache budget runs out", () => {
      const r = checkLinearizable(registerModel, hardRegisterHistory(22), {
        maxCacheEntries: 1000,
      });
      expect(r.verdict).toBe("unknown");
      expect(r.perPartition[0]).toMatchObject({ verdict: "unknown", reason: "memory-budget" });
    });

    it("says unknown for a hard recorded history given a tiny budget", () => {
      const [c50bad] = loadDatasets(path.join(dataDir, "kv"), parseKvHistory).filter(
        (d) => d.name === "c50-bad.txt",
      );
      // Unpartitioned, the whole c50 history is one search that cannot finish in 100 ms.
      const whole = { ...kvAppendModel, partition: undefined };
      const r = checkLinearizable(whole, c50bad!.history, { timeBudgetMs: 100 });
      expect(r.verdict).toBe("unknown");
      expect(r.budgetExhausted).toBe(true);
    });
  });

  describe("parsers", () => {
    it("reads Jepsen etcd log lines separated by tabs or spaces", () => {
      const log = [
        "INFO  jepsen.core - some other line",
        "INFO  jepsen.util - 0\t:invoke\t:write\t3",
        "INFO  jepsen.util - 1   :invoke :cas    [3 4]",
        "INFO  jepsen.util - 0\t:ok\t:write\t3",
        "INFO  jepsen.util - 1   :fail   :cas    [3 4]",
        "INFO  jepsen.util - 2\t:invoke\t:read\tnil",
        "INFO  jepsen.util - 2\t:fail\t:read\t:timed-out",
        "INFO  jepsen.util - 3\t:invoke\t:write\t1",
        "INFO  jepsen.util - 3\t:info\t:write\t:timed-out",
        "INFO  jepsen.util - 4\t:invoke\t:read\tnil",
        "INFO  jepsen.util - 4\t:ok\t:read\tnil",
        "INFO  jepsen.util - 5\t:invoke\t:cas\t[1 2]",
      ].join("\n");
      const h = parseEtcdLog(log);
      const byClient = new Map(h.map((o) => [o.clientId, o]));
      expect(byClient.get(0)).toEqual(op(0, 1, 3, { f: "write", value: 3 }, undefined));
      expect(byClient.get(1)).toEqual(op(1, 2, 4, { f: "cas", from: 3, to: 4 }, false, "fail"));
      expect(classifyOp(byClient.get(1)!)).toBe("completed");
      expect(classifyOp(byClient.get(2)!)).toBe("dropped");
      expect(byClient.get(3)).toMatchObject({ status: "info", return: Number.POSITIVE_INFINITY });
      expect(byClient.get(4)).toMatchObject({ output: null, status: "ok" });
      expect(byClient.get(5)).toMatchObject({ status: "info", return: Number.POSITIVE_INFINITY });
    });

    it("reads EDN-like kv lines", () => {
      const text = [
        '{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}',
        '{:process 1, :type :invoke, :f :get, :key "0", :value nil}',
        '{:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}',
        '{:process 1, :type :ok, :f :get, :key "0", :value ""}',
      ].join("\n");
      expect(parseKvHistory(text)).toEqual([
        op(0, 1, 3, { f: "append", key: "0", value: "x 0 0 y" }, undefined),
        op(1, 2, 4, { f: "get", key: "0" }, ""),
      ]);
    });

    it("reads VERDICTS files", () => {
      const v = parseVerdicts("a.log linearizable\nb.log not-linearizable\n\n");
      expect([...v]).toEqual([
        ["a.log", "linearizable"],
        ["b.log", "not-linearizable"],
      ]);
      expect(() => parseVerdicts("a.log maybe")).toThrow();
    });
  });

  describe("recorded etcd register histories (Jepsen)", () => {
    const dir = path.join(dataDir, "etcd-register");
    const datasets = loadDatasets(dir, parseEtcdLog);

    it("has a verdict for every log but etcd_095 (whose cluster never started)", () => {
      const logs = readdirSync(dir).filter((f) => f.endsWith(".log") && f !== "etcd_095.log");
      expect(datasets.map((d) => d.name).sort()).toEqual(logs.sort());
      expect(datasets).toHaveLength(102);
    });

    it.each(datasets.map((d) => [d.name, d] as const))("%s", (_, d) => {
      const r = checkLinearizable(registerModel, d.history, { timeBudgetMs: DATASET_BUDGET_MS });
      expect(r.budgetExhausted).toBe(false);
      expect(r.verdict).toBe(d.verdict);
    });
  });

  describe("recorded kv histories (get/put/append)", () => {
    const datasets = loadDatasets(path.join(dataDir, "kv"), parseKvHistory);

    it("has all six", () => {
      expect(datasets.map((d) => d.name).sort()).toEqual(
        ["c01-bad", "c01-ok", "c10-bad", "c10-ok", "c50-bad", "c50-ok"].map((n) => `${n}.txt`),
      );
    });

    it.each(datasets.map((d) => [d.name, d] as const))("%s", (_, d) => {
      const r = checkLinearizable(kvAppendModel, d.history, { timeBudgetMs: DATASET_BUDGET_MS });
      expect(r.budgetExhausted).toBe(false);
      expect(r.verdict).toBe(d.verdict);
      if (d.verdict === "not-linearizable") {
        expect(r.perPartition.some((p) => p.violation !== undefined)).toBe(true);
      }
    });
  });
});

/**
 * hardRegisterHistory is n fully concurrent writes of distinct values, then a read of a value
 * none wrote. Refuting it means trying every set of writes (with its last value): about n·2^n
 * memo entries, far beyond any small budget.
 */
function hardRegisterHistory(n: number): RegOp[] {
  const writes = Array.from({ length: n }, (_, i) => write(i, 0, 10, i + 1));
  return [...writes, read(n, 20, 21, 0)];
}
