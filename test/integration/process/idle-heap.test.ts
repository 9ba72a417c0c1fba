/**
 * The idle-heap controller (src/agent/idle-heap.ts) in real child processes: each grows its heap
 * past 300 MB, drops what it grew, and rests while allocating 3 MB/s of short-lived garbage (as an
 * idle leader does). With the controller the heap is given back within seconds; without it V8's
 * memory reducer finds the allocation rate too high and the heap stays grown for the whole window
 * (its watchdog would act only after 100 s). Both run side by side (test/fixtures/idle-heap.ts).
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../harness/process-cluster.js";

const FIXTURE = join(REPO_ROOT, "test/fixtures/idle-heap.ts");
/** WINDOW_S: how long each child rests; the controller's shrink came at ~9 s here (4 quiet checks of 500 ms, then the reducer's next timer). */
const WINDOW_S = 20;

interface Sample {
  t: number;
  heapTotal: number;
  state: string;
}

async function run(mode: "on" | "off"): Promise<{ peak: number; samples: Sample[] }> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", FIXTURE, mode, String(WINDOW_S)], { cwd: REPO_ROOT, timeout: 90_000 });
  const lines = stdout.trim().split("\n").map((l) => JSON.parse(l));
  const end = lines.pop() as { peak: number };
  return { peak: end.peak, samples: lines as Sample[] };
}

describe("idle heap", () => {
  it("idle heap: at rest the controller lets V8 give a grown heap back within seconds; without it the heap stays grown", async () => {
    const [on, off] = await Promise.all([run("on"), run("off")]);
    expect(on.peak).toBeGreaterThan(200e6);
    expect(off.peak).toBeGreaterThan(200e6);
    // With the controller: at rest, then the heap under a quarter of its peak before the window
    // ends. (The reducer's collections may count as work for a check: the state is not asserted at
    // the shrink itself.)
    const givenAt = on.samples.findIndex((s) => s.heapTotal < on.peak / 4);
    expect(givenAt, `heapTotal with the controller: ${on.samples.map((s) => Math.round(s.heapTotal / 1e6)).join(",")} MB`).toBeGreaterThan(0);
    expect(on.samples.slice(0, givenAt).some((s) => s.state === "rest"), `states: ${on.samples.map((s) => s.state[0]).join("")}`).toBe(true);
    // Without: never below half its peak in the same window (the negative control).
    expect(Math.min(...off.samples.map((s) => s.heapTotal)), `heapTotal without: ${off.samples.map((s) => Math.round(s.heapTotal / 1e6)).join(",")} MB`).toBeGreaterThan(off.peak / 2);
  }, 120_000);
});
