/**
 * The register workload: get / put / compare-and-set on a few KV keys, checked for
 * linearizability per key with the WGL checker and meshKvModel.
 *
 * A cas is a read-modify-write: a linearizable get (recorded as its own read) gives the value and
 * its mod index, then cas(key, new, modIndex) is recorded as cas(expected = value read). That is
 * exact because values are unique and never deleted: the key's mod index is still the one read
 * if and only if its value is still the one read.
 *
 * Outcomes: a get that failed in any way is `fail` (a read has no effect); a put or cas that
 * failed is `fail` only when the server said it was not applied (errorOutcome), else `info`.
 * With --unsafe-blind-retry (a negative control) a timed-out put or cas is sent again on another
 * node by a client with no shared session, and recorded `ok` with the retry's answer.
 */
import { checkLinearizable } from "../checker/linearizability.js";
import type { Operation } from "../checker/history.js";
import { type MeshKvInput, type MeshKvOutput, meshKvModel, partitionByKey } from "../checker/models.js";
import { sleep } from "../runner/clock.js";
import type { OpRecord } from "../runner/history.js";
import { errorOutcome, errorText } from "../runner/outcome.js";
import type { Rng } from "../runner/rng.js";
import { runProcesses } from "./processes.js";
import type { Anomaly, CheckerResult, Workload, WorkloadContext } from "./types.js";

/** REGISTER_KEYS is how many keys the workload uses: few, so operations contend. */
export const REGISTER_KEYS = 4;
const KEY_PREFIX = "jepsen/register/";
/** FINAL_READ_ATTEMPTS bounds the retries of each final read. */
const FINAL_READ_ATTEMPTS = 20;
/** FINAL_READ_PAUSE_MS is the pause between attempts of a final read. */
const FINAL_READ_PAUSE_MS = 250;
/** EXAMPLE_OPS_MAX bounds the operations shown in an anomaly's example. */
const EXAMPLE_OPS_MAX = 12;

type Step = (ctx: WorkloadContext, process: number, node: string, rng: Rng) => Promise<"done" | "info">;

/** registerWorkload creates the workload (its value counter is per run). */
export function registerWorkload(): Workload {
  let nextValue = 0;
  const keys = Array.from({ length: REGISTER_KEYS }, (_, i) => `${KEY_PREFIX}k${i}`);

  const read = async (ctx: WorkloadContext, process: number, node: string, key: string) => {
    const op = ctx.history.invoke(process, node, "get", { f: "get", key });
    try {
      const res = await ctx.clients.get(node).get(key, { deadlineMs: ctx.options.opTimeoutMs });
      const value = res.found ? res.value.toString() : null;
      op.ok(value);
      return { value, modIndex: res.found ? (res.kv?.modIndex ?? -1) : 0 };
    } catch (err) {
      op.fail(errorText(err));
      return undefined;
    }
  };

  /** write runs a put or cas and records it, with the blind retry when that control is on. */
  const write = async (
    ctx: WorkloadContext,
    process: number,
    node: string,
    input: MeshKvInput,
    send: (client: ReturnType<WorkloadContext["clients"]["get"]>) => Promise<MeshKvOutput | undefined>,
  ): Promise<"done" | "info"> => {
    const op = ctx.history.invoke(process, node, input.f, input);
    try {
      op.ok(await send(ctx.clients.get(node)));
      return "done";
    } catch (err) {
      if (errorOutcome(err) === "fail") {
        op.fail(errorText(err));
        return "done";
      }
      if (ctx.options.unsafeBlindRetry) {
        const nodes = ctx.cluster.nodes;
        const other = nodes[(nodes.indexOf(node) + 1) % nodes.length] as string;
        try {
          op.ok(await send(ctx.clients.fresh(other)));
          return "done";
        } catch {
          // fall through: the retry failed too, so the outcome stays unknown.
        }
      }
      op.info(errorText(err));
      return "info";
    }
  };

  const step: Step = async (ctx, process, node, rng) => {
    const key = rng.pick(keys);
    const roll = rng.next();
    const deadlineMs = ctx.options.opTimeoutMs;
    if (roll < 0.4) {
      await read(ctx, process, node, key);
      return "done";
    }
    const value = `v${nextValue++}`;
    if (roll < 0.7) {
      return write(ctx, process, node, { f: "put", key, value }, async (c) => {
        await c.put(key, value, { deadlineMs });
        return undefined;
      });
    }
    const seen = await read(ctx, process, node, key);
    if (!seen || seen.modIndex < 0) return "done";
    return write(ctx, process, node, { f: "cas", key, expected: seen.value, value }, async (c) => {
      const res = await c.cas(key, value, seen.modIndex, { deadlineMs });
      return res.succeeded;
    });
  };

  return {
    name: "register",
    writeFs: ["put", "cas"],
    async setup() {},
    run: (ctx, signal) => runProcesses(ctx, signal, (p, n, rng) => step(ctx, p, n, rng)),
    async final(ctx) {
      ctx.history.phase("final-reads");
      let process = 1_000_000;
      for (const node of ctx.cluster.nodes) {
        for (const key of keys) {
          for (let i = 0; i < FINAL_READ_ATTEMPTS; i++) {
            if (await read(ctx, process++, node, key)) break;
            await sleep(FINAL_READ_PAUSE_MS);
          }
        }
      }
    },
    async check(ctx) {
      return [checkRegister(ctx.history.ops(), ctx.options.checkBudgetMs)];
    },
  };
}

