/**
 * The balancer's worker threads, seen from the node's main thread. Node 20 cannot share one port
 * between worker threads (no SO_REUSEPORT for net servers, and sockets cannot be handed to a
 * worker), so each listener belongs to one worker: listeners are dealt round-robin over the
 * workers. With the default of one worker, every listener runs in it and the main thread (Raft,
 * the API) only posts table updates.
 */
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { Logger } from "../common/logger.js";
import { holdRestOff } from "../common/rest-flag.js";
import { ListenError, WorkerExitError } from "./errors.js";
import { BREAKER_SERVICE_SLOTS } from "./limits.js";
import type { FromWorker, ListenerSpec, ToWorker, WireTable, WorkerInit, WorkerSignal } from "./messages.js";
import { SharedBreakerCounters } from "./policy/index.js";
import { clearGauges, newStatsBuffer } from "./stats.js";
import type { WorkerTls } from "./tls.js";

/** WORKER_RESTART_MS: a worker that died is started again after this pause (a crash loop costs little). */
const WORKER_RESTART_MS = 1_000;

/** WorkerPoolOptions configure the threads. */
export interface WorkerPoolOptions {
  readonly workers: number;
  readonly listeners: readonly ListenerSpec[];
  readonly localZone: string;
  readonly nodeId: string;
  readonly logger: Logger;
  /** current is the full table message a (re)started worker begins from. */
  readonly current: () => Extract<ToWorker, { t: "tables" }>;
  /** headersTimeoutMs overrides HEADERS_TIMEOUT_MS (tests shrink it). */
  readonly headersTimeoutMs?: number;
  /** stats gives each worker a counters buffer (stats.ts); off: the workers count nothing. */
  readonly stats?: boolean;
  /** onSignal hears the workers' signals (outliers ejected, circuits open, retries refused). */
  readonly onSignal?: (s: WorkerSignal) => void;
  /** tls is the listener's certificate and the upstream CA and client certificate (postTls replaces it). */
  readonly tls?: WorkerTls;
}

interface Slot {
  worker: Worker | undefined;
  /** serving is true once this life's listeners all listen (false while the worker is down or starting). */
  serving: boolean;
  /** failed is why this worker's last start could not listen (cleared once a start listens). */
  failed: string | undefined;
  readonly init: WorkerInit;
}

/** WorkerPool runs the balancer workers. */
export class WorkerPool {
  /** ports: the bound port of each listener by name. */
  readonly ports = new Map<string, number>();
  private readonly slots: Slot[] = [];
  private stopping = false;
  private counters: SharedBreakerCounters | undefined;
  /** counterSlots: each service name's slot in counters, assigned on first sight and kept. */
  private readonly counterSlots = new Map<string, number>();
  /** tlsNow: the newest TLS material, which a (re)started worker begins from. */
  private tlsNow: WorkerTls | undefined;

  private constructor(private readonly opts: WorkerPoolOptions) {
    this.tlsNow = opts.tls;
  }

  /** start launches the workers and resolves once every listener listens (ListenError otherwise). */
  static async start(opts: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(opts);
    const n = Math.max(1, Math.min(opts.workers, opts.listeners.length));
    const counters = new SharedBreakerCounters(BREAKER_SERVICE_SLOTS, n);
    pool.counters = counters;
    const breakerCounters = { buffer: counters.buffer, serviceSlots: counters.serviceSlots, workers: n };
    for (let i = 0; i < n; i++) {
      const listeners = opts.listeners.filter((_, k) => k % n === i);
      const stats = opts.stats ? newStatsBuffer() : undefined;
      pool.slots.push({ worker: undefined, serving: false, failed: undefined, init: { index: i, listeners, localZone: opts.localZone, logLevel: "info", nodeId: opts.nodeId, headersTimeoutMs: opts.headersTimeoutMs, breakerCounters, stats } });
    }
    try {
      await Promise.all(pool.slots.map((s) => pool.launch(s)));
    } catch (err) {
      await pool.stop();
      throw err;
    }
    return pool;
  }

  /** statsBuffers are the workers' counters buffers (empty when stats are off); a restarted worker keeps its buffer. */
  statsBuffers(): SharedArrayBuffer[] {
    return this.slots.flatMap((s) => (s.init.stats ? [s.init.stats] : []));
  }

  /**
   * notListening says why some listener is not being served right now (a worker starting or
   * started again after it died, WORKER_RESTART_MS), or undefined when every listener listens.
   * /readyz reports it: a node whose endpoint cannot take traffic is not ready for it.
   */
  notListening(): string | undefined {
    if (this.stopping) return "balancing endpoint stopped";
    for (const s of this.slots) {
      if (s.serving) continue;
      return s.failed !== undefined ? `balancing worker ${s.init.index} could not listen (${s.failed}); trying again` : `balancing worker ${s.init.index} is not listening (starting or restarting)`;
    }
    return undefined;
  }

  /** post sends a table update to every worker. */
  post(m: ToWorker): void {
    const stamped = this.stamp(m);
    for (const s of this.slots) s.worker?.postMessage(stamped);
  }

  /** postTls gives every worker new TLS material (the files changed): new connections use it. */
  postTls(tls: WorkerTls): void {
    this.tlsNow = tls;
    for (const s of this.slots) s.worker?.postMessage({ t: "tls", tls } satisfies ToWorker);
  }

