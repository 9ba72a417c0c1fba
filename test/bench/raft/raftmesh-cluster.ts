/**
 * The raftmesh side of the benchmark: a 3-node cluster of real `raftmesh agent` processes (fsync
 * on, as always) behind the Cluster interface that runFailover drives, on ProcessCluster.
 */
import { ProcessCluster } from "../../integration/harness/process-cluster.js";
import { NoLeaderError, UnknownMemberError } from "./errors.js";
import type { Cluster, ClusterPutOptions } from "./failover.js";

/** HEALTH_POLL_MS is the pause between health probes. */
const HEALTH_POLL_MS = 50;
/** START_TIMEOUT_MS bounds the wait for the first leader: three agents compiling their sources through tsx on a busy shared machine have taken over 30 s. */
const START_TIMEOUT_MS = 120_000;
/** PUT_TIMEOUT_MS_DEFAULT is a put's deadline when the caller gives none. */
const PUT_TIMEOUT_MS_DEFAULT = 5_000;

export class RaftmeshCluster implements Cluster {
  readonly ids: readonly string[];
  private next = 0;

  private constructor(readonly pc: ProcessCluster) {
    this.ids = [...pc.specs.keys()];
  }

  /** start launches the founders with the agent's default timing (or env overrides) and waits for a leader. */
  static async start(env: Record<string, string> = {}, clientWriteRounds?: number): Promise<RaftmeshCluster> {
    const pc = await ProcessCluster.create({ size: 3, env: { RAFTMESH_LOG_LEVEL: "warn", ...env }, clientWriteRounds });
    try {
      pc.startAll();
      await pc.waitForLeader(START_TIMEOUT_MS);
      return new RaftmeshCluster(pc);
    } catch (err) {
      await pc.cleanup();
      throw err;
    }
  }

  async leader(): Promise<string> {
    const views = await Promise.all(this.pc.runningIds().map((id) => this.pc.client(id).status({ deadlineMs: 500 }).catch(() => undefined)));
    const counts = new Map<string, number>();
    for (const v of views) if (v?.leader) counts.set(v.leader, (counts.get(v.leader) ?? 0) + 1);
    for (const [id, n] of counts) if (n >= 2 && this.pc.isRunning(id)) return id;
    throw new NoLeaderError("no live leader agreed by a majority");
  }

  kill(id: string): Promise<void> {
    if (!this.pc.specs.has(id)) throw new UnknownMemberError(id);
    // ProcessCluster.kill signals synchronously before its first await, as runFailover requires.
    return this.pc.kill(id).then(() => undefined);
  }

  pause(id: string): void {
    this.signal(id, "SIGSTOP");
  }

  resume(id: string): void {
    this.signal(id, "SIGCONT");
  }

  /** signal sends a signal to a running member's process. */
  private signal(id: string, signal: NodeJS.Signals): void {
    const pid = this.pc.pid(id);
    if (pid === undefined) throw new UnknownMemberError(id);
    process.kill(pid, signal);
  }

  async restart(id: string): Promise<void> {
    this.pc.start(id);
  }

  async put(key: string, value: Uint8Array, opts: ClusterPutOptions = {}): Promise<void> {
    const live = this.ids.filter((id) => id !== opts.viaNotId && this.pc.isRunning(id));
    const via = live[this.next++ % Math.max(1, live.length)];
    if (!via) throw new NoLeaderError("no live node to write through");
    await this.pc.client(via).put(key, value, { deadlineMs: opts.timeoutMs ?? PUT_TIMEOUT_MS_DEFAULT });
  }

  /** client is the typed client pinned to one node. */
  client(id: string) {
    return this.pc.client(id);
  }

  async waitHealthy(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        if (this.ids.every((id) => this.pc.isRunning(id))) {
          const leader = await this.pc.waitForLeader(Math.max(100, end - Date.now()));
          await Promise.all(this.ids.map((id) => this.pc.client(id).put("health", "ok", { deadlineMs: 1_000 })));
          if (leader) return;
        }
      } catch {
        // not yet
      }
      if (Date.now() > end) throw new NoLeaderError(`cluster not healthy within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, HEALTH_POLL_MS));
    }
  }

  stop(): Promise<void> {
    return this.pc.cleanup();
  }
}
