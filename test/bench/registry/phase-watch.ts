/**
 * Phase 5: watch fan-out. W watchers on one service, spread evenly over the three nodes and over a
 * few client channels per node (gRPC multiplexes the streams), then `writes` changes one at a time,
 * `gapMs` apart: new registrations alternating with health changes (a heartbeat reporting
 * warning / passing). Latency is from a write's send (and, separately, its acknowledgement) to each
 * watcher's receipt of the event with the write's index. Every watcher must see every write.
 */
import { RaftmeshClient } from "../../../src/client/index.js";
import { summarizeLatencies } from "../raft/stats.js";
import type { BenchCluster } from "./cluster.js";
import { instanceSpec, TTL_MS_LONG } from "./instances.js";
import { CpuMeter } from "./procs.js";

/** SERVICE is the watched service. */
const SERVICE = "fanout";
/** BASE_ID is the instance whose health the heartbeats toggle. */
const BASE_ID = "fanout-base";
/** READY_MS_MAX bounds the wait for every watch to be established (its first message). */
const READY_MS_MAX = 30_000;
/** DELIVERY_WAIT_MS_MAX bounds the wait for the last deliveries after the last write. */
const DELIVERY_WAIT_MS_MAX = 10_000;
/** WRITE_DEADLINE_MS bounds one write. */
const WRITE_DEADLINE_MS = 5_000;

/** WatchOptions size the phase. */
export interface WatchOptions {
  readonly watchers: number;
  readonly channelsPerNode: number;
  readonly writes: number;
  readonly gapMs: number;
}

