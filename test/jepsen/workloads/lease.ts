/**
 * The lease workload: LEASE_INSTANCES instances heartbeat through the faults (each from a client
 * pinned to one node, moving to the next node after a failed heartbeat, as a real agent would; with
 * --clients pinned it never moves, so it is cut off together with its node);
 * half of them stop heartbeating at a planned moment. A watcher on the service records every
 * health change with its healthSince stamp; checkLease judges safety and liveness.
 */
import type { InstanceMsg } from "../../../src/common/messages.js";
import { CLOCK_SLACK_MS, sleep } from "../runner/clock.js";
import { errorOutcome, errorText } from "../runner/outcome.js";
import { faultIntervals } from "../runner/stats.js";
import type { NemesisRecord } from "../runner/history.js";
import { retryUntil } from "./processes.js";
import { checkLease, cutOffWindows, type HealthTransition, type LeaseHeartbeat, markLowerBounds, markTimes, type StoppedInstance } from "./lease-checker.js";
import type { Workload, WorkloadContext } from "./types.js";
import { ReconnectingWatcher } from "./watcher.js";

const SERVICE = "jepsen-lease";
/** LEASE_INSTANCES: enough that some stop during faults and some keep going. */
export const LEASE_INSTANCES = 8;
/** LEASE_TTL_MS: short, so expiries happen inside one fault; 3 s is 5–10 election timeouts. */
export const LEASE_TTL_MS = 3_000;
/** HEARTBEAT_EVERY_MS: five heartbeats per TTL, so one or two lost ones never expire a lease. */
const HEARTBEAT_EVERY_MS = LEASE_TTL_MS / 5;
/**
 * PINNED_HEARTBEAT_EVERY_MS: pinned instances heartbeat every 100 ms. A leader cut off together
 * with its instances may go on answering them for a few hundred ms after the others elected a new
 * leader (until its check-quorum notices); heartbeats every TTL/5 (600 ms) mostly miss that window,
 * heartbeats every 100 ms land in it, so an acknowledgement given there is tested in most faults.
 */
export const PINNED_HEARTBEAT_EVERY_MS = 100;
/**
 * LEASE_MARK_BOUND_MS is the stated bound on marking after the TTL: the leader checks every
 * 100 ms (LEASE_CHECK_MS), a lost expiry proposal is retried after 1 s (LEASE_RETRY_MS), and the
 * commit takes well under 100 ms on a healthy cluster; 2 s covers all three with room.
 */
export const LEASE_MARK_BOUND_MS = 2_000;
/** CATCH_UP_MS bounds the wait for the watcher to reach the final index. */
const CATCH_UP_MS = 20_000;

