/**
 * LoopbackCluster implements JepsenCluster on ProcessCluster: real agents on 127.0.0.1, for
 * developing the runner on a machine without network namespaces. It is NOT for verdicts: there
 * is no way to drop packets between processes on one loopback address, so a partition is
 * emulated by SIGSTOPping every node outside the largest group (a stopped node is silent, like a
 * cut-off one, but it also stops its clocks and serves no clients, so the deposed-leader and
 * stale-read scenarios that partitions exist to create never happen), and one-way cuts are not
 * emulated at all (recorded, then ignored). Use `--cluster netns` for results that mean anything.
 */
import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { RaftmeshClient } from "../../../src/client/index.js";
import { ProcessCluster } from "../../integration/harness/process-cluster.js";
import type { JepsenCluster, JepsenClusterOptions } from "../harness/types.js";

/** STATUS_DEADLINE_MS bounds each status call leader() makes. */
const STATUS_DEADLINE_MS = 500;

/** LoopbackCluster: see the module comment. */
export class LoopbackCluster implements JepsenCluster {
  readonly nodes: readonly string[];
  /** pausedByPartition are the nodes SIGSTOPped to emulate the current partition. */
  private readonly pausedByPartition = new Set<string>();
  private readonly paused = new Set<string>();
  private readonly statusClients = new Map<string, RaftmeshClient>();
  /** ignoredCuts counts one-way cuts that could not be emulated (reported by the runner). */
  ignoredCuts = 0;

  private constructor(
    private readonly pc: ProcessCluster,
    private readonly opts: JepsenClusterOptions,
  ) {
    this.nodes = [...pc.specs.keys()];
  }

  /** create allocates ports and starts every agent, like createJepsenCluster does. */
  static async create(opts: JepsenClusterOptions): Promise<LoopbackCluster> {
    const pc = await ProcessCluster.create({ size: opts.size ?? 5, env: { RAFTMESH_CLUSTER_ID: "raftmesh-jepsen", ...opts.extraEnv } });
    const c = new LoopbackCluster(pc, opts);
    for (const n of c.nodes) await c.start(n);
    return c;
  }

  apiAddress(node: string): string {
    return this.pc.api(node);
  }

  balancerAddress(node: string): string {
    return `127.0.0.1:${(this.pc.specs.get(node) as { balancerPort: number }).balancerPort}`;
  }

  async start(node: string): Promise<void> {
    this.paused.delete(node);
    this.pausedByPartition.delete(node);
    this.pc.start(node);
  }

  async kill(node: string): Promise<void> {
    this.paused.delete(node);
    this.pausedByPartition.delete(node);
    await this.pc.kill(node);
  }

  async pause(node: string): Promise<void> {
    if (!this.pc.isRunning(node)) return;
    this.signal(node, "SIGSTOP");
    this.paused.add(node);
  }

  async resume(node: string): Promise<void> {
    this.paused.delete(node);
    if (this.pausedByPartition.has(node) || !this.pc.isRunning(node)) return;
    this.signal(node, "SIGCONT");
  }

  isRunning(node: string): boolean {
    return this.pc.isRunning(node);
  }

  /** partition stops every listed node outside the largest group (see the module comment). */
  async partition(groups: readonly (readonly string[])[]): Promise<void> {
    await this.heal();
    const largest = [...groups].sort((a, b) => b.length - a.length)[0] ?? [];
    for (const g of groups) {
      if (g === largest) continue;
      for (const n of g) {
        if (!this.pc.isRunning(n)) continue;
        this.signal(n, "SIGSTOP");
        this.pausedByPartition.add(n);
      }
    }
  }

  async cutOneWay(_from: string, _to: string): Promise<void> {
    this.ignoredCuts++;
  }

  async heal(): Promise<void> {
    for (const n of this.pausedByPartition) if (!this.paused.has(n) && this.pc.isRunning(n)) this.signal(n, "SIGCONT");
    this.pausedByPartition.clear();
  }

  async leader(): Promise<string | undefined> {
    const views = await Promise.all(this.nodes.map((n) => this.statusClient(n).status({ deadlineMs: STATUS_DEADLINE_MS }).catch(() => undefined)));
    const votes = new Map<string, number>();
    for (const v of views) if (v?.leader) votes.set(v.leader, (votes.get(v.leader) ?? 0) + 1);
    const [best] = [...votes.entries()].sort((a, b) => b[1] - a[1]);
    return best && best[1] > this.nodes.length / 2 ? best[0] : undefined;
  }

  logPath(node: string): string {
    return join(this.pc.root, `${node}.log`);
  }

  /** cleanup copies the agents' logs into runDir/logs, then removes every process and directory. */
  async cleanup(): Promise<void> {
    for (const c of this.statusClients.values()) c.close();
    for (const n of this.nodes) if (this.pc.isRunning(n)) this.signal(n, "SIGCONT");
    await Promise.all(this.nodes.map((n) => this.pc.kill(n).catch(() => undefined)));
    await mkdir(join(this.opts.runDir, "logs"), { recursive: true });
    for (const n of this.nodes) await copyFile(this.logPath(n), join(this.opts.runDir, "logs", `${n}.log`)).catch(() => undefined);
    await this.pc.cleanup();
  }

  private signal(node: string, sig: NodeJS.Signals): void {
    // ProcessCluster.kill sends the signal at once, then waits for an exit that SIGSTOP and
    // SIGCONT never cause (that wait times out harmlessly later): do not wait for it.
    void this.pc.kill(node, sig).catch(() => undefined);
  }

  private statusClient(node: string): RaftmeshClient {
    let c = this.statusClients.get(node);
    if (!c) this.statusClients.set(node, (c = new RaftmeshClient([this.apiAddress(node)])));
    return c;
  }
}