/** toOperation turns a recorded register op into the checker's form. */
function toOperation(r: OpRecord): Operation<MeshKvInput, MeshKvOutput> {
  return { clientId: r.process, input: r.input as MeshKvInput, output: r.output as MeshKvOutput | undefined, call: r.call, return: r.return, status: r.status };
}

/**
 * checkRegister checks each key's history for linearizability with its own time budget. A key
 * whose search ran out of budget is `unknown`, and so is the whole verdict unless another key is
 * not linearizable.
 */
export function checkRegister(records: readonly OpRecord[], budgetPerKeyMs: number): CheckerResult {
  const ops = records.filter((r) => r.f === "get" || r.f === "put" || r.f === "cas").map(toOperation);
  const anomalies: Anomaly[] = [];
  const perKey: Record<string, unknown>[] = [];
  let unknown = 0;
  for (const part of partitionByKey(ops)) {
    const key = part[0]?.input.key ?? "?";
    const res = checkLinearizable(meshKvModel, part, { timeBudgetMs: budgetPerKeyMs });
    const p = res.perPartition[0];
    perKey.push({ key, verdict: res.verdict, operations: p?.operations ?? 0, elapsedMs: Math.round(res.elapsedMs), ...(p?.reason ? { reason: p.reason } : {}) });
    if (res.verdict === "unknown") unknown++;
    const v = p?.violation;
    if (res.verdict === "not-linearizable" && v) {
      const example = [...v.longestPrefix.slice(-EXAMPLE_OPS_MAX / 2), ...v.pending.slice(0, EXAMPLE_OPS_MAX / 2)].map((o) => ({
        op: meshKvModel.describeOperation(o.input, o.output),
        status: o.status,
        call: Math.round(o.call),
        return: Number.isFinite(o.return) ? Math.round(o.return) : null,
        process: o.clientId,
      }));
      anomalies.push({ kind: "not-linearizable", message: `key ${key}: ${v.message}`, example });
    }
  }
  const valid = anomalies.length > 0 ? false : unknown > 0 ? "unknown" : true;
  const summary =
    valid === true
      ? `linearizable (${perKey.length} keys, ${ops.length} operations)`
      : valid === false
        ? `NOT linearizable on ${anomalies.length} of ${perKey.length} keys`
        : `unknown: ${unknown} of ${perKey.length} keys ran out of budget`;
  return { name: "linearizability", valid, summary, anomalies, stats: { perKey } };
}