/** leaseWorkload creates the workload. */
export function leaseWorkload(): Workload {
  const ids = Array.from({ length: LEASE_INSTANCES }, (_, i) => `lease-${i}`);
  const stopped = new Map<string, number>();
  const stopBeats = new AbortController();
  let beats: Promise<void>[] = [];
  let watcher: ReconnectingWatcher | undefined;
  let caughtUp = false;
  let endAt = 0;

  const beat = async (ctx: WorkloadContext, id: string, i: number, stopAt: number | undefined) => {
    const nodes = ctx.cluster.nodes;
    let node = nodes[i % nodes.length] as string;
    let lastReturn = 0;
    while (!stopBeats.signal.aborted && (stopAt === undefined || ctx.clock.now() < stopAt)) {
      const op = ctx.history.invoke(100_000 + i, node, "heartbeat", { id });
      try {
        const res = await ctx.clients.get(node).heartbeat(SERVICE, id, "", "", { deadlineMs: ctx.options.opTimeoutMs });
        lastReturn = op.ok({ health: res.health, index: Number(res.index) }).return;
      } catch (err) {
        lastReturn = (errorOutcome(err) === "fail" ? op.fail(errorText(err)) : op.info(errorText(err))).return;
        // A pinned instance stays with its node, as if it ran beside it: cut off with it, it keeps
        // heartbeating through it (an isolated old leader included) and never reaches the others.
        if (!ctx.options.pinnedClients) node = nodes[(nodes.indexOf(node) + 1) % nodes.length] as string;
      }
      await sleep(ctx.options.pinnedClients ? PINNED_HEARTBEAT_EVERY_MS : HEARTBEAT_EVERY_MS, stopBeats.signal);
    }
    if (stopAt !== undefined) stopped.set(id, lastReturn);
  };

  return {
    name: "lease",
    writeFs: ["heartbeat"],
    async setup(ctx) {
      watcher = new ReconnectingWatcher(ctx, "health", ctx.cluster.nodes[0] as string, { service: SERVICE, kinds: ["instance"] });
      watcher.start();
      for (const [i, id] of ids.entries()) {
        const node = ctx.cluster.nodes[i % ctx.cluster.nodes.length] as string;
        await retryUntil(`register ${id}`, async () => {
          const op = ctx.history.invoke(200_000 + i, node, "register", { id });
          try {
            await ctx.clients.get(node).register({ id, service: SERVICE, address: "10.99.0.2", port: 1000 + i, ttlMs: LEASE_TTL_MS }, { deadlineMs: ctx.options.opTimeoutMs * 3 });
            op.ok();
          } catch (err) {
            op.info(errorText(err));
            throw err;
          }
        });
      }
      // Half the instances stop between 20 % and 70 % of the load (mostly while faults run).
      const rng = ctx.rng.fork();
      const start = ctx.clock.now();
      beats = ids.map((id, i) => beat(ctx, id, i, i % 2 === 1 ? start + ctx.options.loadMs * (0.2 + 0.5 * rng.next()) : undefined));
    },
    async run(_ctx, signal) {
      // Heartbeats run from setup until the final read, so live instances stay live through it.
      await sleep(2_000_000_000, signal);
    },
    async final(ctx) {
      ctx.history.phase("final-reads");
      const node = ctx.cluster.nodes[0] as string;
      const got = await retryUntil("final service read", () => ctx.clients.get(node).getService(SERVICE, { deadlineMs: ctx.options.opTimeoutMs * 3 }));
      caughtUp = (await watcher?.waitFor(got.index, CATCH_UP_MS)) === true;
      endAt = ctx.clock.now();
      stopBeats.abort();
      await Promise.all(beats);
      watcher?.stop();
    },
    async check(ctx) {
      const heartbeats: LeaseHeartbeat[] = ctx.history
        .ops()
        .filter((o) => o.f === "heartbeat")
        .map((o) => ({ id: (o.input as { id: string }).id, status: o.status, call: o.call, return: o.return, node: o.node }));
      const nemesis = ctx.history.entries.filter((e): e is NemesisRecord => e.type === "nemesis");
      // healthSince is cluster time: markTimes converts it to run time (wall clocks play no part,
      // so clock faults change nothing here).
      const seen = (watcher?.events ?? []).filter((e) => e.event.kind === "instance" && e.event.instance);
      const at = markTimes(seen.map((e) => ({ time: e.time, clusterMs: Number((e.event.instance as InstanceMsg).healthSinceMs) })));
      // Heartbeats that caused a change (a revival) name its index: their call times bound the
      // changes after them from below.
      const causeCalls = new Map<number, number>();
      for (const o of ctx.history.ops()) {
        const index = o.f === "heartbeat" && o.status === "ok" ? Number((o.output as { index?: number } | undefined)?.index ?? 0) : 0;
        if (index > 0) causeCalls.set(index, Math.min(causeCalls.get(index) ?? Number.POSITIVE_INFINITY, o.call));
      }
      const lastHealth = new Map<string, string>();
      const notBefore = markLowerBounds(
        seen.map((e) => {
          const inst = e.event.instance as InstanceMsg;
          const fresh = lastHealth.get(inst.id) !== inst.health;
          lastHealth.set(inst.id, inst.health);
          return { index: e.index, clusterMs: Number(inst.healthSinceMs), fresh };
        }),
        causeCalls,
      );
      const transitions: HealthTransition[] = seen.map((e, i) => {
        const inst = e.event.instance as InstanceMsg;
        return { id: inst.id, index: e.index, health: inst.health, at: at[i] as number, notBefore: notBefore[i] as number };
      });
      const stoppedList: StoppedInstance[] = [...stopped].map(([id, lastReturn]) => ({ id, lastReturn }));
      const faults = faultIntervals(nemesis, endAt);
      const cutOff = cutOffWindows(faults, ctx.cluster.nodes, ctx.options.faultHoldMinMs);
      const result = checkLease({ ttlMs: LEASE_TTL_MS, boundMs: LEASE_MARK_BOUND_MS, slackMs: CLOCK_SLACK_MS, heartbeats, transitions, stopped: stoppedList, faults, endAt: caughtUp ? endAt : 0, cutOff });
      return [caughtUp ? result : { ...result, valid: result.valid === false ? false : "unknown", summary: `${result.summary} (the watcher never caught up)` }];
    },
  };
}
