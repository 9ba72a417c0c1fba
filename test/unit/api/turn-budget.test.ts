import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import type { ServerUnaryCall } from "@grpc/grpc-js";
import { status as Status } from "@grpc/grpc-js";
import { NotFoundError } from "../../../src/api/errors.js";
import { unary } from "../../../src/api/handler.js";
import { TURN_BUDGET_MS, TURN_QUEUE_MAX, TurnBudget } from "../../../src/api/turn-budget.js";

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
    // The real clock: each call busies the thread for 3 ms, so a slice (10 ms) always outlasts the
    // 1 ms timer, which must then run before the next slice, not after the whole queue.
    const budget = new TurnBudget(TURN_BUDGET_MS);
    const busy = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until) {}
    };
    const order: string[] = [];
    for (let i = 0; i < 30; i++) {
      budget.admit(() => {
        order.push("call");
        busy(3);
      });
    }
    setTimeout(() => order.push("tick"), 0);
    while (budget.waiting > 0) await new Promise((r) => setTimeout(r, 1));
    const tick = order.indexOf("tick");
    expect(tick).toBeGreaterThan(0);
    // At most the first turn's slice and one drained slice (4 calls each) come before the tick.
    expect(tick).toBeLessThanOrEqual(8);
  });

  it(`refuses a call at once when ${TURN_QUEUE_MAX} already wait (the queue is bounded), and takes calls again once it drained`, async () => {
    const clock = new FakeClock();
    const max = 5;
    const budget = new TurnBudget(TURN_BUDGET_MS, clock.now, max);
    let ran = 0;
    const expensive = () => {
      ran++;
      clock.t += TURN_BUDGET_MS;
    };
    expect(budget.admit(expensive)).toBe(true); // runs now and spends the turn
    for (let i = 0; i < max; i++) expect(budget.admit(expensive)).toBe(true);
    expect(budget.waiting).toBe(max);
    expect(budget.admit(expensive)).toBe(false);
    expect(ran).toBe(1);
    while (budget.waiting > 0) await nextTurn();
    expect(ran).toBe(1 + max);
    await nextTurn();
    expect(budget.admit(expensive)).toBe(true);
  });

  it("a call whose caller is gone by the time it starts runs nothing; a handler that throws at once is answered with its status", () => {
    const answers: unknown[] = [];
    let ran = 0;
    const handler = unary(async () => {
      ran++;
      return {};
    });
    handler({ cancelled: true } as unknown as ServerUnaryCall<unknown, unknown>, (err, res) => answers.push(err ?? res));
    expect(ran).toBe(0);
    expect(answers).toEqual([]);
    const throwing = unary((() => {
      throw new NotFoundError("no such thing");
    }) as unknown as () => Promise<object>);
    throwing({ cancelled: false } as unknown as ServerUnaryCall<unknown, unknown>, (err) => answers.push(err));
    expect(answers).toHaveLength(1);
    expect((answers[0] as { code: number }).code).toBe(Status.NOT_FOUND);
  });
});
