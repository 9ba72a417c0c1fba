/**
 * npm run bench:failover: how long a master-slave service is without a master when its master
 * dies. Per TTL, a fresh 3-node cluster (real agent processes) and a master-slave service with
 * three demo backends (src/demo/main.ts, real processes running the master session helper). Each
 * round SIGKILLs the master's process and measures from its last acknowledged heartbeat (the
 * moment its answer arrived, from its own log on the host's monotonic clock) to the first request
 * the balancing endpoint routes to the new master and the new master accepts: right after the kill
 * a client writes through one node's endpoint (`/svc/bench-failover/write`, a different node each
 * round) every WRITE_GAP_MS, naming neither instance nor epoch, until a write comes back accepted
 * by another instance with a newer epoch (the endpoint sent it as x-raftmesh-epoch). A watcher
 * records when the new master became visible, for comparison. The killed backend is restarted as
 * a standby before the next round, after a random pause so the kill falls at any phase of the
 * heartbeat cycle.
 *
 *   npm run bench:failover -- [--ttls 1000,3000,10000] [--rounds 20] [--json out.json]
 *   npm run bench:failover -- --cause crash [--ttl 5000] [--rounds 20] [--json out.json]   (crash.ts)
 *
 * Goal: median ≤ TTL + 300 ms, max ≤ TTL + 500 ms.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RaftmeshClient } from "../../../src/client/index.js";
import { hostMonotonicMs } from "../../../src/demo/backend.js";
import { REPO_ROOT } from "../../integration/harness/process-cluster.js";
import { BenchCluster } from "../registry/cluster.js";
import { runCrash } from "./crash.js";
import { machineInfo, round2 } from "../registry/procs.js";

const SERVICE = "bench-failover";
const INSTANCES = 3;
const DEMO_MAIN = join(REPO_ROOT, "src/demo/main.ts");
/** READY_WAIT_MS bounds a backend's start (tsx compiles the sources on a busy machine). */
const READY_WAIT_MS = 60_000;
/** FAILOVER_WAIT_MS bounds one failover past its TTL before the round counts as failed. */
const FAILOVER_WAIT_MS = 20_000;
/** WRITE_TIMEOUT_MS bounds one probe write; WRITE_GAP_MS paces probes (a probe every 5 ms resolves the time to that). */
const WRITE_TIMEOUT_MS = 1_000;
const WRITE_GAP_MS = 5;
/** SETTLE_MS: the pause after a restarted backend is up, before the next kill. */
const SETTLE_MS = 1_000;

interface Backend {
  readonly id: string;
  readonly log: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  readonly url: string;
}

interface RoundResult {
  readonly round: number;
  readonly killed: string;
  readonly newMaster: string;
  readonly oldEpoch: number;
  readonly newEpoch: number;
  /** via is the balancing endpoint the probes went through. */
  readonly via: string;
  /** fromAckMs: last acknowledged heartbeat's answer → first write the endpoint routed to the new master and it accepted. */
  readonly fromAckMs: number;
  /** fromSendMs: the same from when that heartbeat was sent. */
  readonly fromSendMs: number;
  /** watcherMs: last acknowledgement → the watcher's first sight of the new master. */
  readonly watcherMs: number;
}

const { values } = parseArgs({ options: { ttls: { type: "string" }, rounds: { type: "string" }, json: { type: "string" }, cause: { type: "string" }, ttl: { type: "string" } }, strict: true });
if (values.cause !== undefined && values.cause !== "ttl" && values.cause !== "crash") throw new Error(`--cause: "${values.cause}" is not ttl or crash`);
const ttls = (values.ttls ?? "1000,3000,10000").split(",").map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1_000) throw new Error(`--ttls: "${s}" is not a TTL in ms (at least 1000)`);
  return n;
});
const rounds = Number(values.rounds ?? 20);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 1_000) throw new Error(`--rounds: "${values.rounds}" is not a whole number in [1, 1000]`);

const log = (line: string) => console.error(`[failover ${new Date().toISOString().slice(11, 19)}] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startBackend(dir: string, endpoints: string[], id: string, ttlMs: number): Promise<Backend> {
  const logFile = join(dir, `${id}.jsonl`);
  const err = openSync(join(dir, `${id}.stderr`), "a");
  const child = spawn(process.execPath, ["--import", "tsx", DEMO_MAIN, "--endpoints", endpoints.join(","), "--service", SERVICE, "--id", id, "--listen", "127.0.0.1:0", "--ttl-ms", String(ttlMs), "--log", logFile], {
    cwd: REPO_ROOT,
    env: { ...process.env, RAFTMESH_TEST_UNSAFE: "" },
    stdio: ["ignore", "pipe", err],
  });
  closeSync(err);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id} not ready in ${READY_WAIT_MS} ms`)), READY_WAIT_MS);
    void exited.then(() => reject(new Error(`${id} exited before it was ready`)));
    let buf = "";
    child.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      const m = /\{"ready":true,"port":(\d+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve({ id, log: logFile, child, exited, url: `http://127.0.0.1:${m[1]}` });
      }
    });
  });
}

