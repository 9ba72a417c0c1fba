/**
 * glibc malloc settings for an agent process. glibc reads them from the environment when the
 * process starts, so they cannot be set from inside it: the launchers that ship with raftmesh
 * (`npm start`, cluster/Dockerfile, the test and bench harness) put them in the agent's
 * environment, and the agent logs which are in effect. Anyone starting `raftmesh agent` by other
 * means (systemd, a shell) should set the same three variables.
 *
 * Why (measured with 100,000 instances, 10,000 KV keys and 10,000 sessions on 3 agents,
 * `test/bench/registry/agent-memory.ts --nodes 3 --forced-gc`): after two forced full collections
 * a node kept 281-343 MiB of RSS for ~100 MiB of live V8 heap, and calling malloc_trim(0) in each
 * (through gdb) gave back 68-75 MiB at once: memory free inside glibc's arenas, never returned.
 * Two glibc behaviours keep it:
 * - a freed mmap'd block raises the mmap threshold to its size (up to 32 MiB): after the first
 *   snapshot's buffers (~27 MB each) every smaller buffer, LevelDB's and Node's included, is carved
 *   from an arena, where free pages in the middle stay in RSS. A fixed threshold turns that off;
 * - each thread that allocates may get its own arena (up to 8 per core): Node's thread pool, V8's
 *   platform threads and LevelDB's compaction thread each keep free memory of their own.
 * With the three settings the same run measured 249-271 MiB per node after the forced
 * collections (leader 271), against 281-343 without. Writes per CPU-second: see the closing note of
 * this change (bench:raft side by side).
 */

/** MALLOC_MMAP_THRESHOLD_BYTES: allocations this large or larger get their own mapping, unmapped on free (glibc's starting value, kept fixed). */
export const MALLOC_MMAP_THRESHOLD_BYTES = 128 * 1024;
/** MALLOC_TRIM_THRESHOLD_BYTES: free memory above this at an arena's top goes back to the system (glibc's starting value, kept fixed). */
export const MALLOC_TRIM_THRESHOLD_BYTES = 128 * 1024;
/** MALLOC_ARENAS_MAX: arenas for all of the process's threads together. */
export const MALLOC_ARENAS_MAX = 2;

/** AGENT_MALLOC_ENV is what the launchers add to an agent's environment. */
export const AGENT_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: String(MALLOC_ARENAS_MAX),
  MALLOC_MMAP_THRESHOLD_: String(MALLOC_MMAP_THRESHOLD_BYTES),
  MALLOC_TRIM_THRESHOLD_: String(MALLOC_TRIM_THRESHOLD_BYTES),
};

/**
 * agentMallocEnv is AGENT_MALLOC_ENV without the variables `env` already sets: an operator's own
 * values win.
 */
export function agentMallocEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(AGENT_MALLOC_ENV)) if (env[k] === undefined) out[k] = v;
  return out;
}

/** mallocSettings reports the malloc variables this process started with (for the startup log). */
export function mallocSettings(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(AGENT_MALLOC_ENV)) {
    const v = env[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}
