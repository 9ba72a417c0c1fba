/**
 * The nemesis driver: during the fault phase it injects one fault at a time, picked with the
 * run's Rng from the enabled families, holds it, ends it, and rests; heal() then ends everything.
 * Every start and stop is recorded in the history on the run's clock.
 */
import type { JepsenCluster } from "../harness/types.js";
import { sleep } from "./clock.js";
import type { HistoryRecorder } from "./history.js";
import { PARTITION_NAMES, type PartitionShape, pickPartition } from "./partitions.js";
import type { Rng } from "./rng.js";

/** NEMESIS_FAMILIES are the values of --nemesis. */
export const NEMESIS_FAMILIES = ["partition", "kill", "pause"] as const;

/** NemesisFamily is one of NEMESIS_FAMILIES. */
export type NemesisFamily = (typeof NEMESIS_FAMILIES)[number];

/** NemesisTiming: each fault lasts holdMs (±50 %), then the cluster rests restMs (±50 %). */
export interface NemesisTiming {
  readonly holdMs: number;
  readonly restMs: number;
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

  constructor(
    private readonly cluster: JepsenCluster,
    private readonly families: readonly NemesisFamily[],
    private readonly timing: NemesisTiming,
    private readonly rng: Rng,
    private readonly history: HistoryRecorder,
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
    const fault = family === "partition" ? await this.partition(leader) : family === "kill" ? await this.kill(leader) : await this.pause(leader);
    this.history.nemesis(fault.f, "start", fault.value);
    return fault;
  }

  private async partition(leader: string | undefined): Promise<Fault> {
    const shape: PartitionShape = pickPartition(this.rng.pick(PARTITION_NAMES), this.cluster.nodes, this.rng, leader);
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

  private targets(how: "one" | "leader" | "minority" | "all", leader: string | undefined): string[] {
    const nodes = this.cluster.nodes;
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
    return Math.round(ms * (0.5 + this.rng.next()));
  }
}
