/**
 * The agent's glibc malloc settings (src/agent/malloc-env.ts): that they do what the comment there
 * says, in a real Node process, and that the launchers pass them on.
 *
 * The process replays the pattern measured in a loaded agent: one buffer of a snapshot's size
 * (~27 MB) is freed, then 80 MB of 200 KB buffers are allocated and freed. Without the settings
 * glibc keeps all of it (the freed large block raised its mmap threshold, so the small buffers came
 * from an arena); with them it is returned at once.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { AGENT_MALLOC_ENV, agentMallocEnv, mallocSettings } from "../../../src/agent/malloc-env.js";

const DOCKERFILE = fileURLToPath(new URL("../../../cluster/Dockerfile", import.meta.url));
/** SNAPSHOT_LIKE_MB, SMALL_BUFFER_KB, SMALL_BUFFERS: the pattern replayed (see the file comment). */
const SNAPSHOT_LIKE_MB = 27;
const SMALL_BUFFER_KB = 200;
const SMALL_BUFFERS = 400;
/** RETURNED_MB_MIN: the settings must give back most of the 80 MB; KEPT_MB_MIN: glibc alone keeps most of it. */
const RETURNED_MB_MIN = 50;
const KEPT_MB_MIN = 50;

const PROGRAM = `
const rss = () => process.memoryUsage().rss / 2 ** 20;
let big = Buffer.alloc(${SNAPSHOT_LIKE_MB} * 2 ** 20, 1); big = null; gc(); gc();
const held = []; for (let i = 0; i < ${SMALL_BUFFERS}; i++) held.push(Buffer.alloc(${SMALL_BUFFER_KB} * 1024, 1));
const peak = rss();
held.length = 0; gc(); gc();
process.stdout.write(JSON.stringify({ peak, after: rss() }));
`;

/** glibc: the settings are glibc's; other C libraries ignore them. */
const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;

function run(env: NodeJS.ProcessEnv): { peak: number; after: number } {
  const r = spawnSync(process.execPath, ["--expose-gc", "-e", PROGRAM], { env, encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0) throw new Error(`probe failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { peak: number; after: number };
}

describe("agent: malloc settings", () => {
  it.skipIf(glibc === undefined)("agent malloc env: freed buffers go back to the system with the settings and stay without them", () => {
    const plain: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(AGENT_MALLOC_ENV)) delete plain[k];
    const without = run(plain);
    const tuned = run({ ...plain, ...agentMallocEnv(plain) });
    expect(without.peak - without.after, JSON.stringify(without)).toBeLessThan(SMALL_BUFFERS * SMALL_BUFFER_KB / 1024 - KEPT_MB_MIN);
    expect(tuned.peak - tuned.after, JSON.stringify(tuned)).toBeGreaterThan(RETURNED_MB_MIN);
  });

  it("agent malloc env: an operator's own values win, and the startup log reports what is set", () => {
    expect(agentMallocEnv({ MALLOC_ARENA_MAX: "4" })).toEqual({ MALLOC_MMAP_THRESHOLD_: "131072", MALLOC_TRIM_THRESHOLD_: "131072" });
    expect(agentMallocEnv({})).toEqual(AGENT_MALLOC_ENV);
    expect(mallocSettings({ MALLOC_ARENA_MAX: "4", OTHER: "x" })).toEqual({ MALLOC_ARENA_MAX: "4" });
  });

  it("agent malloc env: the image sets the same values", () => {
    // The runtime stage's ENV instruction, with its continuation lines.
    const text = readFileSync(DOCKERFILE, "utf8").replace(/\\\n\s*/g, " ");
    const env = text.split("\n").filter((l) => l.startsWith("ENV ")).join(" ");
    for (const [k, v] of Object.entries(AGENT_MALLOC_ENV)) expect(env, k).toContain(`${k}=${v}`);
  });
});
