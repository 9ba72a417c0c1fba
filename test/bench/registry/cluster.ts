/**
 * BenchCluster: a 3-node cluster of real `raftmesh agent` processes for one phase of the registry
 * benchmark, with the agents' pids (for CPU and memory) and a guarantee that its processes and
 * directory go away with the benchmark: on stop(), on SIGINT/SIGTERM/SIGHUP, and on any exit
 * (an uncaught error included), by SIGKILL of every process started with its data directory.
 */
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { ProcessCluster } from "../../integration/harness/process-cluster.js";
import { findAgentPid } from "./procs.js";

/** LEADER_WAIT_MS bounds the wait for a first leader: agents start through tsx, which takes seconds on a busy 2-core machine. */
const LEADER_WAIT_MS = 60_000;

const live = new Set<ProcessCluster>();
let installed = false;

/** pidsWithDataDir lists every process whose RAFTMESH_DATA_DIR is dataDir (ours to read), synchronously. */
function pidsWithDataDir(dataDir: string): number[] {
  const out: number[] = [];
  const needle = `RAFTMESH_DATA_DIR=${dataDir}\0`;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, "utf8").includes(needle)) out.push(Number(name));
    } catch {
      // gone, or not ours
    }
  }
  return out;
}

/** reapOne SIGKILLs every agent started with pc's data directory and removes its directory, synchronously. */
function reapOne(pc: ProcessCluster): void {
  for (const pid of pidsWithDataDir(pc.dataDir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  if (!process.env.KEEP_CLUSTER) rmSync(pc.root, { recursive: true, force: true, maxRetries: 3 });
  live.delete(pc);
}

/** reapSync reaps every live cluster; safe in an "exit" handler. */
function reapSync(): void {
  for (const pc of [...live]) reapOne(pc);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on("exit", reapSync);
  const codes = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping clusters`);
      reapSync();
      process.exit(codes[signal]);
    });
  }
}

/** BenchCluster: see the module comment. */
export class BenchCluster {
  private constructor(
    readonly pc: ProcessCluster,
    /** pids maps node id to its agent's pid. */
    readonly pids: Map<string, number>,
  ) {}

  /** start launches n1..n3 (from dist/ when compiled, else through tsx) with env added to the agents' and waits for a leader. */
  static async start(env: Record<string, string> = {}, compiled = false): Promise<BenchCluster> {
    install();
    const pc = await ProcessCluster.create({ size: 3, compiled, env: { RAFTMESH_LOG_LEVEL: "warn", ...env } });
    live.add(pc);
    try {
      pc.startAll();
      await pc.waitForLeader(LEADER_WAIT_MS);
      const pids = new Map([...pc.specs.keys()].map((id) => [id, findAgentPid(id, pc.dataDir)]));
      return new BenchCluster(pc, pids);
    } catch (err) {
      await stopCluster(pc);
      throw err;
    }
  }

  /** ids are the founders' ids. */
  get ids(): string[] {
    return [...this.pids.keys()];
  }

  /** leader waits for the leader every running node agrees on. */
  leader(timeoutMs = 20_000): Promise<string> {
    return this.pc.waitForLeader(timeoutMs);
  }

  /** trackPid records the pid of a node started later (e.g. a learner). */
  trackPid(id: string): number {
    const pid = findAgentPid(id, this.pc.dataDir);
    this.pids.set(id, pid);
    return pid;
  }

  /** stop kills every agent and removes the cluster's directory. */
  stop(): Promise<void> {
    return stopCluster(this.pc);
  }
}

/** stopCluster kills pc's agents the harness's way, then anything it could not reach. */
async function stopCluster(pc: ProcessCluster): Promise<void> {
  try {
    await pc.cleanup();
  } finally {
    reapOne(pc);
  }
}
