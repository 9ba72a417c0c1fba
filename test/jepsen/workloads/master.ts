/**
 * The master workload: a master-slave service with MASTER_INSTANCES demo backends
 * (src/demo/main.ts), each running the master session helper inside the network namespace of one
 * node and heartbeating through that node only, so a partition or a kill cuts it off together
 * with its node. Each backend logs, on the host's monotonic clock, when it was promoted and
 * demoted (with the lease deadline it held), every heartbeat answer and every write it accepted.
 * A watcher per node records the `master` events (observers only: all must agree on one master per
 * epoch); client processes write through the balancing endpoint of their own node
 * (`/svc/jepsen-master/write`), which routes to the master of the newest epoch it knows and sends
 * that epoch in x-raftmesh-epoch. The backends log each accepted write with the epoch the endpoint
 * sent, and checkMaster judges it all (see master-checker.ts).
 *
 * Faults aimed at the master: the isolate-master partition (its node alone on one side) and
 * pause-master (SIGSTOP of the master's own process, as a long GC pause would) go through
 * masterTargets.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { hostMonotonicMs } from "../../../src/demo/backend.js";
import { NetnsCluster, REPO_ROOT } from "../harness/cluster.js";
import { nodeAddress, nsName } from "../harness/netns.js";
import { sleep } from "../runner/clock.js";
import { errorText } from "../runner/outcome.js";
import { type AcceptedWrite, checkMaster, type MasterEvent, type MasterInterval, type RoleAnswer } from "./master-checker.js";
import { retryUntil, runProcesses } from "./processes.js";
import type { MasterTargets, Workload, WorkloadContext } from "./types.js";
import { ReconnectingWatcher } from "./watcher.js";

const SERVICE = "jepsen-master";
/** MASTER_INSTANCES: a master and two standbys, on n1..n3 (n4 and n5 host none). */
export const MASTER_INSTANCES = 3;
/** MASTER_TTL_MS: the registry's minimum TTL, so failovers fit inside one fault of 2–6 s. */
export const MASTER_TTL_MS = 1_000;
/** INSTANCE_PORT is each backend's port inside its node's namespace (8300: clear of 7100–7400). */
const INSTANCE_PORT = 8300;
/** READY_WAIT_MS bounds a backend's start (tsx compiles on first run). */
const READY_WAIT_MS = 60_000;
/** STOP_WAIT_MS: a backend that has not exited this long after SIGTERM gets SIGKILL. */
const STOP_WAIT_MS = 5_000;
/** CATCH_UP_MS bounds the final wait for each watcher to reach the final index. */
const CATCH_UP_MS = 15_000;
/** FAIL_GAP_MS paces a client after a 503 (no master yet): the failover takes about a TTL anyway. */
const FAIL_GAP_MS = 20;
const DEMO_MAIN = join(REPO_ROOT, "src/demo/main.ts");

interface Instance {
  readonly id: string;
  readonly node: string;
  readonly url: string;
  readonly log: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  paused: boolean;
}

/** masterOf reads a watch event's master change (kind "master"). */
function masterOf(e: { kind: string; master?: { master: string; epoch: number } | null }): { master: string; epoch: number } | undefined {
  if (e.kind !== "master" || !e.master) return undefined;
  return { master: e.master.master, epoch: Number(e.master.epoch) };
}

