import { describe, expect, it } from "vitest";
import { NODE_SCHEDULER } from "../../../src/node/scheduler.js";

/**
 * NODE_SCHEDULER.after(0) is what long work (snapshot and restore slices, read answers) yields
 * with between steps: the next loop turn, after I/O and due timers, without the millisecond that
 * setTimeout(0) waits in Node.
 */
const turn = () => new Promise<void>((resolve) => NODE_SCHEDULER.after(0, resolve));

describe("node scheduler", () => {
  it("after(0) is the next loop turn: 200 yields in a row take far less than the 200 ms setTimeout(0) would", async () => {
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) await turn();
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it("after(0) lets due timers and I/O run between two steps of long work", async () => {
    let timerRan = false;
    setTimeout(() => {
      timerRan = true;
    }, 5);
    let ioDone = false;
    const io = import("node:fs/promises").then((fs) => fs.readFile(new URL(import.meta.url))).then(() => {
      ioDone = true;
    });
    // Work that yields only with after(0): it must not hold off the timer or the read.
    const end = performance.now() + 200;
    while (!(timerRan && ioDone) && performance.now() < end) {
      const busyUntil = performance.now() + 1;
      while (performance.now() < busyUntil) {
        // a slice of work
      }
      await turn();
    }
    await io;
    expect(timerRan).toBe(true);
    expect(ioDone).toBe(true);
  });

  it("after(0) cancelled does not run", async () => {
    let ran = false;
    const cancel = NODE_SCHEDULER.after(0, () => {
      ran = true;
    });
    cancel();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(ran).toBe(false);
  });
});
