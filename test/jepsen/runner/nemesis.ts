/**
 * The nemesis driver: during the fault phase it injects one fault at a time, picked with the
 * run's Rng from the enabled families, holds it, ends it, and rests; heal() then ends everything.
 * Every start and stop is recorded in the history on the run's clock.
 */
import { RaftmeshClient } from "../../../src/client/index.js";
import type { JepsenCluster } from "../harness/types.js";
import { sleep } from "./clock.js";
import type { MasterTargets } from "../workloads/types.js";
import type { HistoryRecorder } from "./history.js";
import { deafLeader, PARTITION_NAMES, type PartitionName, type PartitionShape, pickPartition } from "./partitions.js";
import type { Rng } from "./rng.js";

/**
 * NEMESIS_FAMILIES are the values of --nemesis. deaf-leader is the one-way partition that cuts
 * every link into the leader (it is also among partition's shapes at random; this family makes it
 * every fault, which with --snapshot-entries 100 and long --op-timeout-ms exposes how the old
 * leader answers writes the next leader committed and compacted).
 */
export const NEMESIS_FAMILIES = ["partition", "kill", "pause", "membership", "clock", "deaf-leader", "isolate-master", "pause-master"] as const;

/**
 * CLOCK_JUMP_SCALES_MS: a clock fault first picks a scale, then a jump of up to ±that: minutes
 * (leases), hours (past the 1 h session idle time and typical reap timeouts) and days. The node's
 * test clock control takes up to a week (TEST_CLOCK_OFFSET_MS_MAX).
 */
export const CLOCK_JUMP_SCALES_MS = [600_000, 6 * 3_600_000, 2 * 24 * 3_600_000] as const;

/** TRANSFER_WAIT_MS bounds how long a clock:next-leader fault tries to move leadership. */
const TRANSFER_WAIT_MS = 3_000;

/** DEFAULT_NEMESES run when --nemesis is not given (membership needs a cluster that can wipe nodes). */
export const DEFAULT_NEMESES = ["partition", "kill", "pause"] as const;

/** MEMBERSHIP_STEP_MS bounds each membership step (remove, add, promote) including its retries. */
const MEMBERSHIP_STEP_MS = 15_000;

/** NemesisFamily is one of NEMESIS_FAMILIES. */
export type NemesisFamily = (typeof NEMESIS_FAMILIES)[number];

/** JITTER_MIN: a fault's hold and a rest last at least this share of their option (see jitter). */
export const JITTER_MIN = 0.5;

/** NemesisTiming: each fault lasts holdMs (±50 %), then the cluster rests restMs (±50 %). */
export interface NemesisTiming {
  readonly holdMs: number;
  readonly restMs: number;
  /** partitions are the shapes the partition family picks from (default PARTITION_NAMES). */
  readonly partitions?: readonly PartitionName[];
}

/** Fault is one injected fault and how to end it. */
interface Fault {
  readonly f: string;
  readonly value: unknown;
  end(): Promise<void>;
}

/** NemesisDriver: see the module comment. */
export class NemesisDriver {
  private readonly killed = new Set<string>();
  /** removed are nodes a membership fault took out of the cluster and wiped; heal adds them back. */
  private readonly removed = new Set<string>();

  constructor(
    private readonly cluster: JepsenCluster,
    private readonly families: readonly NemesisFamily[],
    private readonly timing: NemesisTiming,
    private readonly rng: Rng,
    private readonly history: HistoryRecorder,
    /** masters aims isolate-master and pause-master (the master workload provides it). */
    private readonly masters?: MasterTargets,
  ) {}

  /** run injects faults until the signal aborts; the fault in progress then ends at once. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.families.length === 0) return;
    while (!signal.aborted) {
      await sleep(this.jitter(this.timing.restMs), signal);
      if (signal.aborted) break;
      const fault = await this.inject();
      await sleep(this.jitter(this.timing.holdMs), signal);
      await fault.end();
      this.history.nemesis(fault.f, "stop", fault.value);
    }
  }

  /** heal removes every cut, resumes every node and restarts every killed one. */
  async heal(): Promise<void> {
    await this.cluster.heal();
    if (this.families.includes("clock")) await this.setClocks(this.cluster.nodes, 0);
    for (const n of [...this.removed]) await this.rejoin(n);
    for (const n of this.cluster.nodes) {
      if (this.cluster.isRunning(n)) await this.cluster.resume(n);
      else await this.cluster.start(n);
    }
    this.killed.clear();
    this.history.nemesis("heal", "stop", this.cluster.nodes);
  }

