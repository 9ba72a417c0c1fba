/**
 * crash-rounds drives a 3-node cluster of real processes through rounds of concurrent writes with
 * SIGKILLs at seeded random moments, then checks, after every round, what the issue asks: no
 * acknowledged write is lost, and the logs are identical after recovery.
 *
 * One round: writers (each pinned to one node, unique key and value per write) run while a fault
 * schedule kills one node (the leader, a follower) or two at once (quorum lost) and restarts them.
 * Then: one leader, every node converged; every acknowledged write of the round reads back with
 * its value through every node (linearizable get) and no write the cluster refused reads back;
 * every node is stopped and its LogStore opened directly, and the durable logs, snapshots and the
 * states they rebuild are compared; the nodes start again for the next round.
 *
 * Real processes and real timers mean a seed replays the schedule (fault kinds, moments, downtimes,
 * stop signals), not the exact interleaving.
 */
import { ClusterStateMachine } from "../../../src/node/cluster-state-machine.js";
import { decodeCommand } from "../../../src/registry/codec.js";
import { LIST_LIMIT_MAX } from "../../../src/registry/limits.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import { Buffer } from "node:buffer";
import { status } from "@grpc/grpc-js";
import { RaftmeshError } from "../../../src/client/index.js";
import { SNAPSHOT_ENTRIES_RANGE } from "../../../src/config/index.js";
import { type Entry, EntryKind, type HardState, type NodeId, type Snapshot } from "../../../src/raft/index.js";
import { LogStore, type StorageLogger } from "../../../src/storage/index.js";
import { Rng } from "../../sim/rng.js";
import { type ProcessCluster, waitFor } from "./process-cluster.js";

/** NODES are the founders of the crash cluster. */
export const NODES = ["n1", "n2", "n3"] as const;
/** CLUSTER_ID is the cluster id ProcessCluster gives every node (LogStore.open checks it). */
const CLUSTER_ID = "it-cluster";
/**
 * SNAPSHOT_ENTRIES_DEFAULT is the smallest interval the agent accepts, so snapshots and compaction
 * happen in every round even when a busy machine acknowledges only a few hundred writes in one.
 */
export const SNAPSHOT_ENTRIES_DEFAULT = SNAPSHOT_ENTRIES_RANGE[0];
/** WRITE_DEADLINE_MS bounds one put; a put that times out is an unknown outcome, never a success. */
const WRITE_DEADLINE_MS = 2_000;
/** WRITES_PER_WRITER_MAX bounds one writer's loop in one round (about 10x what it manages). */
const WRITES_PER_WRITER_MAX = 5_000;
/** ERROR_PAUSE_MS keeps a writer whose node is down from spinning on fast connection errors. */
const ERROR_PAUSE_MS = 50;
/** RECOVERY_WAIT_MS bounds the wait for a leader and for convergence after faults or a restart. */
const RECOVERY_WAIT_MS = 30_000;
/** READ_CONCURRENCY is how many verification reads run at once. */
const READ_CONCURRENCY = 24;

/** CrashOptions shape a run. */
export interface CrashOptions {
  readonly seed: number;
  readonly rounds: number;
  readonly writers?: number;
  /** writeMsRange: how long writers run in a round, [min, max) ms before the fault schedule stretches it. */
  readonly writeMsRange?: readonly [number, number];
  /** onRound hears each round's report as soon as it is checked. */
  readonly onRound?: (report: RoundReport) => void;
}

/** FaultKind is what one fault event kills. */
export type FaultKind = "leader" | "follower" | "two";

/** KillRecord is one SIGKILL: which node, whether it led at that moment, when and for how long. */
export interface KillRecord {
  readonly node: string;
  readonly wasLeader: boolean;
  readonly atMs: number;
  readonly downMs: number;
}

/** Violation is a broken property, with the round that found it. */
export interface Violation {
  readonly round: number;
  readonly property: string;
  readonly message: string;
}