/** masterWorkload creates the workload (the backends' negative controls come from options.instanceUnsafe). */
export function masterWorkload(): Workload {
  const instances = new Map<string, Instance>();
  const watchers = new Map<string, ReconnectingWatcher>();
  /** hostAtOrigin converts the backends' host-monotonic stamps to run time. */
  let hostAtOrigin = 0;
  let endAt = 0;
  let caughtUp = true;
  let instanceUnsafe: readonly string[] = [];
  let context: WorkloadContext | undefined;

  const spawnInstance = async (ctx: WorkloadContext, i: number): Promise<Instance> => {
    const node = ctx.cluster.nodes[i] as string;
    const id = `m-${node}`;
    const logsDir = dirname(ctx.cluster.logPath(node));
    const log = join(logsDir, `${id}.jsonl`);
    const netns = ctx.cluster instanceof NetnsCluster;
    const endpoint = netns ? `127.0.0.1:7200` : ctx.cluster.apiAddress(node);
    const listen = netns ? `0.0.0.0:${INSTANCE_PORT}` : "127.0.0.1:0";
    const address = netns ? nodeAddress(node) : "127.0.0.1";
    const args = ["--import", "tsx", DEMO_MAIN, "--endpoints", endpoint, "--service", SERVICE, "--id", id, "--listen", listen, "--address", address, "--ttl-ms", String(MASTER_TTL_MS), "--log", log];
    const env: Record<string, string | undefined> = { ...process.env, RAFTMESH_TEST_UNSAFE: instanceUnsafe.join(",") };
    const err = openSync(join(logsDir, `${id}.stderr`), "a");
    const child = netns
      ? spawn("ip", ["netns", "exec", nsName(node), process.execPath, ...args], { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", err] })
      : spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", err] });
    closeSync(err);
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${id} not ready within ${READY_WAIT_MS} ms`)), READY_WAIT_MS);
      void exited.then(() => reject(new Error(`${id} exited before it was ready (see ${id}.stderr)`)));
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
        try {
          const m = JSON.parse(line) as { ready?: boolean; port?: number };
          if (m.ready) {
            clearTimeout(timer);
            resolve(Number(m.port));
          }
        } catch {
          // not the ready line
        }
      });
    });
    return { id, node, url: `http://${address}:${port}`, log, child, exited, paused: false };
  };

  /** current is the newest master the watcher of node has seen (epoch 0: none yet). */
  const current = (node: string): { master: string; epoch: number } => {
    let best = { master: "", epoch: 0 };
    for (const e of watchers.get(node)?.events ?? []) {
      const m = masterOf(e.event);
      if (m && m.epoch >= best.epoch) best = m;
    }
    return best;
  };

  const masterInstance = (ctx: WorkloadContext): Instance | undefined => {
    const seen = ctx.cluster.nodes.map(current).sort((a, b) => b.epoch - a.epoch)[0];
    return seen?.master ? instances.get(seen.master) : undefined;
  };

  const stopAll = async () => {
    for (const inst of instances.values()) {
      if (inst.paused) inst.child.kill("SIGCONT");
      inst.child.kill("SIGTERM");
    }
    await Promise.all(
      [...instances.values()].map(async (inst) => {
        const killed = await Promise.race([inst.exited.then(() => true), sleep(STOP_WAIT_MS).then(() => false)]);
        if (!killed) {
          inst.child.kill("SIGKILL");
          await inst.exited;
        }
      }),
    );
  };

  const targets: MasterTargets = {
    async masterNode() {
      return context ? masterInstance(context)?.node : undefined;
    },
    async pauseMaster() {
      const inst = context ? masterInstance(context) : undefined;
      if (!inst || inst.paused) return undefined;
      inst.child.kill("SIGSTOP");
      inst.paused = true;
      return inst.id;
    },
    async resumeInstance(id) {
      const inst = instances.get(id);
      if (!inst?.paused) return;
      inst.child.kill("SIGCONT");
      inst.paused = false;
    },
  };

  return {
    name: "master",
    writeFs: ["write"],
    masterTargets: targets,
    async setup(ctx) {
      hostAtOrigin = hostMonotonicMs() - ctx.clock.now();
      context = ctx;
      instanceUnsafe = ctx.options.instanceUnsafe;
      const n1 = ctx.cluster.nodes[0] as string;
      await retryUntil("put service", () => ctx.clients.get(n1).putService(SERVICE, { mode: "master-slave" }, { deadlineMs: ctx.options.opTimeoutMs * 3 }));
      for (const node of ctx.cluster.nodes) {
        const w = new ReconnectingWatcher(ctx, `master-${node}`, node, { service: SERVICE, kinds: ["master"] });
        watchers.set(node, w);
        w.start();
      }
      process.once("exit", () => {
        for (const inst of instances.values()) inst.child.kill("SIGKILL");
      });
      const started = await Promise.all(Array.from({ length: MASTER_INSTANCES }, (_, i) => spawnInstance(ctx, i)));
      for (const inst of started) instances.set(inst.id, inst);
      // The first instance to pass becomes master: wait for it before any fault.
      const until = ctx.clock.now() + READY_WAIT_MS;
      while (!masterInstance(ctx) && ctx.clock.now() < until) await sleep(100);
      if (!masterInstance(ctx)) throw new Error(`no master within ${READY_WAIT_MS} ms`);
    },
    async run(ctx, signal) {
      // Each client writes through the balancing endpoint of its own node: the endpoint picks the
      // master of the newest epoch it knows and sends that epoch as x-raftmesh-epoch; the client
      // names neither the instance nor the epoch (503 no-master while there is none).
      await runProcesses(ctx, signal, async (process, node) => {
        const op = ctx.history.invoke(process, node, "write", { via: node });
        try {
          const res = await fetch(`http://${ctx.cluster.balancerAddress(node)}/svc/${SERVICE}/write`, { method: "POST", body: "x", signal: AbortSignal.timeout(ctx.options.opTimeoutMs) });
          const text = await res.text();
          let body: Record<string, unknown> = {};
          try {
            body = JSON.parse(text) as Record<string, unknown>;
          } catch {
            body = { error: text.slice(0, 80) };
          }
          if (res.status === 200) op.ok(body);
          else {
            op.fail(`${res.status} ${String(body.error ?? "")}`);
            // Nobody to route to (failover in progress): do not spin on the endpoint.
            if (res.status === 503) await sleep(FAIL_GAP_MS, signal);
          }
          return "done";
        } catch (err) {
          op.info(errorText(err));
          return "info";
        }
      });
    },
    async final(ctx) {
      ctx.history.phase("final-reads");
      const n1 = ctx.cluster.nodes[0] as string;
      const got = await retryUntil("final service read", () => ctx.clients.get(n1).getService(SERVICE, { deadlineMs: ctx.options.opTimeoutMs * 3 }));
      for (const w of watchers.values()) caughtUp = (await w.waitFor(got.index, CATCH_UP_MS)) && caughtUp;
      await stopAll();
      endAt = ctx.clock.now();
      for (const w of watchers.values()) w.stop();
    },
    async check() {
      const toRun = (t: number) => t - hostAtOrigin;
      const intervals: MasterInterval[] = [];
      const answers: RoleAnswer[] = [];
      const writes: AcceptedWrite[] = [];
      for (const inst of instances.values()) {
        const lines = existsSync(inst.log) ? readFileSync(inst.log, "utf8").split("\n").filter(Boolean) : [];
        const parsed = parseBackendLog(inst.id, lines, toRun);
        intervals.push(...parsed.intervals);
        answers.push(...parsed.answers);
        writes.push(...parsed.writes);
      }
      const events: MasterEvent[] = [];
      for (const [node, w] of watchers) {
        for (const e of w.events) {
          const m = masterOf(e.event);
          if (m) events.push({ observer: `watch-${node}`, time: e.time, epoch: m.epoch, master: m.master });
        }
      }
      const result = checkMaster({ intervals, events, answers, writes });
      const stats = { ...result.stats, endAt: Math.round(endAt), instanceUnsafe: instanceUnsafe.join(",") };
      if (caughtUp) return [{ ...result, stats }];
      return [{ ...result, stats, valid: result.valid === false ? false : "unknown", summary: `${result.summary} (a watcher never caught up)` }];
    },
  };
}

/**
 * parseBackendLog turns one backend's log lines (src/demo/main.ts) into master intervals, answers
 * and accepted writes on run time. An interval ends at the demotion, or at the lease deadline the
 * session held then if that came first (past it the session refused to act, even if its timer
 * ran late); an interval never closed (the log ends while master) stays open (+inf).
 */
export function parseBackendLog(id: string, lines: readonly string[], toRun: (hostMs: number) => number): { intervals: MasterInterval[]; answers: RoleAnswer[]; writes: AcceptedWrite[] } {
  const intervals: MasterInterval[] = [];
  const answers: RoleAnswer[] = [];
  const writes: AcceptedWrite[] = [];
  let open: { epoch: number; from: number } | undefined;
  for (const line of lines) {
    const r = JSON.parse(line) as { type: string; t: number; epoch?: number; deadline?: number | null; sentAt?: number; role?: string; headerEpoch?: number | null };
    if (r.type === "promoted") open = { epoch: Number(r.epoch), from: toRun(r.t) };
    else if (r.type === "demoted" && open) {
      const to = r.deadline === null || r.deadline === undefined ? toRun(r.t) : Math.min(toRun(r.t), toRun(r.deadline));
      intervals.push({ id, epoch: open.epoch, from: open.from, to });
      open = undefined;
    } else if (r.type === "answer") answers.push({ id, sentAt: toRun(Number(r.sentAt)), time: toRun(r.t), role: String(r.role), epoch: Number(r.epoch) });
    else if (r.type === "write") writes.push({ id, epoch: Number(r.epoch), headerEpoch: r.headerEpoch === undefined || r.headerEpoch === null ? null : Number(r.headerEpoch), time: toRun(r.t) });
  }
  if (open) intervals.push({ id, epoch: open.epoch, from: open.from, to: Number.POSITIVE_INFINITY });
  return { intervals, answers, writes };
}
