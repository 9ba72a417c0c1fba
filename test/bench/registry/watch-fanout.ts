/**
 * Watch fan-out at scale: W watchers on ONE node (a follower by default) each watch a key prefix of
 * their own, while closed-loop writers commit C changes (KV puts, B per transaction, so one index
 * carries B changes, each for a different watcher). Every watcher must receive each of its changes;
 * latency is measured per delivery from the commit, approximated by the moment a probe watcher on
 * the leader (watching every bench key) received the index: the leader applies an entry right after
 * it commits, so that receipt is commit plus one local apply and stream hop. Latencies from the
 * write's send and from its acknowledgement are given too.
 *
 *   npx tsx test/bench/registry/watch-fanout.ts [--watchers 10000] [--changes 100000] [--batch 10]
 *       [--writers 32] [--channels 20] [--on follower|leader] [--max-seconds 300] [--json out.json]
 *
 * Bounded in count (--changes) and time (--max-seconds for the writes, then DELIVERY_WAIT_MS_MAX).
 */
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { RaftmeshClient } from "../../../src/client/index.js";
import { formatTable, type LatencySummary, summarizeLatencies } from "../raft/stats.js";
import { BenchCluster } from "./cluster.js";
import { CpuMeter, machineInfo } from "./procs.js";

/** PREFIX is the root of every key the bench writes; the probe watches all of it. */
const PREFIX = "fan/";
/** READY_MS_MAX bounds the wait for every watch to be established (its first message). */
const READY_MS_MAX = 120_000;
/** DELIVERY_WAIT_MS_MAX bounds the wait for the last deliveries after the last write. */
const DELIVERY_WAIT_MS_MAX = 30_000;
/** WRITE_DEADLINE_MS bounds one transaction. */
const WRITE_DEADLINE_MS = 10_000;
/** WATCHERS_LIMIT, CHANGES_LIMIT bound the arguments so a typo cannot start a run of hours. */
const WATCHERS_LIMIT = 16_384;
const CHANGES_LIMIT = 1_000_000;
/** VALUE_BYTES is a small config value: fan-out cost is per event, not per byte. */
const VALUE_BYTES = 64;

const { values } = parseArgs({
  options: {
    watchers: { type: "string", default: "10000" },
    changes: { type: "string", default: "100000" },
    batch: { type: "string", default: "10" },
    writers: { type: "string", default: "32" },
    channels: { type: "string", default: "20" },
    on: { type: "string", default: "follower" },
    "max-seconds": { type: "string", default: "300" },
    json: { type: "string" },
  },
  strict: true,
});
const intIn = (name: string, text: string, min: number, max: number): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`--${name}: an integer in [${min}, ${max}], got "${text}"`);
  return n;
};
const W = intIn("watchers", values.watchers, 1, WATCHERS_LIMIT);
const C = intIn("changes", values.changes, 1, CHANGES_LIMIT);
const B = intIn("batch", values.batch, 1, Math.min(100, W));
const writersCount = intIn("writers", values.writers, 1, 1024);
const channelsCount = intIn("channels", values.channels, 1, 256);
const maxWriteMs = intIn("max-seconds", values["max-seconds"], 1, 3600) * 1000;
if (values.on !== "follower" && values.on !== "leader") throw new RangeError(`--on: follower or leader, got "${values.on}"`);

interface Watcher {
  /** received maps an index to when this watcher got it. */
  readonly received: Map<number, number>;
  ready: boolean;
}

interface Txn {
  readonly first: number;
  readonly sentAt: number;
  ackAt: number;
  index: number;
}