/** RoundReport is one round's figures. */
export interface RoundReport {
  readonly round: number;
  readonly kills: readonly KillRecord[];
  readonly acked: number;
  readonly failed: number;
  readonly unknown: number;
  /** unknownByCode splits the unknown outcomes by gRPC status. */
  readonly unknownByCode: Readonly<Record<string, number>>;
  readonly commit: number;
  readonly snapshotIndexes: readonly number[];
  /** compared is the index range compared byte for byte across all three logs ([from, to], empty when from > to). */
  readonly compared: readonly [number, number];
  readonly stopSignal: "SIGTERM" | "SIGKILL";
  readonly durationMs: number;
  readonly violations: readonly Violation[];
}

/** CrashResult is the whole run. */
export interface CrashResult {
  readonly seed: number;
  readonly rounds: readonly RoundReport[];
  readonly violations: readonly Violation[];
  readonly durationMs: number;
}

/** Ack is what the client was told about an acknowledged put. */
export interface Ack {
  readonly value: string;
  readonly index: number;
  readonly round: number;
}

/** History is every write attempted, by outcome; keys are unique per attempt. */
export class History {
  readonly acked = new Map<string, Ack>();
  readonly failed = new Set<string>();
  readonly unknown = new Set<string>();
}

/** RoundTally counts one round's outcomes. */
interface RoundTally {
  acked: string[];
  failed: string[];
  unknown: number;
  unknownByCode: Record<string, number>;
}

/** runCrashRounds runs the rounds and returns every report; it stops after the first round with a violation. */
export async function runCrashRounds(cluster: ProcessCluster, options: CrashOptions): Promise<CrashResult> {
  const started = Date.now();
  const rng = new Rng(options.seed);
  const history = new History();
  const reports: RoundReport[] = [];
  await recover(cluster, 0, []);
  for (let round = 1; round <= options.rounds; round++) {
    const report = await runRound(cluster, options, rng.fork(), history, round);
    reports.push(report);
    options.onRound?.(report);
    if (report.violations.length > 0) break;
  }
  return { seed: options.seed, rounds: reports, violations: reports.flatMap((r) => r.violations), durationMs: Date.now() - started };
}

async function runRound(cluster: ProcessCluster, options: CrashOptions, rng: Rng, history: History, round: number): Promise<RoundReport> {
  const started = Date.now();
  const violations: Violation[] = [];
  const [writeMin, writeMax] = options.writeMsRange ?? [1_500, 4_000];
  const writeMs = writeMin + rng.nextInt(writeMax - writeMin);
  const plan = faultPlan(rng, writeMs);
  const stopSignal = rng.chance(0.5) ? "SIGTERM" : "SIGKILL";
  const tally: RoundTally = { acked: [], failed: [], unknown: 0, unknownByCode: {} };
  const state = { stop: false };
  const writers = Array.from({ length: options.writers ?? 4 }, (_, w) => writer(cluster, history, tally, round, w, state));
  const kills = await runFaults(cluster, plan, violations, round);
  const tailMs = writeMs - (Date.now() - started);
  await sleep(Math.max(300, tailMs));
  state.stop = true;
  await Promise.all(writers);
  let commit = 0;
  let snapshotIndexes: number[] = [];
  let compared: [number, number] = [1, 0];
  if (violations.length === 0) {
    commit = await recover(cluster, round, violations);
    if (violations.length === 0) await checkReads(cluster, history, tally, round, violations);
  }
  if (violations.length === 0) {
    const durable = await stopAndOpen(cluster, stopSignal);
    snapshotIndexes = durable.map((d) => d.snapshot?.meta.index ?? 0);
    compared = checkDurable(durable, history, tally.acked, commit, round, violations);
    for (const id of NODES) cluster.start(id);
    await recover(cluster, round, violations);
  }
  return {
    round,
    kills,
    acked: tally.acked.length,
    failed: tally.failed.length,
    unknown: tally.unknown,
    unknownByCode: tally.unknownByCode,
    commit,
    snapshotIndexes,
    compared,
    stopSignal,
    durationMs: Date.now() - started,
    violations,
  };
}

