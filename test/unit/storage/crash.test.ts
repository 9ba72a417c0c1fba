import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { entries, openStore, RecordingLogger, TempDirs } from "./helpers.js";

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

const PROJECT_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const WRITER = fileURLToPath(new URL("./fixtures/crash-writer.ts", import.meta.url));
/** CRASH_ROUNDS is how many times one directory is written and killed: later rounds recover from earlier crashes. */
const CRASH_ROUNDS = 4;
/** KILL_DELAY_MS_MAX bounds the random wait after the first ack, long enough for hundreds of synced saves. */
const KILL_DELAY_MS_MAX = 400;
/** WRITER_START_MS_MAX bounds how long the writer may take to start and ack once before the test fails. */
const WRITER_START_MS_MAX = 30_000;

interface Round {
  readonly ackedMax: number;
}

/**
 * runAndKill starts the writer, waits for its first ack plus a random delay, then SIGKILLs it. The
 * writer runs under `node --import tsx` rather than the tsx binary, because the binary runs the
 * script in a child process of its own and a SIGKILL to it would leave the writer running.
 */
function runAndKill(dir: string, entriesPerBatch: number, killDelayMs: number, commitLag = 0): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", WRITER, dir, String(entriesPerBatch), String(commitLag)], {
      cwd: PROJECT_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let ackedMax = 0;
    let pending = "";
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    const startTimer = setTimeout(() => child.kill("SIGKILL"), WRITER_START_MS_MAX);
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on("data", (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const match = /^acked (\d+)$/.exec(line);
        if (match === null) continue;
        ackedMax = Math.max(ackedMax, Number(match[1]));
        if (timer === undefined) {
          clearTimeout(startTimer);
          timer = setTimeout(() => child.kill("SIGKILL"), killDelayMs);
        }
      }
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(startTimer);
      if (signal === "SIGKILL" && timer !== undefined) resolve({ ackedMax });
      else reject(new Error(`writer ended with code ${code} signal ${signal} before the kill: ${stderr}`));
    });
  });
}

describe("LogStore crash safety", () => {
  it("storage: every acknowledged entry survives SIGKILL at a random moment", async () => {
    const dir = await dirs.make();
    const delays = Array.from({ length: CRASH_ROUNDS }, () => Math.floor(Math.random() * KILL_DELAY_MS_MAX));
    // Printed so that a failure can be replayed with the same timings.
    console.log(`crash test kill delays (ms): ${delays.join(",")}`);
    let ackedOverall = 0;
    for (const [round, killDelayMs] of delays.entries()) {
      const { ackedMax } = await runAndKill(dir, 1 + round * 5, killDelayMs);
      console.log(`crash round ${round}: killed ${killDelayMs} ms after the first ack; last acked index ${ackedMax}`);
      expect(ackedMax).toBeGreaterThan(ackedOverall);
      ackedOverall = ackedMax;
      const logger = new RecordingLogger();
      const { store, state } = await openStore(dir, logger);
      // Entries past the last ack may or may not be there; every acked one must be, intact.
      expect(state.entries.length).toBeGreaterThanOrEqual(ackedMax);
      expect(state.entries.slice(0, ackedMax)).toEqual(entries(1, ackedMax, 1));
      expect(state.hardState.commit).toBeGreaterThanOrEqual(ackedMax);
      await store.close();
    }
  });

  it("storage: SIGKILL in the middle of saves above the commit index leaves an intact log, with nothing to repair", async () => {
    // LevelDB replays whole batches only, so a crash never leaves a torn entry behind: recovery
    // finds no fault to report even where the tail is uncommitted (and refuses any it would find).
    const dir = await dirs.make();
    const commitLag = 1000;
    const delays = Array.from({ length: CRASH_ROUNDS }, () => Math.floor(Math.random() * KILL_DELAY_MS_MAX));
    console.log(`crash test (commit lag ${commitLag}) kill delays (ms): ${delays.join(",")}`);
    for (const [round, killDelayMs] of delays.entries()) {
      const { ackedMax } = await runAndKill(dir, 1 + round * 5, killDelayMs, commitLag);
      const logger = new RecordingLogger();
      const { store, state } = await openStore(dir, logger);
      expect(state.entries.slice(0, ackedMax)).toEqual(entries(1, ackedMax, 1));
      expect(state.entries).toEqual(entries(1, state.entries.length, 1));
      expect(state.hardState.commit).toBeLessThan(ackedMax);
      expect(logger.warnings).toEqual([]);
      await store.close();
    }
  });
});