/** answeredStandby says whether a backend's log holds an answer naming it standby. */
function answeredStandby(file: string): boolean {
  return existsSync(file) && readFileSync(file, "utf8").includes('"role":"standby"');
}

/** lastAck is the newest acknowledged answer in a backend's log that said master. */
function lastAck(file: string): { t: number; sentAt: number } | undefined {
  if (!existsSync(file)) return undefined;
  let best: { t: number; sentAt: number } | undefined;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line) continue;
    const r = JSON.parse(line) as { type: string; t: number; sentAt: number; role: string };
    if (r.type === "answer" && r.role === "master" && (!best || r.t > best.t)) best = { t: r.t, sentAt: r.sentAt };
  }
  return best;
}

/** MasterWatch follows the service's master events (resuming on another node when a stream ends). */
class MasterWatch {
  master = "";
  epoch = 0;
  /** seenAt is the host-monotonic time the current master was first seen. */
  seenAt = 0;
  private from = 0;
  private cancel: (() => void) | undefined;
  private stopped = false;
  constructor(private readonly client: RaftmeshClient) {}
  start(): void {
    if (this.stopped) return;
    this.cancel = this.client.watch(
      { fromIndex: this.from, service: SERVICE, kinds: ["master"] },
      {
        onMessage: (m) => {
          for (const e of m.events) {
            this.from = Math.max(this.from, e.index);
            if (e.kind === "master" && e.master && Number(e.master.epoch) > this.epoch) {
              this.master = e.master.master;
              this.epoch = Number(e.master.epoch);
              this.seenAt = hostMonotonicMs();
            }
          }
          this.from = Math.max(this.from, m.index);
        },
        onEnd: () => void sleep(100).then(() => this.start()),
      },
    ).cancel;
  }
  stop(): void {
    this.stopped = true;
    this.cancel?.();
  }
}

/** Accepted is a write the endpoint routed and a backend accepted: by whom, as master of which epoch, when. */
interface Accepted {
  readonly id: string;
  readonly epoch: number;
  readonly at: number;
}

/**
 * firstRouted writes through the balancing endpoint at `balancer` until a write is accepted by an
 * instance other than `old` with an epoch newer than `oldEpoch`; resolves with it (undefined past
 * untilHost). A write accepted by the old master or with the old epoch after its kill would be a
 * fencing failure: it throws.
 */
async function firstRouted(balancer: string, old: string, oldEpoch: number, untilHost: number): Promise<Accepted | undefined> {
  while (hostMonotonicMs() < untilHost) {
    try {
      const res = await fetch(`http://${balancer}/svc/${SERVICE}/write`, { method: "POST", body: "x", signal: AbortSignal.timeout(WRITE_TIMEOUT_MS) });
      const at = hostMonotonicMs();
      const text = await res.text();
      if (res.status === 200) {
        const body = JSON.parse(text) as { id: string; epoch: number };
        if (body.id === old || Number(body.epoch) <= oldEpoch) throw new Error(`a write was accepted by ${body.id} at epoch ${body.epoch} after ${old} (epoch ${oldEpoch}) was killed`);
        return { id: body.id, epoch: Number(body.epoch), at };
      }
    } catch (err) {
      if (err instanceof Error && err.message.startsWith("a write was accepted")) throw err;
      // 502/503 while the endpoint still routes to the dead master or knows no master yet
    }
    await sleep(WRITE_GAP_MS);
  }
  return undefined;
}