  private async inject(): Promise<Fault> {
    const family = this.rng.pick(this.families);
    const leader = await this.cluster.leader().catch(() => undefined);
    const fault =
      family === "partition"
        ? await this.partition(leader)
        : family === "kill"
          ? await this.kill(leader)
          : family === "pause"
            ? await this.pause(leader)
            : family === "clock"
              ? await this.clock(leader)
              : family === "deaf-leader"
                ? await this.cut(deafLeader(this.cluster.nodes, this.rng, leader))
                : family === "isolate-master"
                  ? await this.isolateMaster()
                  : family === "pause-master"
                    ? await this.pauseMaster()
                    : await this.membership();
    this.history.nemesis(fault.f, "start", fault.value);
    return fault;
  }

  /**
   * isolateMaster cuts the node the master heartbeats through off from every other node: the
   * master stays with its node, which may even remain leader of a minority for a moment, so the
   * master must stand down on its own before the majority promotes another.
   */
  private async isolateMaster(): Promise<Fault> {
    if (!this.masters) throw new Error("isolate-master needs a workload with a master (--workload master)");
    const node = await this.masters.masterNode();
    if (!node) return { f: "partition:isolate-master-none", value: [], end: async () => {} };
    const groups = [[node], this.cluster.nodes.filter((n) => n !== node)];
    await this.cluster.partition(groups);
    return { f: "partition:isolate-master", value: groups, end: () => this.cluster.heal() };
  }

  /** pauseMaster SIGSTOPs the master's own process (a long GC pause); it must not act on waking past its lease. */
  private async pauseMaster(): Promise<Fault> {
    if (!this.masters) throw new Error("pause-master needs a workload with a master (--workload master)");
    const masters = this.masters;
    const id = await masters.pauseMaster();
    if (!id) return { f: "pause-master:none", value: [], end: async () => {} };
    return { f: "pause-master", value: [id], end: () => masters.resumeInstance(id) };
  }

  private partition(leader: string | undefined): Promise<Fault> {
    return this.cut(pickPartition(this.rng.pick(this.timing.partitions ?? PARTITION_NAMES), this.cluster.nodes, this.rng, leader));
  }

  private async cut(shape: PartitionShape): Promise<Fault> {
    if (shape.kind === "groups") await this.cluster.partition(shape.groups);
    else {
      await this.cluster.heal();
      for (const [from, to] of shape.cuts) await this.cluster.cutOneWay(from, to);
    }
    const value = shape.kind === "groups" ? shape.groups : shape.cuts;
    return { f: `partition:${shape.name}`, value, end: () => this.cluster.heal() };
  }

  private async kill(leader: string | undefined): Promise<Fault> {
    const how = this.rng.pick(["one", "leader", "minority", "all"] as const);
    const targets = this.targets(how, leader);
    await Promise.all(targets.map((n) => this.cluster.kill(n)));
    for (const n of targets) this.killed.add(n);
    const end = async () => {
      for (const n of targets) if (!this.cluster.isRunning(n)) await this.cluster.start(n);
      for (const n of targets) this.killed.delete(n);
    };
    return { f: `kill:${how}`, value: targets, end };
  }

  private async pause(leader: string | undefined): Promise<Fault> {
    const how = this.rng.pick(["one", "leader", "minority"] as const);
    const targets = this.targets(how, leader);
    for (const n of targets) await this.cluster.pause(n);
    const end = async () => {
      for (const n of targets) await this.cluster.resume(n);
    };
    return { f: `pause:${how}`, value: targets, end };
  }

  /**
   * membership shrinks the cluster by one node (members remove, then SIGKILL and wipe it, as an
   * operator replacing a machine would) and, when the fault ends, grows it back: the node starts
   * empty with bootstrap off, is added as a learner, catches up through a snapshot and is promoted.
   */
  private async membership(): Promise<Fault> {
    const c = this.cluster;
    if (!c.wipe || !c.startEmpty || !c.memberAddresses) throw new Error("this cluster cannot wipe nodes: the membership nemesis needs the netns cluster");
    const target = this.rng.pick(c.nodes.filter((n) => c.isRunning(n) && !this.removed.has(n)));
    if (!target) return { f: "membership:none", value: [], end: async () => {} };
    const client = this.adminClient(target);
    try {
      await retrying(() => client.removeMember(target), MEMBERSHIP_STEP_MS);
    } catch (err) {
      client.close();
      return { f: "membership:remove-failed", value: [target, String((err as Error).message)], end: async () => {} };
    }
    client.close();
    this.removed.add(target);
    if (c.isRunning(target)) await c.kill(target);
    c.wipe(target);
    return { f: "membership:shrink", value: [target], end: () => this.rejoin(target) };
  }

