import { describe, expect, it } from "vitest";
import { EntryKind } from "../../../src/raft/index.js";
import { ClusterClock } from "../../../src/registry/cluster-clock.js";
import { encodeCommand } from "../../../src/registry/codec.js";
import { SESSION_IDLE_MS } from "../../../src/registry/limits.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import type { CommandResult, RegistryCommand, Session } from "../../../src/registry/types.js";
import { Rng } from "../../sim/rng.js";
import { b64, Harness, jsonDocument, legacySnapshot, spec, T0 } from "./registry-harness.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** SimLeader is one node of a pretend cluster: its own clocks and the cluster-time stamper production uses. */
class SimLeader {
  readonly clock: ClusterClock;
  constructor(
    readonly cluster: SimCluster,
    /** wallOffsetMs is how far this node's wall clock is off. */
    readonly wallOffsetMs: number,
  ) {
    this.clock = new ClusterClock({ source: cluster.sm, monoMs: () => cluster.realMs });
  }
  /** wallMs is this node's wall clock. */
  get wallMs(): number {
    return T0 + this.cluster.realMs + this.wallOffsetMs;
  }
}

/** How a leader stamps its commands: with cluster time (the rule), or with its wall clock (what the registry used to do). */
type Stamping = "cluster" | "wall";

/** SimCluster applies one log (a single replica stands for all: apply is deterministic) led by SimLeaders in turn. */
class SimCluster {
  readonly sm = new RegistryStateMachine();
  realMs = 0;
  term = 0;
  leader: SimLeader | undefined;
  private index = 0;

  constructor(private readonly stamping: Stamping) {}

  /** elect makes `l` leader of a new term and applies its first entry (the no-op). */
  elect(l: SimLeader): void {
    this.term++;
    this.leader = l;
    this.apply(new Uint8Array(0));
  }

  /** stamp is what the current leader stamps a command with now. */
  stamp(): number {
    const l = this.leader!;
    return this.stamping === "cluster" ? l.clock.now(this.term) : l.wallMs;
  }

  run(cmd: RegistryCommand, session?: Session): CommandResult {
    const at = this.stamp();
    return this.apply(encodeCommand(session ? { v: 1, at, session, cmd } : { v: 1, at, cmd }))!;
  }

  apply(data: Uint8Array): CommandResult | undefined {
    return this.sm.apply({ term: this.term, index: ++this.index, kind: EntryKind.Normal, data }) as CommandResult | undefined;
  }
}

/**
 * leaderAheadRun: leader A takes a sessioned write and sees an instance go critical; 10 s later B,
 * whose wall clock is `aheadMs` ahead, takes over, applies an unrelated write, then the client's
 * retry of its write and a reap of the instance.
 */
function leaderAheadRun(stamping: Stamping, aheadMs: number) {
  const c = new SimCluster(stamping);
  const a = new SimLeader(c, 0);
  const b = new SimLeader(c, aheadMs);
  c.elect(a);
  c.realMs += 1_000;
  const first = c.run({ op: "kv.put", key: "k", value: b64("once") }, { client: "c1", seq: 1 });
  c.run({ op: "instance.register", instance: spec("i", { deregisterCriticalAfterMs: 60_000 }) });
  c.run({ op: "health.set", changes: [{ service: "web", id: "i", health: "critical", note: "down", ifModIndex: 0 }] });
  c.realMs += 10_000;
  c.elect(b);
  c.realMs += 100;
  c.run({ op: "kv.put", key: "other", value: b64("x") });
  // The same request again (a seq reused for a different request is refused, not a retry).
  const retry = c.run({ op: "kv.put", key: "k", value: b64("once") }, { client: "c1", seq: 1 });
  const reap = c.run({ op: "instance.reap", service: "web", id: "i" });
  return { c, first, retry, reap };
}