/** writer puts unique keys through its node until told to stop, recording each outcome. */
async function writer(cluster: ProcessCluster, history: History, tally: RoundTally, round: number, w: number, state: { stop: boolean }): Promise<void> {
  const node = NODES[w % NODES.length] as string;
  for (let seq = 0; seq < WRITES_PER_WRITER_MAX && !state.stop; seq++) {
    const key = `r${round}-w${w}-${seq}`;
    const value = `${key}@${node}`;
    try {
      const res = await cluster.client(node).put(key, value, { deadlineMs: WRITE_DEADLINE_MS });
      history.acked.set(key, { value, index: res.index, round });
      tally.acked.push(key);
    } catch (err) {
      if (definitelyNotApplied(err)) {
        history.failed.add(key);
        tally.failed.push(key);
      } else {
        history.unknown.add(key);
        tally.unknown++;
        const code = err instanceof RaftmeshError ? (status[err.code] ?? String(err.code)) : "client";
        tally.unknownByCode[code] = (tally.unknownByCode[code] ?? 0) + 1;
      }
      await sleep(ERROR_PAUSE_MS);
    }
  }
}

/**
 * definitelyNotApplied: the server said so (notApplied), or the proposal was lost (ABORTED).
 * Everything else, deadlines and broken connections included, may have taken effect.
 */
export function definitelyNotApplied(err: unknown): boolean {
  if (!(err instanceof RaftmeshError)) return false;
  return err.notApplied || err.code === status.ABORTED;
}

/** FaultEvent is one planned fault: at atMs into the round, kill `kind`, restart after downMs. */
interface FaultEvent {
  readonly atMs: number;
  readonly kind: FaultKind;
  readonly downMs: number;
}

/** faultPlan draws one or two fault events inside the writing window. */
function faultPlan(rng: Rng, writeMs: number): FaultEvent[] {
  const count = rng.chance(0.3) ? 2 : 1;
  const events: FaultEvent[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    at += 100 + rng.nextInt(Math.max(1, Math.floor(writeMs / count) - 100));
    const r = rng.next();
    const kind: FaultKind = r < 0.4 ? "leader" : r < 0.8 ? "follower" : "two";
    events.push({ atMs: at, kind, downMs: 50 + rng.nextInt(1_500) });
  }
  return events;
}

/** runFaults plays the plan in order: each event kills its targets, waits, and restarts them. */
async function runFaults(cluster: ProcessCluster, plan: readonly FaultEvent[], violations: Violation[], round: number): Promise<KillRecord[]> {
  const started = Date.now();
  const kills: KillRecord[] = [];
  for (const event of plan) {
    await sleep(Math.max(0, event.atMs - (Date.now() - started)));
    const leader = await currentLeader(cluster);
    const targets = pickTargets(event.kind, leader, event);
    const atMs = Date.now() - started;
    await Promise.all(targets.map((id) => cluster.kill(id)));
    for (const id of targets) kills.push({ node: id, wasLeader: id === leader, atMs, downMs: event.downMs });
    await sleep(event.downMs);
    for (const id of targets) cluster.start(id);
    await expectRunning(cluster, targets, round, violations);
  }
  return kills;
}

/** pickTargets chooses which nodes a fault kills; the choice among candidates is fixed by the event's own numbers. */
function pickTargets(kind: FaultKind, leader: string | undefined, event: FaultEvent): string[] {
  const salt = event.atMs + event.downMs;
  const others = NODES.filter((id) => id !== leader);
  if (kind === "leader" && leader) return [leader];
  if (kind === "two") {
    const spared = NODES[salt % NODES.length] as string;
    return NODES.filter((id) => id !== spared);
  }
  return [others[salt % others.length] as string];
}

/** currentLeader asks the running nodes who leads; undefined when none knows. */
async function currentLeader(cluster: ProcessCluster): Promise<string | undefined> {
  for (const id of cluster.runningIds()) {
    const st = await cluster
      .client(id)
      .status({ deadlineMs: 500 })
      .catch(() => undefined);
    if (st?.leader) return st.leader;
  }
  return undefined;
}

