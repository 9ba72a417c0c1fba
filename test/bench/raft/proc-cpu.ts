/**
 * procCpuSeconds reads a process's CPU time (user + system, all threads) from /proc/<pid>/stat,
 * so a benchmark counts the servers' CPU, not its own. Linux only.
 */
import { readFileSync } from "node:fs";

/** CLOCK_TICKS_PER_SECOND is the kernel's USER_HZ, which /proc reports times in; 100 on every Linux build that matters here. */
const CLOCK_TICKS_PER_SECOND = 100;

/** procCpuSeconds is the CPU time pid has used so far, in seconds; 0 when the process is gone. */
export function procCpuSeconds(pid: number | undefined): number {
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
