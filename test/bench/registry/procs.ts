/**
 * What the benchmark reads about processes from /proc (Linux only): finding an agent's pid by its
 * environment, its CPU time and its resident memory, and the machine it all runs on.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";

/** CLK_TCK_FALLBACK is the kernel's USER_HZ on every mainstream Linux build, used when getconf is missing. */
const CLK_TCK_FALLBACK = 100;

/** clockTicksPerSec is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. */
export const clockTicksPerSec: number = (() => {
  try {
    const n = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return n > 0 ? n : CLK_TCK_FALLBACK;
  } catch {
    return CLK_TCK_FALLBACK;
  }
})();

/** environOf returns a process's environment, or undefined when it is gone or not ours to read. */
function environOf(pid: number): Map<string, string> | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/environ`, "utf8");
    const env = new Map<string, string>();
    for (const pair of raw.split("\0")) {
      const eq = pair.indexOf("=");
      if (eq > 0) env.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return env;
  } catch {
    return undefined;
  }
}

/** isAgent says whether pid runs `raftmesh agent` (and not, say, the esbuild service tsx starts, which inherits the agent's environment). */
function isAgent(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return argv.some((a) => a.endsWith("src/cli/main.ts") || a.endsWith("dist/cli/main.js")) && argv.includes("agent");
  } catch {
    return false;
  }
}

/**
 * findAgentPid finds the agent whose RAFTMESH_NODE_ID and RAFTMESH_DATA_DIR are these. The data
 * directory is unique to one ProcessCluster, so agents of other clusters on the machine (other
 * benchmarks, tests) never match. Throws unless exactly one process matches.
 */
export function findAgentPid(nodeId: string, dataDir: string): number {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const env = environOf(Number(name));
    if (env?.get("RAFTMESH_NODE_ID") === nodeId && env.get("RAFTMESH_DATA_DIR") === dataDir && isAgent(Number(name))) found.push(Number(name));
  }
  if (found.length !== 1) throw new Error(`expected one agent ${nodeId} with data dir ${dataDir}, found pids [${found.join(", ")}]`);
  return found[0] as number;
}

/** cpuSecondsOf is a process's user + system CPU time so far, in seconds (utime and stime of /proc/<pid>/stat). */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may hold spaces and parentheses; the fields after its last ')' do not.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat are the 12th and 13th after the name (state is the 3rd field, index 0 here).
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`cannot read utime/stime of pid ${pid}`);
  return (utime + stime) / clockTicksPerSec;
}

/** rssBytesOf is a process's resident set size (VmRSS of /proc/<pid>/status) in bytes. */
export function rssBytesOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** CpuMeter measures processes' CPU share over an interval: percent of one core (100 = one core busy). */
export class CpuMeter {
  private readonly startCpuSec: Map<number, number>;
  private readonly startNs = process.hrtime.bigint();
  private readonly startSelf = process.cpuUsage();

  constructor(private readonly pids: readonly number[]) {
    this.startCpuSec = new Map(pids.map((p) => [p, cpuSecondsOf(p)]));
  }

  /** read returns each pid's CPU percent since construction, and this process's (the client's) as "self". */
  read(): { wallSec: number; percentByPid: Map<number, number>; selfPercent: number } {
    const wallSec = Number(process.hrtime.bigint() - this.startNs) / 1e9;
    const percentByPid = new Map(this.pids.map((p) => [p, ((cpuSecondsOf(p) - (this.startCpuSec.get(p) ?? 0)) / wallSec) * 100]));
    const self = process.cpuUsage(this.startSelf);
    return { wallSec, percentByPid, selfPercent: ((self.user + self.system) / 1e6 / wallSec) * 100 };
  }
}

/** MachineInfo is what a reader needs to compare this run with another. */
export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly node: string;
  readonly loadavgAtStart: readonly number[];
  loadavgAtEnd?: readonly number[];
}

/** machineInfo describes this machine now. */
export function machineInfo(): MachineInfo {
  return { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, memoryBytes: totalmem(), node: process.version, loadavgAtStart: loadavg().map(round2) };
}

/** round2 keeps two decimals, for figures a person reads. */
export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