const machine = machineInfo();
console.log(`${machine.cpu}, ${machine.cores} cores, node ${machine.node}, load average ${machine.loadavgAtStart.join(" ")}`);
// All watchers come from this one process, so from one client address: the per-client watch rate
// limit (200/s, bursts of 5 s) is for many clients and would refuse most of them here.
const cluster = await BenchCluster.start({ RAFTMESH_CLIENT_WATCH_RATE: "0" });
const clients: RaftmeshClient[] = [];
const cancels: (() => void)[] = [];
try {
  const leader = await cluster.leader();
  const target = values.on === "leader" ? leader : (cluster.ids.find((id) => id !== leader) as string);
  const writer = cluster.pc.client(leader);
  const start = await writer.put(`${PREFIX}start`, "x");
  const fromIndex = start.index;
  console.log(`leader ${leader}; ${W} watchers on ${target} (${values.on}) over ${channelsCount} channels; ${C} changes, ${B} per txn, ${writersCount} writers`);

  // The probe on the leader: when it receives an index is the commit time of the index, to within a local hop.
  const probeAt = new Map<number, number>();
  const probeClient = new RaftmeshClient([cluster.pc.api(leader)]);
  clients.push(probeClient);
  let watchEnds = 0;
  let firstEnd: string | undefined;
  const onEnd = (err?: Error) => {
    watchEnds++;
    firstEnd ??= err?.message ?? "stream ended";
  };
  const probe = probeClient.watch(
    { fromIndex, keyPrefix: PREFIX },
    {
      onMessage: (m) => {
        const now = performance.now();
        for (const e of m.events) if (!probeAt.has(e.index)) probeAt.set(e.index, now);
      },
      onEnd,
    },
  );
  cancels.push(() => probe.cancel());

  for (let i = 0; i < channelsCount; i++) clients.push(new RaftmeshClient([cluster.pc.api(target)]));
  const watchers: Watcher[] = [];
  for (let w = 0; w < W; w++) {
    const watcher: Watcher = { received: new Map(), ready: false };
    const ch = clients[1 + (w % channelsCount)] as RaftmeshClient;
    const h = ch.watch(
      { fromIndex, keyPrefix: `${PREFIX}w${w}/` },
      {
        onMessage: (m) => {
          const now = performance.now();
          watcher.ready = true;
          for (const e of m.events) if (!watcher.received.has(e.index)) watcher.received.set(e.index, now);
        },
        onEnd,
      },
    );
    cancels.push(() => h.cancel());
    watchers.push(watcher);
  }
  const readyStart = performance.now();
  // Bounded by READY_MS_MAX.
  while (watchers.some((w) => !w.ready) && performance.now() - readyStart < READY_MS_MAX) await sleep(50);
  const ready = watchers.filter((w) => w.ready).length;
  console.log(`${ready}/${W} watches established in ${Math.round(performance.now() - readyStart)} ms`);

  const meter = new CpuMeter([...cluster.pids.values()]);
  const txnCount = Math.ceil(C / B);
  const txns: Txn[] = [];
  let next = 0;
  let writeErrors = 0;
  let firstWriteError: string | undefined;
  const value = Buffer.alloc(VALUE_BYTES, 120);
  const writeStart = performance.now();
  // Txn j writes changes j*B .. j*B+B-1; change c goes to watcher c mod W (distinct within a txn since B <= W).
  const runWriter = async () => {
    while (next < txnCount && performance.now() - writeStart < maxWriteMs) {
      const j = next++;
      const first = j * B;
      const ops = [];
      for (let c = first; c < Math.min(C, first + B); c++) ops.push({ op: "put", key: `${PREFIX}w${c % W}/k`, value });
      const t: Txn = { first, sentAt: performance.now(), ackAt: Number.NaN, index: 0 };
      try {
        const r = await writer.txn({ compares: [], success: ops }, { deadlineMs: WRITE_DEADLINE_MS });
        t.index = r.index;
        t.ackAt = performance.now();
        txns.push(t);
      } catch (err) {
        writeErrors++;
        firstWriteError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: writersCount }, runWriter));
  const writeMs = performance.now() - writeStart;
  const changesWritten = txns.reduce((a, t) => a + Math.min(B, C - t.first), 0);
  console.log(`${changesWritten} changes in ${txns.length} txns acknowledged in ${(writeMs / 1000).toFixed(1)} s (${Math.round(changesWritten / (writeMs / 1000))} changes/s), ${writeErrors} errors`);

  // Each acknowledged txn owes one delivery to each of its watchers.
  const owed = (): { watcher: Watcher; t: Txn }[] => {
    const out: { watcher: Watcher; t: Txn }[] = [];
    for (const t of txns) for (let c = t.first; c < Math.min(C, t.first + B); c++) out.push({ watcher: watchers[c % W] as Watcher, t });
    return out;
  };
  const all = owed();
  const waitStart = performance.now();
  // Bounded by DELIVERY_WAIT_MS_MAX.
  while (all.some(({ watcher, t }) => !watcher.received.has(t.index)) && performance.now() - waitStart < DELIVERY_WAIT_MS_MAX) await sleep(200);
  const cpu = meter.read();

  const fromCommit: number[] = [];
  const fromAck: number[] = [];
  const fromSend: number[] = [];
  let missing = 0;
  let noProbe = 0;
  for (const { watcher, t } of all) {
    const at = watcher.received.get(t.index);
    if (at === undefined) {
      missing++;
      continue;
    }
    const committed = probeAt.get(t.index);
    if (committed === undefined) noProbe++;
    else fromCommit.push(at - committed);
    fromAck.push(at - t.ackAt);
    fromSend.push(at - t.sentAt);
  }
  const cpuPercent: Record<string, number> = {};
  for (const [id, pid] of cluster.pids) cpuPercent[id] = Math.round(cpu.percentByPid.get(pid) ?? Number.NaN);
  cpuPercent.client = Math.round(cpu.selfPercent);
  const report = {
    machine: { ...machine, loadavgAtEnd: loadavg() },
    leader,
    target,
    on: values.on,
    watchers: W,
    watchesReady: ready,
    watchEnds,
    firstWatchEnd: firstEnd,
    changesAsked: C,
    batch: B,
    writers: writersCount,
    changesWritten,
    txns: txns.length,
    writeSeconds: writeMs / 1000,
    changesPerSecond: changesWritten / (writeMs / 1000),
    writeErrors,
    firstWriteError,
    expectedDeliveries: all.length,
    missing,
    deliveriesWithoutProbe: noProbe,
    fromCommit: summarizeLatencies(fromCommit),
    fromAck: summarizeLatencies(fromAck),
    fromSend: summarizeLatencies(fromSend),
    cpuPercent,
  };
  const row = (name: string, s: LatencySummary) => [name, s.count, s.p50Ms.toFixed(1), s.p99Ms.toFixed(1), s.maxMs.toFixed(1)];
  console.log(
    `\n${formatTable(["latency (ms)", "deliveries", "p50", "p99", "max"], [row("from commit", report.fromCommit), row("from ack", report.fromAck), row("from send", report.fromSend)])}`,
  );
  console.log(`missing ${missing}/${all.length}, watch ends ${watchEnds}${firstEnd ? ` (${firstEnd})` : ""}, CPU % ${JSON.stringify(cpuPercent)}, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
} finally {
  for (const c of cancels) c();
  for (const c of clients) c.close();
  await cluster.stop();
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