/** expectRunning gives restarted nodes a moment, then records any that exited (a node that will not restart is a violation). */
async function expectRunning(cluster: ProcessCluster, ids: readonly string[], round: number, violations: Violation[]): Promise<void> {
  await sleep(200);
  for (const id of ids) {
    if (cluster.isRunning(id)) continue;
    const tail = (await cluster.logOf(id)).split("\n").slice(-15).join("\n");
    violations.push({ round, property: "restart", message: `${id} exited after restart; last log lines:\n${tail}` });
  }
}

/**
 * recover waits for one leader agreed by every node and for every node to have applied the same
 * commit index; it returns that index. A timeout is a liveness violation.
 */
async function recover(cluster: ProcessCluster, round: number, violations: Violation[]): Promise<number> {
  try {
    await cluster.waitForLeader(RECOVERY_WAIT_MS, NODES);
    return await waitFor(
      "every node to apply the same commit index",
      async () => {
        const views = await Promise.all(NODES.map((id) => cluster.client(id).status({ deadlineMs: 1_000 })));
        const commit = views[0]?.commit ?? 0;
        return views.every((v) => v.commit === commit && v.applied === commit) && commit > 0 ? commit : undefined;
      },
      RECOVERY_WAIT_MS,
    );
  } catch (err) {
    await expectRunning(cluster, NODES, round, violations);
    violations.push({ round, property: "recovery", message: (err as Error).message });
    return 0;
  }
}

/**
 * checkReads: every write acknowledged this round reads back with its value through every node,
 * and no write the cluster refused this round is there (linearizable gets).
 */
async function checkReads(cluster: ProcessCluster, history: History, tally: RoundTally, round: number, violations: Violation[]): Promise<void> {
  const jobs: (() => Promise<void>)[] = [];
  for (const id of NODES) {
    for (const key of tally.acked) {
      const ack = history.acked.get(key) as Ack;
      jobs.push(async () => {
        const got = await cluster.client(id).get(key, { deadlineMs: 5_000 });
        if (!got.found || got.value.toString() !== ack.value) {
          const seen = got.found ? JSON.stringify(got.value.toString()) : "nothing";
          violations.push({ round, property: "acked-write-readable", message: `${key} acknowledged at index ${ack.index}; ${id} reads ${seen}` });
        }
      });
    }
    for (const key of tally.failed) {
      jobs.push(async () => {
        const got = await cluster.client(id).get(key, { deadlineMs: 5_000 });
        if (got.found) violations.push({ round, property: "refused-write-absent", message: `${key} was refused as not applied, yet ${id} reads it` });
      });
    }
  }
  try {
    await inBatches(jobs, READ_CONCURRENCY);
  } catch (err) {
    violations.push({ round, property: "recovery", message: `a verification read failed: ${(err as Error).message}` });
  }
}

/** Durable is one node's storage as LogStore.open recovers it. */
export interface Durable {
  readonly id: string;
  readonly hardState: HardState;
  readonly snapshot?: Snapshot;
  readonly entries: readonly Entry[];
}

const QUIET_STORAGE_LOGGER: StorageLogger = { warn() {}, info() {} };

/** stopAndOpen stops every node with the signal and reads each node's storage directly. */
async function stopAndOpen(cluster: ProcessCluster, signal: "SIGTERM" | "SIGKILL"): Promise<Durable[]> {
  await Promise.all(NODES.map((id) => cluster.kill(id, signal)));
  const out: Durable[] = [];
  for (const id of NODES) {
    const { store, state } = await LogStore.open(`${cluster.dataDir}/${id}`, { clusterId: CLUSTER_ID, nodeId: id as NodeId, logger: QUIET_STORAGE_LOGGER });
    await store.close();
    out.push({ id, ...state });
  }
  return out;
}

