import { Buffer } from "node:buffer";
import { afterEach, describe, expect, it } from "vitest";
import { ClusterStateMachine, encodeAppCommand } from "../../../src/node/cluster-state-machine.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import { encodeCommand } from "../../../src/registry/codec.js";
import { type Entry, EntryKind, type NodeId } from "../../../src/raft/index.js";
import { checkDurable, type Durable, History, runCrashRounds, SNAPSHOT_ENTRIES_DEFAULT, summarize, type Violation } from "../harness/crash-rounds.js";
import { ProcessCluster } from "../harness/process-cluster.js";

/** ROUNDS is the short form; `npm run test:crash` runs a hundred. */
const ROUNDS = 3;

describe("crash and restart of real processes", () => {
  let cluster: ProcessCluster | undefined;
  afterEach(async () => {
    await cluster?.cleanup();
    cluster = undefined;
  });

  it("crash: SIGKILL at random moments during writes, restart, repeat: no acknowledged write lost, logs identical", async () => {
    const seed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 0x7fffffff));
    console.log(`crash-restart: seed=${seed} (replay: CRASH_SEED=${seed}, or tsx test/crash/run.ts --seed ${seed} --rounds ${ROUNDS})`);
    cluster = await ProcessCluster.create({ size: 3, env: { RAFTMESH_SNAPSHOT_ENTRIES: String(SNAPSHOT_ENTRIES_DEFAULT) } });
    cluster.startAll();
    const result = await runCrashRounds(cluster, { seed, rounds: ROUNDS });
    const totals = summarize(result);
    console.log(`crash-restart: seed=${seed} ${JSON.stringify(totals)} in ${result.durationMs} ms`);
    expect(result.violations, `seed=${seed}`).toEqual([]);
    expect(totals.rounds).toBe(ROUNDS);
    // The positive space: the run did kill nodes, did acknowledge writes, and did snapshot.
    expect(totals.kills).toBeGreaterThanOrEqual(ROUNDS);
    expect(totals.acked).toBeGreaterThan(0);
    expect(result.rounds.some((r) => r.snapshotIndexes.every((i) => i > 0))).toBe(true);
  }, 150_000);
});

describe("crash checker", () => {
  const put = (index: number, key: string, value: string, term = 1): Entry => ({
    term,
    index,
    kind: EntryKind.Normal,
    data: encodeAppCommand(encodeCommand({ v: 1, at: 0, cmd: { op: "kv.put", key, value: Buffer.from(value).toString("base64") } })),
  });
  const node = (id: string, entries: Entry[]): Durable => ({ id, hardState: { term: 1, vote: "n1" as NodeId, commit: entries.length }, entries });
  const log = () => [put(1, "a", "1"), put(2, "b", "2"), put(3, "c", "3")];
  const history = () => {
    const h = new History();
    h.acked.set("b", { value: "2", index: 2, round: 1 });
    return h;
  };
  const check = (nodes: Durable[], h: History): Violation[] => {
    const violations: Violation[] = [];
    checkDurable(nodes, h, [...h.acked.keys()], 3, 1, violations);
    return violations;
  };
  const properties = (vs: Violation[]) => [...new Set(vs.map((v) => v.property))].sort();

  it("crash checker: passes three identical logs that hold every acknowledged write", () => {
    expect(check([node("n1", log()), node("n2", log()), node("n3", log())], history())).toEqual([]);
  });

  it("crash checker: flags an acknowledged write replaced by another entry on one node", () => {
    const other = [put(1, "a", "1"), put(2, "x", "9", 2), put(3, "c", "3")];
    expect(properties(check([node("n1", log()), node("n2", log()), node("n3", other)], history()))).toEqual([
      "acked-write-durable",
      "identical-logs",
      "identical-states",
    ]);
  });

  it("crash checker: flags an acknowledged write no node holds, and a refused write that took effect", () => {
    const h = history();
    h.acked.set("lost", { value: "L", index: 3, round: 1 });
    h.failed.add("c");
    expect(properties(check([node("n1", log()), node("n2", log()), node("n3", log())], h))).toEqual([
      "acked-write-durable",
      "no-acked-write-lost",
      "refused-write-absent",
    ]);
  });

  it("crash checker: passes a node whose snapshot is past the converged commit (a write committed after, its outcome unknown), in either snapshot format", () => {
    const longer = [...log(), put(4, "d", "4"), put(5, "e", "5")];
    for (const readMax of [undefined, 4]) {
      const machine = new ClusterStateMachine(new RegistryStateMachine());
      for (const e of longer) machine.apply(e);
      const snapshot = { meta: { index: 5, term: 1, conf: { voters: ["n1", "n2", "n3"] as NodeId[], learners: [] } }, data: machine.snapshot(readMax) };
      // n3 snapshotted at 5 and compacted; n1 holds the entries to 5; n2 was not in that majority and holds only to 3.
      const n3: Durable = { id: "n3", hardState: { term: 1, vote: "n1" as NodeId, commit: 5 }, snapshot, entries: [] };
      expect(check([node("n1", longer), node("n2", log()), n3], history()), `readMax ${readMax}`).toEqual([]);
      // And a snapshot that lost a write is still caught.
      const lossy = new ClusterStateMachine(new RegistryStateMachine());
      for (const e of [...log(), put(4, "d", "4")]) lossy.apply(e);
      lossy.apply({ term: 1, index: 5, kind: EntryKind.Normal, data: new Uint8Array(0) });
      const bad: Durable = { ...n3, snapshot: { ...snapshot, data: lossy.snapshot(readMax) } };
      expect(properties(check([node("n1", longer), node("n2", log()), bad], history()))).toEqual(["identical-states"]);
    }
  });

  it("crash checker: flags a node that applied further than its durable log reaches", () => {
    const short = log().slice(0, 2);
    expect(properties(check([node("n1", log()), node("n2", log()), node("n3", short)], history()))).toContain("durable-through-commit");
  });
});