async function runTtl(ttlMs: number): Promise<{ ttlMs: number; rounds: number; failed: number; medianMs: number; maxMs: number; p90Ms: number; fromSend: { medianMs: number; maxMs: number }; watcher: { medianMs: number; maxMs: number }; results: RoundResult[] }> {
  const cluster = await BenchCluster.start();
  const endpoints = [...cluster.pc.specs.values()].map((s) => `127.0.0.1:${s.apiPort}`);
  const balancers = [...cluster.pc.specs.values()].map((s) => `127.0.0.1:${s.balancerPort}`);
  const client = new RaftmeshClient(endpoints, { deadlineMs: 3_000 });
  const dir = join(cluster.pc.root, "backends");
  mkdirSync(dir, { recursive: true });
  const backends = new Map<string, Backend>();
  const watch = new MasterWatch(client);
  const results: RoundResult[] = [];
  let failed = 0;
  try {
    await client.putService(SERVICE, { mode: "master-slave" });
    watch.start();
    const ids = Array.from({ length: INSTANCES }, (_, i) => `b${i + 1}`);
    for (const b of await Promise.all(ids.map((id) => startBackend(dir, endpoints, id, ttlMs)))) backends.set(b.id, b);
    for (let round = 1; round <= rounds; round++) {
      const until = hostMonotonicMs() + READY_WAIT_MS;
      while (!(backends.has(watch.master) && lastAck(backends.get(watch.master)?.log as string)) && hostMonotonicMs() < until) await sleep(50);
      const victim = backends.get(watch.master);
      if (!victim) throw new Error(`round ${round}: no master within ${READY_WAIT_MS} ms`);
      // A random phase of the heartbeat cycle.
      await sleep(ttlMs / 3 + Math.random() * (ttlMs / 3));
      const oldEpoch = watch.epoch;
      victim.child.kill("SIGKILL");
      await victim.exited;
      backends.delete(victim.id);
      const ack = lastAck(victim.log);
      if (!ack) throw new Error(`round ${round}: ${victim.id} has no acknowledged heartbeat`);
      const deadline = ack.t + ttlMs + FAILOVER_WAIT_MS;
      const via = balancers[(round - 1) % balancers.length] as string;
      const got = await firstRouted(via, victim.id, oldEpoch, deadline);
      if (!got) {
        failed++;
        log(`TTL ${ttlMs}: round ${round}: the endpoint ${via} routed no write to a new master within TTL + ${FAILOVER_WAIT_MS} ms (watch: ${watch.master}@${watch.epoch})`);
      } else {
        // The watcher may trail the endpoint: give it a moment to report the same epoch.
        const watchBy = hostMonotonicMs() + 2_000;
        while (watch.epoch < got.epoch && hostMonotonicMs() < watchBy) await sleep(2);
        const r: RoundResult = { round, killed: victim.id, newMaster: got.id, oldEpoch, newEpoch: got.epoch, via, fromAckMs: round2(got.at - ack.t), fromSendMs: round2(got.at - ack.sentAt), watcherMs: round2(watch.seenAt - ack.t) };
        results.push(r);
        log(`TTL ${ttlMs}: round ${round}: ${victim.id} → ${got.id} (epoch ${oldEpoch} → ${r.newEpoch}) via ${via} in ${Math.round(r.fromAckMs)} ms after its last acknowledged heartbeat (watcher ${Math.round(r.watcherMs)} ms, from send ${Math.round(r.fromSendMs)} ms)`);
      }
      // The killed backend comes back as a standby; the next round starts once it heartbeats as
      // one and its start-up (tsx compiling the sources) no longer competes for the CPU.
      const again = await startBackend(dir, endpoints, victim.id, ttlMs);
      backends.set(again.id, again);
      const standbyBy = hostMonotonicMs() + READY_WAIT_MS;
      while (!answeredStandby(again.log) && hostMonotonicMs() < standbyBy) await sleep(50);
      await sleep(SETTLE_MS);
    }
  } finally {
    watch.stop();
    for (const b of backends.values()) b.child.kill("SIGKILL");
    client.close();
    await cluster.stop();
  }
  const stat = (xs: number[]) => ({ medianMs: round2(median(xs)), maxMs: round2(Math.max(...xs)) });
  const fromAck = results.map((r) => r.fromAckMs);
  return {
    ttlMs,
    rounds: results.length,
    failed,
    ...stat(fromAck),
    p90Ms: round2(quantile(fromAck, 0.9)),
    fromSend: stat(results.map((r) => r.fromSendMs)),
    watcher: stat(results.map((r) => r.watcherMs)),
    results,
  };
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
}

function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

async function main(): Promise<void> {
  if (values.cause === "crash") {
    const ttlMs = Number(values.ttl ?? 5_000);
    if (!Number.isInteger(ttlMs) || ttlMs < 1_000) throw new Error(`--ttl: "${values.ttl}" is not a TTL in ms (at least 1000)`);
    await runCrash({ rounds, ttlMs, json: values.json });
    return;
  }
  const machine = machineInfo();
  const perTtl: Record<string, Awaited<ReturnType<typeof runTtl>>> = {};
  for (const ttl of ttls) {
    log(`TTL ${ttl} ms: ${rounds} rounds`);
    const r = await runTtl(ttl);
    perTtl[String(ttl)] = r;
    const ok = r.medianMs <= ttl + 300 && r.maxMs <= ttl + 500;
    log(`TTL ${ttl} ms: ${r.rounds} rounds (${r.failed} failed): median ${r.medianMs} ms, p90 ${r.p90Ms} ms, max ${r.maxMs} ms (goal ≤ ${ttl + 300} / ≤ ${ttl + 500}: ${ok ? "met" : "NOT met"}); watcher median ${r.watcher.medianMs} ms`);
    if (values.json) writeFileSync(values.json, `${JSON.stringify({ machine, routedBy: "the balancing endpoint (/svc/<service>/write on one node's endpoint, rotating per round)", measuredFrom: "the killed master's last acknowledged heartbeat (its answer's arrival, host monotonic clock)", measuredTo: "the first write the endpoint routed to the new master and it accepted (response arrival)", perTtl }, null, 2)}\n`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
