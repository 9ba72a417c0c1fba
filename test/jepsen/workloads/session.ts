/**
 * The session workload: each process makes sessioned writes (a key of its own per write, under
 * its own client id and growing seq) and retries every one of them, with the same session and a
 * different value, 1 to 4 s later through a node picked at random: so with the clock nemesis many
 * retries land after a node whose wall clock jumped hours or days became leader. checkSessions
 * then judges at-most-once application from the answers and the final read.
 */
import { type Client, credentials, type ServiceError } from "@grpc/grpc-js";
import { clientApi } from "../../../src/common/proto.js";
import { sleep } from "../runner/clock.js";
import type { NemesisRecord, PendingOp } from "../runner/history.js";
import { retryUntil, runProcesses } from "./processes.js";
import { checkSessions, type SessionAnswer, type SessionFinal, type SessionWrite } from "./session-checker.js";
import type { Workload, WorkloadContext } from "./types.js";

const PREFIX = "jepsen-session/";
/** RETRY_AFTER_MS_MIN and RETRY_AFTER_MS_SPREAD: the retry waits 1–4 s, about one nemesis fault cycle. */
const RETRY_AFTER_MS_MIN = 1_000;
const RETRY_AFTER_MS_SPREAD = 3_000;
/** RETRY_ATTEMPTS bounds the retry's tries (through random nodes) until one is answered. */
const RETRY_ATTEMPTS = 5;

interface Tracked {
  readonly key: string;
  readonly first: PendingOutcome;
  retry?: PendingOutcome;
}

interface PendingOutcome {
  readonly answer: SessionAnswer;
  readonly call: number;
  readonly ret: number;
}

/** sessionWorkload creates the workload. */
export function sessionWorkload(): Workload {
  const stubs = new Map<string, Client>();
  const tracked: Tracked[] = [];
  const seqs = new Map<number, number>();
  let final: Map<string, SessionFinal> | undefined;

  const kv = (ctx: WorkloadContext, node: string): Client => {
    let s = stubs.get(node);
    if (!s) stubs.set(node, (s = new (clientApi().KV)(ctx.cluster.apiAddress(node), credentials.createInsecure())));
    return s;
  };

  /** put makes one sessioned put and records it in the history as `f`. */
  const put = async (ctx: WorkloadContext, process: number, node: string, f: string, key: string, value: string, session: { clientId: string; seq: number }): Promise<PendingOutcome> => {
    const op: PendingOp = ctx.history.invoke(process, node, f, { key, value, session });
    const call = ctx.clock.now();
    try {
      const res = await unary<{ index: number; duplicate: boolean }>(kv(ctx, node), "Put", { key, value: Buffer.from(value), session }, ctx.options.opTimeoutMs);
      op.ok({ index: Number(res.index), duplicate: res.duplicate });
      return { answer: { status: "ok", index: Number(res.index), duplicate: res.duplicate }, call, ret: ctx.clock.now() };
    } catch (err) {
      // Any failure may have applied (or may still): the checker only trusts answers.
      op.info((err as Error).message.slice(0, 200));
      return { answer: { status: "info" }, call, ret: ctx.clock.now() };
    }
  };

  return {
    name: "session",
    writeFs: ["write", "retry"],
    async setup() {},
    run: (ctx, signal) =>
      runProcesses(ctx, signal, async (process, node, rng) => {
        const seq = (seqs.get(process) ?? 0) + 1;
        seqs.set(process, seq);
        const session = { clientId: `jepsen-s${process}`, seq };
        const key = `${PREFIX}${process}/${seq}`;
        const t: Tracked = { key, first: await put(ctx, process, node, "write", key, "first", session) };
        tracked.push(t);
        await sleep(RETRY_AFTER_MS_MIN + rng.next() * RETRY_AFTER_MS_SPREAD, signal);
        for (let i = 0; i < RETRY_ATTEMPTS; i++) {
          t.retry = await put(ctx, process, rng.pick(ctx.cluster.nodes), "retry", key, "second", session);
          if (t.retry.answer.status === "ok") break;
          await sleep(200);
        }
        return t.first.answer.status === "ok" && t.retry?.answer.status === "ok" ? "done" : "info";
      }),
    async final(ctx) {
      ctx.history.phase("final-reads");
      const node = ctx.cluster.nodes[0] as string;
      const op = ctx.history.invoke(2_000_000, node, "read", { prefix: PREFIX });
      try {
        const res = await retryUntil("final session read", () => ctx.clients.get(node).list(PREFIX, { deadlineMs: ctx.options.opTimeoutMs * 3 }));
        final = new Map(res.kvs.map((e) => [e.key, { value: Buffer.from(e.value).toString(), version: Number(e.version) }]));
        op.ok(res.kvs.length);
      } catch (err) {
        op.fail((err as Error).message);
      }
      for (const s of stubs.values()) s.close();
    },
    async check(ctx) {
      const jumps = ctx.history.entries.filter((e): e is NemesisRecord => e.type === "nemesis" && e.f === "clock:next-leader" && e.phase === "start");
      const writes: SessionWrite[] = tracked.map((t) => ({
        key: t.key,
        first: t.first.answer,
        retry: t.retry?.answer,
        spansLeaderChange: t.retry !== undefined && jumps.some((j) => j.time > t.first.call && j.time < (t.retry as PendingOutcome).call),
      }));
      return [checkSessions(writes, final)];
    },
  };
}

function unary<Res>(stub: Client, method: string, req: object, deadlineMs: number): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (stub as unknown as Record<string, (...a: unknown[]) => void>)[method];
    if (!fn) return reject(new Error(`no method ${method}`));
    fn.call(stub, req, { deadline: new Date(Date.now() + deadlineMs) }, (err: ServiceError | null, res: Res) => (err ? reject(err) : resolve(res)));
  });
}
