import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { TURN_BUDGET_MS, TurnBudget } from "../../../src/api/turn-budget.js";

/** FakeClock is a clock the test moves by hand (each admitted call "costs" what the test says). */
class FakeClock {
  t = 1_000;
  readonly now = () => this.t;
}

describe("TurnBudget", () => {
  it("starts calls at once while the turn's budget lasts, then queues the rest in arrival order for later turns, a budget's worth per turn", async () => {
    const clock = new FakeClock();
    const budget = new TurnBudget(TURN_BUDGET_MS, clock.now);
    const ran: number[] = [];
    // Each call costs 4 ms: within a 10 ms budget, the calls starting at 0, 4 and 8 ms run now.
    const call = (i: number) => () => {
      ran.push(i);
      clock.t += 4;
    };
    for (let i = 0; i < 10; i++) budget.admit(call(i));
    expect(ran).toEqual([0, 1, 2]);
    expect(budget.waiting).toBe(7);
    expect(budget.deferred).toBe(7);
    // A call that arrives while others wait goes behind them, even in a new turn.
    await nextTurn();
    budget.admit(call(10));
    expect(ran.slice(0, 3)).toEqual([0, 1, 2]);
    // Later turns drain the queue a budget's worth at a time (three 4 ms calls each), in order.
    const perTurn: number[] = [];
    while (budget.waiting > 0) {
      const before = ran.length;
      await nextTurn();
      perTurn.push(ran.length - before);
    }
    expect(ran).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(Math.max(...perTurn)).toBeLessThanOrEqual(3);
    // With the queue empty, a new turn admits at once again.
    await nextTurn();
    budget.admit(call(11));
    expect(ran.at(-1)).toBe(11);
  });

  it("lets a timer due meanwhile run between two drained slices (the Raft tick is a timer)", async () => {
    const clock = new FakeClock();
    const budget = new TurnBudget(TURN_BUDGET_MS, clock.now);
    const order: string[] = [];
    for (let i = 0; i < 30; i++) {
      budget.admit(() => {
        order.push("call");
        clock.t += 5;
      });
    }
    setTimeout(() => order.push("tick"), 0);
    while (budget.waiting > 0) await new Promise((r) => setTimeout(r, 1));
    const tick = order.indexOf("tick");
    expect(tick).toBeGreaterThan(0);
    // The tick ran before the queue was drained, not after all 30 calls.
    expect(tick).toBeLessThan(order.length - 1);
  });
});
