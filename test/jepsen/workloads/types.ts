/**
 * The contract between the runner and a workload. A workload issues client operations through
 * the run's HistoryRecorder while the nemesis runs, does its final reads after the heal, and then
 * judges the history with one or more checkers. Workloads are pluggable: see ./index.ts.
 */
import type { JepsenCluster } from "../harness/types.js";
import type { ClientPool } from "../runner/clients.js";
import type { RunClock } from "../runner/clock.js";
import type { HistoryRecorder } from "../runner/history.js";
import type { Rng } from "../runner/rng.js";

/** WorkloadOptions are the runner's settings a workload uses. */
export interface WorkloadOptions {
  /** opTimeoutMs is every client call's deadline. */
  readonly opTimeoutMs: number;
  /** concurrency is the number of client processes (spread over the nodes). */
  readonly concurrency: number;
  /** rateHz bounds the operations per second of all processes together. */
  readonly rateHz: number;
  /** loadMs is how long run() will be driven (warm-up + faults + heal + recovery), for planning. */
  readonly loadMs: number;
  /** checkBudgetMs is the linearizability checker's time budget per key. */
  readonly checkBudgetMs: number;
  /** unsafeBlindRetry: the negative control that retries timed-out writes blindly. */
  readonly unsafeBlindRetry: boolean;
  /** pinnedClients: each client reaches only its own node (never moves on), so a partition cuts it off with that node. */
  readonly pinnedClients: boolean;
  /** instanceUnsafe: negative controls in the master workload's backends (their RAFTMESH_TEST_UNSAFE). */
  readonly instanceUnsafe: readonly string[];
  /** faultHoldMinMs: a fault that is not cut short by the end of the load lasts at least this long before it is healed. */
  readonly faultHoldMinMs: number;
}

/** WorkloadContext is what a workload gets from the runner. */
export interface WorkloadContext {
  readonly cluster: JepsenCluster;
  readonly history: HistoryRecorder;
  readonly clock: RunClock;
  readonly rng: Rng;
  readonly clients: ClientPool;
  readonly options: WorkloadOptions;
}

/** Validity of a checker: true, false, or "unknown" (could not decide; never counted as valid). */
export type Validity = true | false | "unknown";

/** Anomaly is one kind of violation with a minimal example. */
export interface Anomaly {
  readonly kind: string;
  readonly message: string;
  /** example is the smallest set of operations or events that shows it. */
  readonly example: readonly unknown[];
}

/** CheckerResult is one verdict. */
export interface CheckerResult {
  readonly name: string;
  readonly valid: Validity;
  /** summary is one line for the console. */
  readonly summary: string;
  readonly anomalies: readonly Anomaly[];
  readonly stats?: Readonly<Record<string, unknown>>;
}

/** MasterTargets let the nemesis aim at the current master of the master workload. */
export interface MasterTargets {
  /** masterNode is the node the current master heartbeats through, if one is known. */
  masterNode(): Promise<string | undefined>;
  /** pauseMaster SIGSTOPs the current master's own process and returns its id (undefined: none). */
  pauseMaster(): Promise<string | undefined>;
  resumeInstance(id: string): Promise<void>;
}

/** Workload is one pluggable workload. */
export interface Workload {
  readonly name: string;
  /** writeFs are the operation names that count as writes (for heal-to-first-write). */
  readonly writeFs: readonly string[];
  /** masterTargets: present when the workload has a master the nemesis can aim at. */
  readonly masterTargets?: MasterTargets;
  /** setup runs once the cluster has a leader, before any fault. */
  setup(ctx: WorkloadContext): Promise<void>;
  /** run issues operations until the signal aborts, then waits for its processes to stop. */
  run(ctx: WorkloadContext, signal: AbortSignal): Promise<void>;
  /** final runs after heal and recovery: reads on every node. */
  final(ctx: WorkloadContext): Promise<void>;
  /** check judges the history. */
  check(ctx: WorkloadContext): Promise<CheckerResult[]>;
}

/** combineValidity is false if any is false, else unknown if any is unknown, else true. */
export function combineValidity(vs: readonly Validity[]): Validity {
  if (vs.some((v) => v === false)) return false;
  if (vs.some((v) => v === "unknown")) return "unknown";
  return true;
}
