/**
 * The set workload: register unique instances of one service through the faults (each register
 * is an add of a unique element); after the heal, read the service on every node and check with
 * checkSet that no acknowledged add was lost.
 */
import { sleep } from "../runner/clock.js";
import { errorOutcome, errorText } from "../runner/outcome.js";
import { runProcesses } from "./processes.js";
import { checkSet, type SetAdd, type SetFinalRead } from "./set-checker.js";
import type { Workload } from "./types.js";

const SERVICE = "jepsen-set";
/** TTL_MS is long so that leases never matter to this workload (health is not checked). */
const TTL_MS = 3_600_000;
/** FINAL_READ_ATTEMPTS and FINAL_READ_PAUSE_MS bound the retries of each node's final read. */
const FINAL_READ_ATTEMPTS = 40;
const FINAL_READ_PAUSE_MS = 250;

/** setWorkload creates the workload. */
export function setWorkload(): Workload {
  let next = 0;
  return {
    name: "set",
    writeFs: ["add"],
    async setup() {},
    run: (ctx, signal) =>
      runProcesses(ctx, signal, async (process, node) => {
        const element = `e${next++}`;
        const op = ctx.history.invoke(process, node, "add", { element });
        try {
          await ctx.clients.get(node).register({ id: element, service: SERVICE, address: "10.99.0.1", port: 1 + (next % 60_000), ttlMs: TTL_MS }, { deadlineMs: ctx.options.opTimeoutMs });
          op.ok();
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
      for (const node of ctx.cluster.nodes) {
        for (let i = 0; i < FINAL_READ_ATTEMPTS; i++) {
          const op = ctx.history.invoke(2_000_000, node, "read", { service: SERVICE });
          try {
            const res = await ctx.clients.get(node).getService(SERVICE, { deadlineMs: ctx.options.opTimeoutMs * 3 });
            op.ok(res.instances.map((x) => x.id));
            break;
          } catch (err) {
            op.fail(errorText(err));
            await sleep(FINAL_READ_PAUSE_MS);
          }
        }
      }
    },
    async check(ctx) {
      const ops = ctx.history.ops();
      const adds: SetAdd[] = ops.filter((o) => o.f === "add").map((o) => ({ element: (o.input as { element: string }).element, status: o.status }));
      const reads: SetFinalRead[] = ctx.cluster.nodes.map((node) => {
        const ok = ops.find((o) => o.f === "read" && o.node === node && o.status === "ok");
        return { node, elements: ok ? (ok.output as string[]) : undefined };
      });
      return [checkSet(adds, reads)];
    },
  };
}