  /** rejoin grows a removed node back: empty start, add as learner, promote once caught up. */
  private async rejoin(target: string): Promise<void> {
    const c = this.cluster;
    if (!this.removed.has(target) || !c.startEmpty || !c.memberAddresses) return;
    if (!c.isRunning(target)) await c.startEmpty(target);
    const client = this.adminClient(target);
    try {
      const addr = c.memberAddresses(target);
      const members = await retrying(() => client.members(), MEMBERSHIP_STEP_MS);
      if (!members.members.some((m) => m.id === target)) {
        await retrying(() => client.addMember({ id: target, peer: addr.peer, api: addr.api, learner: true }), MEMBERSHIP_STEP_MS);
      }
      // Promotion is refused (FAILED_PRECONDITION) while the learner lags: retry until it caught up.
      await retrying(async () => {
        const now = await client.members();
        if (now.members.some((m) => m.id === target && !m.learner)) return;
        await client.promoteMember(target);
      }, MEMBERSHIP_STEP_MS);
      this.removed.delete(target);
      this.history.nemesis("membership:grow", "stop", [target]);
    } finally {
      client.close();
    }
  }

  /**
   * clock jumps the wall clock of one node, the leader, a minority or all by up to ±10 minutes,
   * ±6 hours or ±2 days (through the node's test-only clock control) and sets it back when the
   * fault ends. `next-leader` jumps a follower's clock and then moves leadership to it, so a leader
   * whose clock is far off takes over mid-run. Leases run on the monotonic clock and the registry
   * on cluster time, so no verdict may change: no lease, session or reap may notice.
   */
  private async clock(leader: string | undefined): Promise<Fault> {
    const how = this.rng.pick(["one", "leader", "minority", "all", "next-leader"] as const);
    const followers = this.cluster.nodes.filter((n) => n !== leader && this.cluster.isRunning(n) && !this.removed.has(n));
    const targets = how === "next-leader" ? (followers.length > 0 ? [this.rng.pick(followers)] : []) : this.targets(how, leader).filter((n) => this.cluster.isRunning(n));
    const scale = this.rng.pick(CLOCK_JUMP_SCALES_MS);
    const jump = (this.rng.next() < 0.5 ? -1 : 1) * (1_000 + Math.floor(this.rng.next() * scale));
    await this.setClocks(targets, jump);
    const to = targets[0];
    const moved = how === "next-leader" && to !== undefined ? await this.transferTo(to) : undefined;
    return { f: `clock:${how}`, value: { nodes: targets, offsetMs: jump, ...(moved === undefined ? {} : { leader: moved }) }, end: () => this.setClocks(targets, 0) };
  }

  /** transferTo asks the cluster to move leadership to `to` and says who leads afterwards (best effort). */
  private async transferTo(to: string): Promise<string | undefined> {
    const client = this.adminClient("");
    try {
      const until = Date.now() + TRANSFER_WAIT_MS;
      while (Date.now() < until) {
        const now = await this.cluster.leader().catch(() => undefined);
        if (now === to) return to;
        await client.transferLeader(to, { deadlineMs: 1_000 }).catch(() => undefined);
        await sleep(200);
      }
      return await this.cluster.leader().catch(() => undefined);
    } finally {
      client.close();
    }
  }

  private async setClocks(nodes: readonly string[], offsetMs: number): Promise<void> {
    const admin = this.cluster.adminAddress?.bind(this.cluster);
    if (!admin) throw new Error("this cluster has no admin addresses: the clock nemesis needs the netns cluster");
    await Promise.all(
      nodes.map(async (n) => {
        // A node that is down (killed, paused) misses the jump; a restarted agent starts at offset 0.
        await fetch(`http://${admin(n)}/test/clock?offset_ms=${offsetMs}`, { method: "POST", signal: AbortSignal.timeout(1_000) }).catch(() => undefined);
      }),
    );
  }

  /** adminClient talks to every node but `except`, which is being removed or re-added. */
  private adminClient(except: string): RaftmeshClient {
    return new RaftmeshClient(
      this.cluster.nodes.filter((n) => n !== except && !this.removed.has(n)).map((n) => this.cluster.apiAddress(n)),
      { deadlineMs: 3_000 },
    );
  }

  private targets(how: "one" | "leader" | "minority" | "all", leader: string | undefined): string[] {
    // A node a membership fault removed and wiped is out of reach until it is added back.
    const nodes = this.cluster.nodes.filter((n) => !this.removed.has(n));
    switch (how) {
      case "one":
        return [this.rng.pick(nodes)];
      case "leader":
        return [leader ?? this.rng.pick(nodes)];
      case "minority":
        return this.rng.shuffle(nodes).slice(0, Math.floor((nodes.length - 1) / 2));
      case "all":
        return [...nodes];
    }
  }

  private jitter(ms: number): number {
    return Math.round(ms * (JITTER_MIN + this.rng.next()));
  }
}

/** retrying calls f until it succeeds or withinMs passes (then throws its last error), 200 ms apart. */
async function retrying<T>(f: () => Promise<T>, withinMs: number): Promise<T> {
  const end = Date.now() + withinMs;
  for (;;) {
    try {
      return await f();
    } catch (err) {
      if (Date.now() >= end) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
