/**
 * The watch workload: processes put unique values under a key prefix through the faults while
 * one watcher per node watches the prefix from index 0, resuming on another node whenever its
 * stream ends and, every few seconds, moving on purpose. After the heal every watcher must catch
 * up; checkWatch then asserts every change was seen once, in order, never back in time.
 */
import { sleep } from "../runner/clock.js";
import { errorOutcome, errorText } from "../runner/outcome.js";
import { retryUntil, runProcesses } from "./processes.js";
import type { Workload } from "./types.js";
import { type AckedWrite, checkWatch, type WatcherLog } from "./watch-checker.js";
import { ReconnectingWatcher } from "./watcher.js";

const PREFIX = "jepsen/watch/";
const KEYS = 4;
/** MOVE_MS: a watcher moves to another node every MOVE_MS ± 50 %, so resumes happen without faults too. */
const MOVE_MS = 4_000;
/** CATCH_UP_MS bounds the wait for every watcher to reach the final index. */
const CATCH_UP_MS = 20_000;

/** watchWorkload creates the workload. */
export function watchWorkload(): Workload {
  let next = 0;
  let watchers: ReconnectingWatcher[] = [];
  const caughtUp = new Map<string, boolean>();
  const stopMoves = new AbortController();
  let moves: Promise<void> = Promise.resolve();
  return {
    name: "watch",
    writeFs: ["put"],
    async setup(ctx) {
      watchers = ctx.cluster.nodes.map((n, i) => new ReconnectingWatcher(ctx, `w${i + 1}`, n, { keyPrefix: PREFIX, kinds: ["kv"] }));
      for (const w of watchers) w.start();
      const rng = ctx.rng.fork();
      moves = (async () => {
        while (!stopMoves.signal.aborted) {
          await sleep(MOVE_MS * (0.5 + rng.next()), stopMoves.signal);
          if (!stopMoves.signal.aborted) rng.pick(watchers).moveTo(rng.pick(ctx.cluster.nodes));
        }
      })();
    },
    run: (ctx, signal) =>
      runProcesses(ctx, signal, async (process, node, rng) => {
        const key = `${PREFIX}k${rng.int(0, KEYS - 1)}`;
        const value = `v${next++}`;
        const op = ctx.history.invoke(process, node, "put", { key, value });
        try {
          const res = await ctx.clients.get(node).put(key, value, { deadlineMs: ctx.options.opTimeoutMs });
          op.ok({ index: res.index });
          return "done";
        } catch (err) {
          if (errorOutcome(err) === "fail") {
            op.fail(errorText(err));
            return "done";
          }
          op.info(errorText(err));
          return "info";
        }
      }),
    async final(ctx) {
      ctx.history.phase("final-reads");
      stopMoves.abort();
      await moves;
      const node = ctx.cluster.nodes[0] as string;
      const target = await retryUntil("final index", () => ctx.clients.get(node).get(`${PREFIX}k0`, { deadlineMs: ctx.options.opTimeoutMs * 3 }));
      await Promise.all(watchers.map(async (w) => caughtUp.set(w.name, await w.waitFor(target.index, CATCH_UP_MS))));
      for (const w of watchers) w.stop();
    },
    async check(ctx) {
      const logs: WatcherLog[] = watchers.map((w) => ({
        name: w.name,
        caughtUp: caughtUp.get(w.name) === true,
        lastIndex: w.resumeFrom,
        changes: w.events.map((e) => ({
          index: e.index,
          key: e.event.kv?.key ?? e.event.key,
          what: `${e.event.type} ${e.event.kv?.value?.toString() ?? ""}`,
          time: Math.round(e.time),
          connection: e.connection,
        })),
      }));
      const acked: AckedWrite[] = ctx.history
        .ops()
        .filter((o) => o.f === "put" && o.status === "ok")
        .map((o) => {
          const input = o.input as { key: string; value: string };
          return { index: (o.output as { index: number }).index, key: input.key, what: `put ${input.value}` };
        });
      const result = checkWatch(logs, acked);
      return [{ ...result, stats: { ...result.stats, streamsOpened: watchers.map((w) => w.connections) } }];
    },
  };
}

