/**
 * The at-rest V8 setting (src/common/rest-flag.ts): set and cleared with the semi-space flag put
 * back, held off while a new isolate sizes its heap, and the reason for the hold measured on real
 * worker threads: an isolate made while the setting is on gets a 1 MB semi-space.
 */
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { holdRestOff, restFlagApplied, setResting, setRestFlagSetter, startingSemiSpaceMb } from "../../../src/common/rest-flag.js";

/** newSpaceOfNewWorker is the new space a fresh worker grows to under allocation (bytes). */
function newSpaceOfNewWorker(): Promise<number> {
  const code = `const v8 = require("node:v8"); let a = []; for (let i = 0; i < 3e6; i++) { a.push({ i }); if (a.length > 1000) a = []; }
require("node:worker_threads").parentPort.postMessage(v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size);`;
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 48 } });
    w.once("message", (n: number) => {
      resolve(n);
      void w.terminate();
    });
    w.once("error", reject);
  });
}

describe("rest flag", () => {
  afterEach(() => setResting(false));

  it("rest flag: on and off, the semi-space flag put back as the process started; a hold keeps it off until released once", () => {
    const set: string[] = [];
    const prev = setRestFlagSetter((f) => set.push(f));
    try {
      setResting(true);
      expect(restFlagApplied()).toBe(true);
      const release = holdRestOff();
      expect(restFlagApplied()).toBe(false);
      const second = holdRestOff();
      release();
      release();
      expect(restFlagApplied()).toBe(false);
      second();
      expect(restFlagApplied()).toBe(true);
      setResting(false);
      expect(set).toEqual([
        "--optimize-for-size",
        "--no-optimize-for-size",
        `--max-semi-space-size=${startingSemiSpaceMb()}`,
        "--optimize-for-size",
        "--no-optimize-for-size",
        `--max-semi-space-size=${startingSemiSpaceMb()}`,
      ]);
    } finally {
      setRestFlagSetter(prev);
    }
  });

  it("rest flag: the starting semi-space comes from the process's arguments, 0 when not given", () => {
    expect(startingSemiSpaceMb([])).toBe(0);
    expect(startingSemiSpaceMb(["--max-semi-space-size=16"])).toBe(16);
    expect(startingSemiSpaceMb(["--max_semi_space_size", "32", "--inspect"])).toBe(32);
    expect(startingSemiSpaceMb(["--max-semi-space-size=x"])).toBe(0);
  });

  it("rest flag: a worker made while the process rests gets a 1 MB semi-space; held off, and after the setting is cleared, its own size", async () => {
    const normal = await newSpaceOfNewWorker();
    setResting(true);
    const small = await newSpaceOfNewWorker();
    const release = holdRestOff();
    const held = await newSpaceOfNewWorker();
    release();
    setResting(false);
    const after = await newSpaceOfNewWorker();
    expect(small).toBeLessThan(normal / 2);
    expect(held).toBe(normal);
    expect(after).toBe(normal);
  }, 60_000);
});