/**
 * checkDurable compares what the three nodes hold on disk after convergence at `commit`:
 * - every node holds the log (or a snapshot) through commit: it applied that far, and it saves before it applies;
 * - entries in the range all three logs hold, up to the lowest durable commit, are byte-identical;
 * - snapshots at the same index hold the same state (byte-identical, or the same once re-encoded:
 *   members may write different snapshot formats, see RaftNodeOptions.peerSnapshotReadMax);
 * - each acknowledged write of the round is the put at its response index on every node (entry or snapshot);
 * - the states rebuilt from snapshot + log through one index are identical, hold every write ever
 *   acknowledged with its value, and no write ever refused. That index is commit, or the highest
 *   snapshot when one is past commit: entries may commit after the nodes converged (a write whose
 *   outcome its client never learned), and a node that snapshotted one holds no log below it. Nodes
 *   that do not hold that far (they were not in that write's majority when stopped) sit it out.
 * It returns the range compared byte for byte.
 */
export function checkDurable(
  nodes: readonly Durable[],
  history: History,
  roundAcked: readonly string[],
  commit: number,
  round: number,
  violations: Violation[],
): [number, number] {
  const fail = (property: string, message: string) => violations.push({ round, property, message });
  for (const n of nodes) {
    const last = n.entries.at(-1)?.index ?? n.snapshot?.meta.index ?? 0;
    if (last < commit) fail("durable-through-commit", `${n.id} applied ${commit} but holds only through ${last}`);
  }
  const from = Math.max(...nodes.map((n) => (n.snapshot?.meta.index ?? 0) + 1));
  const to = Math.min(...nodes.map((n) => Math.min(n.hardState.commit, n.entries.at(-1)?.index ?? 0)));
  for (let i = from; i <= to; i++) {
    const [a, ...rest] = nodes.map((n) => entryAt(n, i));
    for (const [k, b] of rest.entries()) {
      if (!a || !b || !sameEntry(a, b)) fail("identical-logs", `entry ${i} differs: ${nodes[0]?.id} ${describe(a)} vs ${nodes[k + 1]?.id} ${describe(b)}`);
    }
  }
  checkSnapshots(nodes, fail);
  const through = Math.max(commit, ...nodes.map((n) => n.snapshot?.meta.index ?? 0));
  const states = nodes.map((n) => rebuild(n, through));
  for (const key of roundAcked) {
    const ack = history.acked.get(key) as Ack;
    nodes.forEach((n, k) => {
      const e = entryAt(n, ack.index);
      const held = e ? putOf(e) : (n.snapshot?.meta.index ?? 0) >= ack.index ? { key, value: states[k]?.get(key) } : undefined;
      if (held?.key !== key || held.value !== ack.value) {
        fail("acked-write-durable", `${key}=${ack.value} acknowledged at ${ack.index}; ${n.id} holds ${JSON.stringify(held ?? null)} there`);
      }
    });
  }
  const reaching = nodes.flatMap((n, k) => (Math.max(n.entries.at(-1)?.index ?? 0, n.snapshot?.meta.index ?? 0) >= through ? [k] : []));
  compareStates(
    reaching.map((k) => nodes[k] as Durable),
    reaching.map((k) => states[k] as Map<string, string>),
    history,
    fail,
  );
  return [from, to];
}

function checkSnapshots(nodes: readonly Durable[], fail: (p: string, m: string) => void): void {
  for (const a of nodes) {
    for (const b of nodes) {
      if (a.id >= b.id || !a.snapshot || !b.snapshot || a.snapshot.meta.index !== b.snapshot.meta.index) continue;
      const same = a.snapshot.meta.term === b.snapshot.meta.term && (Buffer.compare(Buffer.from(a.snapshot.data), Buffer.from(b.snapshot.data)) === 0 || Buffer.compare(reencoded(a.snapshot.data), reencoded(b.snapshot.data)) === 0);
      if (!same) fail("identical-snapshots", `${a.id} and ${b.id} hold different snapshots at ${a.snapshot.meta.index}`);
    }
  }
}

