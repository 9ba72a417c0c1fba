/**
 * runTest is one Jepsen-style run: create the cluster, wait for a leader, set the workload up,
 * then warm-up (load, no faults) → faults for the time limit → heal → a leader → recovery (load, no faults)
 * → final reads on every node → check → results.json, report.html and the console summary.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { JepsenCluster } from "../harness/types.js";
import { WORKLOADS } from "../workloads/index.js";
import type { CheckerResult, WorkloadContext } from "../workloads/types.js";
import { ClientPool } from "./clients.js";
import { RunClock, sleep } from "./clock.js";
import { CLUSTER_FACTORIES, type ClusterFactory } from "./cluster-factory.js";
import { ElectionWatcher } from "./elections.js";
import { HistoryRecorder } from "./history.js";
import { LoopbackCluster } from "./loopback-cluster.js";
import { JITTER_MIN, NemesisDriver } from "./nemesis.js";
import { INSTANCE_UNSAFE_SWITCHES, type RunOptions } from "./options.js";
import { PARTITION_NAMES } from "./partitions.js";
import { renderReport } from "./report-html.js";
import { buildResults, type RunResults } from "./results.js";
import { Rng } from "./rng.js";

/** LEADER_WAIT_MS bounds the wait for the first leader. */
const LEADER_WAIT_MS = 60_000;

/** runFolderName is runs/<timestamp>-<workload>-seed<seed>. */
export function runFolderName(o: RunOptions, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
  return join(o.runsDir, `${stamp}-${o.workload}-seed${o.seed}`);
}

async function waitForLeader(cluster: JepsenCluster): Promise<string> {
  const until = Date.now() + LEADER_WAIT_MS;
  while (Date.now() < until) {
    const l = await cluster.leader().catch(() => undefined);
    if (l) return l;
    await sleep(200);
  }
  throw new Error(`no leader within ${LEADER_WAIT_MS} ms`);
}

/** runTest: see the module comment. `log` receives progress lines. */
export async function runTest(o: RunOptions, log: (line: string) => void, factory: ClusterFactory = CLUSTER_FACTORIES[o.cluster]): Promise<RunResults> {
  const runDir = runFolderName(o, new Date());
  await mkdir(runDir, { recursive: true });
  const clock = new RunClock();
  const rng = new Rng(o.seed);
  const history = new HistoryRecorder(clock, join(runDir, "history.jsonl"));
  const notes: string[] = [];
  if (o.cluster === "loopback") notes.push("loopback cluster: partitions are emulated by SIGSTOP and one-way cuts are ignored; for developing the runner, not for verdicts");
  if (o.unsafe.length > 0) notes.push(`negative control in the node: RAFTMESH_TEST_UNSAFE=${o.unsafe.join(",")}`);
  if (o.unsafeBlindRetry) notes.push("negative control in the client: --unsafe-blind-retry");
  if (o.clients === "pinned") notes.push("pinned clients: each reaches only its own node and is cut off with it");
  if (o.partitions.length < PARTITION_NAMES.length) notes.push(`partition shapes: ${o.partitions.join(", ")}`);
  // The clock nemesis needs the nodes' test-only clock control; it is switched on like the controls.
  const isInstanceSwitch = (u: string) => (INSTANCE_UNSAFE_SWITCHES as readonly string[]).includes(u);
  const switches = [...o.unsafe.filter((u) => !isInstanceSwitch(u)), ...(o.nemesis.includes("clock") ? ["clock"] : [])];
  const extraEnv: Record<string, string> = switches.length > 0 ? { RAFTMESH_TEST_UNSAFE: switches.join(",") } : {};
  if (o.snapshotEntries !== undefined) extraEnv.RAFTMESH_SNAPSHOT_ENTRIES = String(o.snapshotEntries);
  log(`seed ${o.seed}: starting a ${o.cluster} cluster in ${runDir}`);
  const cluster = await factory({ runDir, extraEnv, size: 5 });
  const clients = new ClientPool(cluster);
  const elections = new ElectionWatcher(cluster, clock);
  const loadMs = o.warmupMs + o.timeLimitMs + o.recoveryMs;
  const workload = WORKLOADS[o.workload]();
  const ctx: WorkloadContext = {
    cluster,
    history,
    clock,
    rng: rng.fork(),
    clients,
    options: { opTimeoutMs: o.opTimeoutMs, concurrency: o.concurrency, rateHz: o.rateHz, loadMs, checkBudgetMs: o.checkBudgetMs, unsafeBlindRetry: o.unsafeBlindRetry, pinnedClients: o.clients === "pinned", instanceUnsafe: o.unsafe.filter(isInstanceSwitch), faultHoldMinMs: Math.round(o.faultHoldMs * JITTER_MIN) },
  };
  const stopElections = new AbortController();
  try {
    log(`leader ${await waitForLeader(cluster)}; setting up ${workload.name}`);
    const electionsDone = elections.run(stopElections.signal);
    await workload.setup(ctx);
    const stopLoad = new AbortController();
    const loadFrom = clock.now();
    history.phase("warm-up");
    const load = workload.run(ctx, stopLoad.signal);
    await sleep(o.warmupMs);
    history.phase("faults");
    log(`faults (${o.nemesis.join(",") || "none"}) for ${o.timeLimitMs / 1000} s`);
    const nemesis = new NemesisDriver(cluster, o.nemesis, { holdMs: o.faultHoldMs, restMs: o.faultRestMs, partitions: o.partitions }, rng.fork(), history, workload.masterTargets);
    const stopFaults = new AbortController();
    const faults = nemesis.run(stopFaults.signal);
    await sleep(o.timeLimitMs);
    stopFaults.abort();
    await faults;
    history.phase("heal");
    await nemesis.heal();
    // Recovery is counted from the first leader after the heal, not from the heal: a kill:all just
    // before it leaves five processes starting at once, which took 15-20 s on a loaded machine,
    // and a recovery spent waiting for them ended in final reads that found no leader (verdict
    // unknown). The wait is bounded (LEADER_WAIT_MS: no leader by then fails the run), and the
    // results still report heal -> first acknowledged write and the longest unavailable window.
    const healedAt = clock.now();
    const leader = await waitForLeader(cluster);
    log(`healed; leader ${leader} ${Math.round(clock.now() - healedAt)} ms after the heal; recovery for ${o.recoveryMs / 1000} s`);
    history.phase("recovery");
    await sleep(o.recoveryMs);
    stopLoad.abort();
    await load;
    const loadTo = clock.now();
    log("final reads");
    await workload.final(ctx);
    history.abandonPending();
    stopElections.abort();
    await electionsDone;
    history.phase("end");
    const durationMs = clock.now();
    log("checking");
    let verdicts: CheckerResult[];
    try {
      verdicts = await workload.check(ctx);
    } catch (err) {
      verdicts = [{ name: "checker", valid: "unknown", summary: `the checker failed: ${(err as Error).message}`, anomalies: [] }];
    }
    if (cluster instanceof LoopbackCluster && cluster.ignoredCuts > 0) notes.push(`loopback cluster ignored ${cluster.ignoredCuts} one-way cuts`);
    const e = elections.summary();
    const results = buildResults({ options: o, runDir, entries: history.entries, verdicts, writeFs: workload.writeFs, loadFrom, loadTo, durationMs, elections: { ...e, changes: elections.changes }, notes });
    await writeFile(join(runDir, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
    await writeFile(join(runDir, "report.html"), renderReport(results, history.entries));
    return results;
  } finally {
    stopElections.abort();
    elections.close();
    clients.close();
    await history.close();
    await cluster.cleanup();
  }
}