/** Latencies are p50/p99/max in ms over deliveries. */
interface Latencies {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** WatchReport is the phase's result. */
export interface WatchReport {
  readonly leader: string;
  readonly watchers: number;
  readonly channels: number;
  readonly writes: number;
  readonly writesWithEvent: number;
  readonly writeErrors: number;
  readonly firstWriteError: string | undefined;
  readonly expectedDeliveries: number;
  readonly delivered: number;
  readonly missing: number;
  readonly watchesEnded: number;
  readonly firstWatchEnd: string | undefined;
  /** fromSend: receipt minus the write's send; fromAck: receipt minus its acknowledgement (negative when the event beat the answer). */
  readonly fromSend: Latencies;
  readonly fromAck: Latencies;
  readonly writeAckMs: Latencies;
  readonly byNode: Record<string, { role: "leader" | "follower"; watchers: number } & Latencies>;
  readonly cpuPercent: Record<string, number>;
}

interface Watcher {
  readonly node: number;
  readonly received: Map<number, number>;
  ready: boolean;
  cancel: () => void;
}

interface Write {
  readonly sentAt: number;
  ackAt: number;
  index: number;
}

/** runWatchPhase runs the phase on cluster c. */
export async function runWatchPhase(c: BenchCluster, o: WatchOptions, log: (line: string) => void): Promise<WatchReport> {
  const leader = await c.leader();
  const ids = c.ids;
  const writer = c.pc.client(leader);
  const base = await writer.register(instanceSpec(0, SERVICE, BASE_ID, TTL_MS_LONG));
  const channels = ids.map((id) => Array.from({ length: o.channelsPerNode }, () => new RaftmeshClient([c.pc.api(id)])));
  const watchers: Watcher[] = [];
  let watchesEnded = 0;
  let firstWatchEnd: string | undefined;
  try {
    for (let w = 0; w < o.watchers; w++) {
      const node = w % ids.length;
      const ch = channels[node]?.[Math.floor(w / ids.length) % o.channelsPerNode] as RaftmeshClient;
      const watcher: Watcher = { node, received: new Map(), ready: false, cancel: () => undefined };
      const handle = ch.watch(
        { fromIndex: base.index, service: SERVICE },
        {
          onMessage: (m) => {
            const now = performance.now();
            watcher.ready = true;
            for (const e of m.events) if (!watcher.received.has(e.index)) watcher.received.set(e.index, now);
          },
          onEnd: (err) => {
            watchesEnded++;
            firstWatchEnd ??= err?.message ?? "stream ended";
          },
        },
      );
      watcher.cancel = () => handle.cancel();
      watchers.push(watcher);
    }
    const readyStart = performance.now();
    while (watchers.some((w) => !w.ready) && performance.now() - readyStart < READY_MS_MAX) await sleep(20);
    const ready = watchers.filter((w) => w.ready).length;
    log(`  ${ready}/${o.watchers} watches established in ${Math.round(performance.now() - readyStart)} ms over ${ids.length * o.channelsPerNode} channels`);

    const meter = new CpuMeter([...c.pids.values()]);
    const { writes, writeErrors, firstWriteError } = await runWrites(writer, o);
    const withEvent = writes.filter((w) => w.index > 0);
    const expected = withEvent.length * watchers.length;
    const countDelivered = () => watchers.reduce((a, w) => a + withEvent.filter((x) => w.received.has(x.index)).length, 0);
    const waitStart = performance.now();
    // Bounded by DELIVERY_WAIT_MS_MAX.
    while (countDelivered() < expected && performance.now() - waitStart < DELIVERY_WAIT_MS_MAX) await sleep(100);
    const cpu = meter.read();

    const fromSend: number[] = [];
    const fromAck: number[] = [];
    const perNode: number[][] = ids.map(() => []);
    let missing = 0;
    for (const w of watchers) {
      for (const x of withEvent) {
        const t = w.received.get(x.index);
        if (t === undefined) {
          missing++;
          continue;
        }
        fromSend.push(t - x.sentAt);
        fromAck.push(t - x.ackAt);
        perNode[w.node]?.push(t - x.sentAt);
      }
    }
    const cpuPercent: Record<string, number> = {};
    for (const [id, pid] of c.pids) cpuPercent[id] = cpu.percentByPid.get(pid) ?? Number.NaN;
    cpuPercent.client = cpu.selfPercent;
    return {
      leader,
      watchers: o.watchers,
      channels: ids.length * o.channelsPerNode,
      writes: o.writes,
      writesWithEvent: withEvent.length,
      writeErrors,
      firstWriteError,
      expectedDeliveries: expected,
      delivered: expected - missing,
      missing,
      watchesEnded,
      firstWatchEnd,
      fromSend: summarizeLatencies(fromSend),
      fromAck: summarizeLatencies(fromAck),
      writeAckMs: summarizeLatencies(withEvent.map((x) => x.ackAt - x.sentAt)),
      byNode: Object.fromEntries(
        ids.map((id, node) => [
          id,
          { role: id === leader ? ("leader" as const) : ("follower" as const), watchers: watchers.filter((w) => w.node === node).length, ...summarizeLatencies(perNode[node] ?? []) },
        ]),
      ),
      cpuPercent,
    };
  } finally {
    for (const w of watchers) w.cancel();
    for (const list of channels) for (const ch of list) ch.close();
  }
}

/** runWrites sends the writes one at a time, each gapMs after the previous one's send (or at once if that one took longer). */
async function runWrites(writer: RaftmeshClient, o: WatchOptions): Promise<{ writes: Write[]; writeErrors: number; firstWriteError: string | undefined }> {
  const writes: Write[] = [];
  let writeErrors = 0;
  let firstWriteError: string | undefined;
  const start = performance.now();
  for (let k = 0; k < o.writes; k++) {
    const due = start + k * o.gapMs;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const x: Write = { sentAt: performance.now(), ackAt: Number.NaN, index: 0 };
    try {
      if (k % 2 === 0) {
        x.index = (await writer.register(instanceSpec(k + 1, SERVICE, `${SERVICE}-${k}`, TTL_MS_LONG), { deadlineMs: WRITE_DEADLINE_MS })).index;
      } else {
        // Alternate warning / passing, so every heartbeat changes health and makes one health.set entry.
        const health = k % 4 === 1 ? "warning" : "passing";
        x.index = (await writer.heartbeat(SERVICE, BASE_ID, health, `bench ${k}`, { deadlineMs: WRITE_DEADLINE_MS })).index;
      }
      x.ackAt = performance.now();
    } catch (err) {
      writeErrors++;
      firstWriteError ??= (err as Error).message;
    }
    writes.push(x);
  }
  return { writes, writeErrors, firstWriteError };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
