/**
 * joinedInSlices joins a snapshot job's chunks a bounded number of bytes per step: the joined bytes
 * are the chunks in order whatever the chunk sizes and the slice, no step copies more than the
 * slice, and a single chunk is passed on without a copy.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { joinChunks, joinedInSlices, type SnapshotJob } from "../../../src/node/state-machine.js";

/** jobOf is a job that needs `steps` steps before it returns chunks. */
function jobOf(chunks: readonly Uint8Array[], steps: number): SnapshotJob {
  let left = steps;
  return { step: () => (--left > 0 ? undefined : chunks) };
}

function run(job: SnapshotJob): { out: Uint8Array; steps: number } {
  for (let steps = 1; steps < 100_000; steps++) {
    const chunks = job.step();
    if (chunks !== undefined) {
      expect(chunks).toHaveLength(1);
      return { out: chunks[0] as Uint8Array, steps };
    }
  }
  throw new Error("the job never ended");
}

describe("node: joinedInSlices", () => {
  it("gives the chunks joined in order, copying at most the slice per step", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }), fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 4 }), (chunks, slice, jobSteps) => {
        const { out, steps } = run(joinedInSlices(jobOf(chunks, jobSteps), slice));
        expect(Buffer.from(out).equals(Buffer.from(joinChunks(chunks)))).toBe(true);
        const total = chunks.reduce((n, c) => n + c.length, 0);
        if (chunks.length !== 1) {
          // The job's own steps, one step that sizes the array, then at least total/slice copying steps.
          expect(steps).toBeGreaterThanOrEqual(jobSteps + Math.ceil(total / slice));
          expect(steps).toBeLessThanOrEqual(jobSteps + 1 + Math.max(1, Math.ceil(total / slice)));
        }
      }),
      { numRuns: 500 },
    );
  });

  it("passes a single chunk on as it is, in the job's own last step", () => {
    const only = Uint8Array.of(1, 2, 3);
    const { out, steps } = run(joinedInSlices(jobOf([only], 3), 1));
    expect(out).toBe(only);
    expect(steps).toBe(3);
  });

  it("refuses a slice of no bytes, which would never finish", () => {
    for (const slice of [0, -1, Number.NaN, 1.5]) expect(() => joinedInSlices(jobOf([], 1), slice)).toThrow(/sliceBytes must be a positive integer/);
  });
});
