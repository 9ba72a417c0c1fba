/**
 * procCpuSeconds reads a process's CPU time (user + system, all threads) from /proc/<pid>/stat,
 * so a benchmark counts the servers' CPU, not its own. Linux only.
 */
import { readdirSync, readFileSync } from "node:fs";

/** CLOCK_TICKS_PER_SECOND is the kernel's USER_HZ, which /proc reports times in; 100 on every Linux build that matters here. */
const CLOCK_TICKS_PER_SECOND = 100;

/** procCpuSeconds is the CPU time pid has used so far, in seconds; 0 when the process is gone. */
export function procCpuSeconds(pid: number | string | undefined): number {
  if (pid === undefined) return 0;
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return 0;
  }
  // The command name (field 2) may hold spaces; fields after the last ")" are fixed.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state field (field 3).
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/**
 * threadCpuSeconds is the CPU time each thread of pid has used so far, by thread id, the main
 * thread (tid = pid) as "main". Node names every thread "node", so the ids are all there is to tell
 * V8's helpers (the collector's parallel and concurrent work), the libuv pool (LevelDB's writes and
 * syncs) and worker threads apart; the largest besides main are what a caller reports. Threads
 * that ended since are not counted. Empty when the process is gone.
 */
export function threadCpuSeconds(pid: number | undefined): Map<string, number> {
  const byTid = new Map<string, number>();
  if (pid === undefined) return byTid;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byTid;
  }
  for (const tid of tids) {
    const seconds = procCpuSeconds(`${pid}/task/${tid}`);
    byTid.set(tid === String(pid) ? "main" : `tid ${tid}`, seconds);
  }
  return byTid;
}

/** threadCpuDelta is after minus before, by thread, largest first. */
export function threadCpuDelta(before: Map<string, number>, after: Map<string, number>): [string, number][] {
  return [...after].map(([name, s]) => [name, s - (before.get(name) ?? 0)] as [string, number]).sort((a, b) => b[1] - a[1]);
}