  /** stamp gives each table its service's counter slot, so every worker counts the service in the same place. */
  private stamp<M extends ToWorker>(m: M): M {
    if (m.t !== "tables") return m;
    const tables = m.tables.map((t): WireTable => {
      let slot = this.counterSlots.get(t.name);
      if (slot === undefined && this.counterSlots.size < BREAKER_SERVICE_SLOTS) this.counterSlots.set(t.name, (slot = this.counterSlots.size));
      return slot === undefined ? t : { ...t, counterSlot: slot };
    });
    return { ...m, tables };
  }

  /** stop closes the listeners (in-flight requests are cut) and ends the threads. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.slots.map(async (s) => {
        const w = s.worker;
        if (!w) return;
        const stopped = new Promise<void>((resolve) => {
          w.on("message", (m: FromWorker) => m.t === "stopped" && resolve());
          w.once("exit", () => resolve());
        });
        w.postMessage({ t: "stop" } satisfies ToWorker);
        await Promise.race([stopped, new Promise((r) => setTimeout(r, 2_000))]);
        await w.terminate();
        s.worker = undefined;
      }),
    );
  }

  /**
   * relaunch starts a worker that died again. One that cannot listen (its port taken meanwhile) is
   * ended, which brings the next try WORKER_RESTART_MS later, until the port is free: a worker that
   * stayed up serving part of its listeners would leave the node not ready with no end in sight.
   */
  private relaunch(slot: Slot): void {
    if (this.stopping) return;
    this.launch(slot).catch((err: unknown) => {
      if (this.stopping || !(err instanceof ListenError)) return;
      this.opts.logger.error({ err, worker: slot.init.index }, "balancer worker could not listen again; trying again");
      void slot.worker?.terminate();
    });
  }

  private launch(slot: Slot): Promise<void> {
    const w = spawnWorker({ ...slot.init, tls: this.tlsNow });
    slot.worker = w;
    slot.serving = false;
    w.postMessage(this.stamp(this.opts.current()));
    let pending = slot.init.listeners.length;
    return new Promise<void>((resolve, reject) => {
      if (pending === 0) resolve();
      w.on("message", (m: FromWorker) => {
        if (m.t === "listening") {
          this.ports.set(m.name, m.port);
          if (--pending === 0) {
            if (slot.worker === w) {
              slot.serving = true;
              slot.failed = undefined;
            }
            resolve();
          }
        } else if (m.t === "listen-failed") {
          if (slot.worker === w) slot.failed = `${m.name}: ${m.message}`;
          reject(new ListenError(m.name, { cause: new Error(m.message) }));
        } else if (m.t === "signal") {
          const { t: _, ...s } = m;
          this.opts.onSignal?.(s);
        }
      });
      w.on("error", (err) => {
        this.opts.logger.error({ err, worker: slot.init.index }, "balancer worker failed");
        reject(err);
      });
      w.once("exit", (code) => {
        if (slot.worker !== w) return;
        slot.worker = undefined;
        slot.serving = false;
        // Its connections and requests died with it: its share of the shared counts goes too.
        this.counters?.forgetWorker(slot.init.index);
        if (this.stopping) return;
        // Its counters stay (merged into the next life's); its connections died with it.
        if (slot.init.stats) clearGauges(slot.init.stats);
        const err = new WorkerExitError(slot.init.index, code);
        this.opts.logger.error({ err }, "balancer worker exited; starting it again");
        reject(err);
        setTimeout(() => this.relaunch(slot), WORKER_RESTART_MS).unref();
      });
    });
  }
}

/**
 * WORKER_YOUNG_GENERATION_MB caps a worker's young generation (V8's semi-spaces: 4 MiB each, a
 * third of this). V8 grows them to 16 MiB each while a worker deserializes a large table message
 * and keeps them: with 100,000 endpoints a worker's heap was 76 MiB for 47 MiB of live objects, and
 * 46 MiB with the cap (agent-memory.ts, README "Benchmarks"). A proxied request's garbage dies young
 * either way; the cap only makes scavenges more frequent and each smaller.
 */
export const WORKER_YOUNG_GENERATION_MB = 12;

/**
 * spawnWorker starts worker.js, or worker.ts from the sources: a worker thread does not inherit the
 * TypeScript loader of tsx or vitest, so it registers tsx's before importing the file.
 */
function spawnWorker(init: WorkerInit): Worker {
  const self = fileURLToPath(import.meta.url);
  const file = self.replace(/workers\.(ts|js)$/, "worker.$1");
  const resourceLimits = { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB };
  // The node's at-rest V8 setting would give the new isolate a 1 MB semi-space for its whole life
  // (src/common/rest-flag.ts): it stays off until the thread runs JavaScript, its heap sized.
  const release = holdRestOff();
  let w: Worker;
  try {
    if (!file.endsWith(".ts")) w = new Worker(file, { workerData: init, resourceLimits });
    else {
      const api = import.meta.resolve("tsx/esm/api");
      const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(pathToFileURL(file).href)}); });`;
      w = new Worker(code, { eval: true, workerData: init, resourceLimits });
    }
  } catch (err) {
    release();
    throw err;
  }
  w.once("online", release);
  w.once("error", release);
  w.once("exit", release);
  return w;
}