describe("cluster time", () => {
  for (const [what, aheadMs] of [
    ["an hour", HOUR_MS],
    ["a day", DAY_MS],
  ] as const) {
    it(`cluster time: a new leader whose wall clock is ${what} ahead expires no session and reaps no instance early`, () => {
      const { c, first, retry, reap } = leaderAheadRun("cluster", aheadMs);
      expect(retry).toMatchObject({ ok: true, duplicate: true, index: first.index });
      expect(c.sm.kvGet("k")).toMatchObject({ value: b64("once"), version: 1 });
      expect(reap).toMatchObject({ ok: false, code: "failed-precondition" });
      expect(c.sm.instance("web", "i")?.health).toBe("critical");
      expect(c.sm.stats().sessions).toBe(1);
    });

    it(`cluster time: negative control — stamped with wall clocks, a leader ${what} ahead applies the retry twice and reaps early`, () => {
      const { c, retry, reap } = leaderAheadRun("wall", aheadMs);
      expect(retry).toMatchObject({ ok: true });
      expect((retry as { duplicate?: boolean }).duplicate).toBeUndefined();
      expect(c.sm.kvGet("k")).toMatchObject({ value: b64("once"), version: 2 });
      expect(reap).toMatchObject({ ok: true, deleted: 1 });
    });
  }

  it("cluster time: a command stamped behind the cluster time moves no time backwards (healthSince, session lastAt)", () => {
    const h = new Harness();
    h.at = T0 + 10_000;
    h.ok({ op: "kv.put", key: "a", value: b64("1") });
    h.at = T0;
    h.ok({ op: "instance.register", instance: spec("a") }, { client: "c", seq: 1 });
    expect(h.sm.instance("web", "a")?.healthSince).toBe(T0 + 10_000);
    expect(h.sm.clusterTime).toBe(T0 + 10_000);
    // Idle is counted from the cluster time of the write, not from its stamp behind it.
    h.at = T0 + 10_000 + SESSION_IDLE_MS - 1;
    h.ok({ op: "kv.put", key: "b", value: b64("1") });
    expect(h.sm.stats().sessions).toBe(1);
  });

  it("cluster time: never goes backwards across snapshot and restore; a version-2 snapshot restores with its latest recorded time", () => {
    const h = new Harness();
    h.at = T0 + 50_000;
    h.ok({ op: "instance.register", instance: spec("a") }, { client: "c", seq: 1 });
    h.at = T0 + 70_000;
    h.ok({ op: "kv.put", key: "k", value: b64("1") });
    const snap = h.sm.snapshot();
    const copy = new Harness();
    copy.sm.restore(snap);
    copy.index = h.index;
    expect(copy.sm.clusterTime).toBe(T0 + 70_000);
    copy.at = T0;
    copy.ok({ op: "health.set", changes: [{ service: "web", id: "a", health: "critical", note: "x", ifModIndex: 0 }] });
    expect(copy.sm.instance("web", "a")?.healthSince).toBe(T0 + 70_000);
    expect(copy.sm.clusterTime).toBe(T0 + 70_000);

    const json = jsonDocument(snap);
    expect(json.clusterTime).toBe(T0 + 70_000);
    const old = new RegistryStateMachine();
    old.restore(legacySnapshot(snap, 2));
    // Version 2 did not record the cluster time: the latest time it holds (healthSince, lastAt) stands in.
    expect(old.clusterTime).toBe(T0 + 50_000);
    expect(old.kvGet("k")).toMatchObject({ value: b64("1") });
  });

  it("cluster clock: a new leader stamps the applied cluster time until its first entry applies, then counts by its monotonic clock", () => {
    const source = { clusterTime: 5_000, appliedTerm: 1 };
    let mono = 1_000_000;
    const clock = new ClusterClock({ source, monoMs: () => mono });
    // Term 2 began but nothing of it applied yet: predecessors' entries may still raise cluster time.
    expect(clock.now(2)).toBe(5_000);
    mono += 3_000;
    source.clusterTime = 6_000;
    expect(clock.now(2)).toBe(6_000);
    source.appliedTerm = 2;
    expect(clock.now(2)).toBe(6_000);
    mono += 250;
    expect(clock.now(2)).toBe(6_250);
    // A later term starts from what is applied then, not from the previous term's count.
    source.clusterTime = 6_250;
    mono += 60_000;
    expect(clock.now(5)).toBe(6_250);
    source.appliedTerm = 5;
    mono += 10;
    expect(clock.now(5)).toBe(6_250);
    mono += 40;
    expect(clock.now(5)).toBe(6_290);
    // Never below applied, even if applied passed the count.
    source.clusterTime = 9_999;
    expect(clock.now(5)).toBe(9_999);
  });

  it("cluster time: property — across random leader changes and wall clocks off by up to ±2 days, cluster time never goes back nor outruns real time", () => {
    for (let seed = 1; seed <= 100; seed++) {
      const rng = new Rng(seed);
      const c = new SimCluster("cluster");
      const nodes = [0, 1, 2].map(() => new SimLeader(c, (rng.nextInt(5) - 2) * DAY_MS + rng.nextInt(1000)));
      let prev = 0;
      let prevLead = Number.POSITIVE_INFINITY;
      for (let step = 0; step < 200; step++) {
        c.realMs += rng.nextInt(rng.chance(0.05) ? 2 * HOUR_MS : 2_000);
        if (step === 0 || rng.chance(0.1)) c.elect(nodes[rng.nextInt(3)]!);
        else c.run({ op: "kv.put", key: `k${rng.nextInt(3)}`, value: b64("v") }, rng.chance(0.5) ? { client: "c", seq: step } : undefined);
        if (c.sm.clusterTime < prev) throw new Error(`seed ${seed} step ${step}: cluster time went from ${prev} back to ${c.sm.clusterTime}`);
        // Cluster time minus real time never grows: no span of cluster time is longer than the real time it took.
        const lead = c.sm.clusterTime - c.realMs;
        if (lead > prevLead) throw new Error(`seed ${seed} step ${step}: cluster time outran real time by ${lead - prevLead} ms`);
        prev = c.sm.clusterTime;
        prevLead = lead;
      }
    }
  });
});