function compareStates(nodes: readonly Durable[], states: readonly Map<string, string>[], history: History, fail: (p: string, m: string) => void): void {
  const [first, ...rest] = states;
  if (!first) return;
  rest.forEach((s, k) => {
    if (s.size !== first.size || [...first].some(([key, v]) => s.get(key) !== v)) {
      fail("identical-states", `${nodes[0]?.id} rebuilds ${first.size} keys, ${nodes[k + 1]?.id} ${s.size}, and they differ`);
    }
  });
  let missing = 0;
  let example = "";
  for (const [key, ack] of history.acked) {
    if (first.get(key) === ack.value) continue;
    missing++;
    example ||= `${key} (acknowledged in round ${ack.round} at ${ack.index}) reads ${JSON.stringify(first.get(key) ?? null)}`;
  }
  if (missing > 0) fail("no-acked-write-lost", `${missing} acknowledged writes are not in the rebuilt state, e.g. ${example}`);
  const refused = [...history.failed].filter((key) => first.has(key));
  if (refused.length > 0) fail("refused-write-absent", `${refused.length} writes refused as not applied are in the state, e.g. ${refused[0]}`);
}

/** reencoded is a snapshot's state written again in this build's newest format, to compare snapshots written in different formats. */
function reencoded(data: Uint8Array): Buffer {
  const machine = new ClusterStateMachine(new RegistryStateMachine());
  machine.restore(data);
  return Buffer.from(machine.snapshot());
}

/** rebuild is the KV a node's snapshot plus its log through `through` describe, rebuilt by the node's own state machines. */
function rebuild(n: Durable, through: number): Map<string, string> {
  const registry = new RegistryStateMachine();
  const machine = new ClusterStateMachine(registry);
  if (n.snapshot) machine.restore(n.snapshot.data);
  for (const e of n.entries) {
    if (e.index > through) break;
    if (e.index <= machine.applied) continue;
    machine.apply(e);
  }
  const kv = new Map<string, string>();
  for (let page = registry.kvList("", { limit: LIST_LIMIT_MAX }), last = ""; ; ) {
    for (const e of page.entries) {
      kv.set(e.key, Buffer.from(e.value, "base64").toString("utf8"));
      last = e.key;
    }
    if (!page.more) break;
    page = registry.kvList("", { startAfter: last, limit: LIST_LIMIT_MAX });
  }
  return kv;
}

/** putOf decodes an entry as a KV put (tag 0x02, then a registry command with a base64 value). */
function putOf(e: Entry): { key: string; value: string } | undefined {
  if (e.kind !== EntryKind.Normal || e.data[0] !== 0x02) return undefined;
  const { cmd } = decodeCommand(e.data.subarray(1));
  return cmd.op === "kv.put" ? { key: cmd.key, value: Buffer.from(cmd.value, "base64").toString("utf8") } : undefined;
}

function entryAt(n: Durable, index: number): Entry | undefined {
  const first = n.entries[0]?.index;
  if (first === undefined) return undefined;
  const e = n.entries[index - first];
  return e?.index === index ? e : undefined;
}

function sameEntry(a: Entry, b: Entry): boolean {
  return a.index === b.index && a.term === b.term && a.kind === b.kind && Buffer.compare(Buffer.from(a.data), Buffer.from(b.data)) === 0;
}

function describe(e: Entry | undefined): string {
  return e ? `{term ${e.term}, kind ${e.kind}, ${e.data.length} bytes}` : "(missing)";
}

async function inBatches(jobs: readonly (() => Promise<void>)[], width: number): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < jobs.length) await (jobs[next++] as () => Promise<void>)();
  };
  await Promise.all(Array.from({ length: width }, lane));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** summarize totals a run's reports. */
export function summarize(result: CrashResult): { rounds: number; acked: number; failed: number; unknown: number; kills: number; leaderKills: number; doubleKills: number; violations: number } {
  const sum = (f: (r: RoundReport) => number) => result.rounds.reduce((s, r) => s + f(r), 0);
  return {
    rounds: result.rounds.length,
    acked: sum((r) => r.acked),
    failed: sum((r) => r.failed),
    unknown: sum((r) => r.unknown),
    kills: sum((r) => r.kills.length),
    leaderKills: sum((r) => r.kills.filter((k) => k.wasLeader).length),
    // Both nodes of a double kill share one moment.
    doubleKills: sum((r) => r.kills.length - new Set(r.kills.map((k) => k.atMs)).size),
    violations: result.violations.length,
  };
}
