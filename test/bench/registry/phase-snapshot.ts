/**
 * Phase 4 (in-process): a RegistryStateMachine fed n registrations through the codec, as a node
 * applies them, then snapshot() and restore() on a fresh machine timed `runs` times (medians),
 * the snapshot's size, and the same for the node's wrapper (ClusterStateMachine, which base64s
 * the registry's snapshot into its own JSON). Also the machine's heap per instance, when a GC
 * can be forced, as a cross-check of the agents' RSS figure.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { ClusterStateMachine } from "../../../src/node/cluster-state-machine.js";
import { EntryKind } from "../../../src/raft/index.js";
import { encodeCommand } from "../../../src/registry/codec.js";
import { type RegistryStats, RegistryStateMachine } from "../../../src/registry/state-machine.js";
import { median } from "../raft/stats.js";
import { instanceSpec, TTL_MS_LONG } from "./instances.js";

/** INSTANCES_PER_SERVICE matches the memory phase: 100 per service. */
const INSTANCES_PER_SERVICE = 100;
/** CLIENTS: registrations come from this many session clients (SESSIONS_MAX is 10,000), so the session table is part of the snapshot as on a busy node. */
const CLIENTS = 100;

/** SnapshotOptions size the phase. */
export interface SnapshotOptions {
  readonly instances: number;
  readonly runs: number;
}

/** SnapshotReport is the phase's result; times in ms are medians over `runs`. */
export interface SnapshotReport {
  readonly instances: number;
  readonly runs: number;
  readonly buildMs: number;
  readonly heapBytesPerInstance: number;
  readonly stats: RegistryStats;
  readonly snapshotBytes: number;
  readonly snapshotMs: number;
  readonly restoreMs: number;
  readonly snapshotMsAll: number[];
  readonly restoreMsAll: number[];
  readonly clusterSnapshotBytes: number;
  readonly clusterSnapshotMs: number;
  readonly clusterRestoreMs: number;
}

/** forceGc returns a function that runs a full GC, or undefined when the VM refuses. */
function forceGc(): (() => void) | undefined {
  try {
    setFlagsFromString("--expose-gc");
    return runInNewContext("gc") as () => void;
  } catch {
    return undefined;
  }
}

/** runSnapshotPhase builds the machine and times its snapshots. */
export function runSnapshotPhase(o: SnapshotOptions, log: (line: string) => void): SnapshotReport {
  const gc = forceGc();
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const sm = new RegistryStateMachine();
  let index = 0;
  const t0 = performance.now();
  for (let i = 0; i < o.instances; i++) {
    const service = `mem-${Math.floor(i / INSTANCES_PER_SERVICE)}`;
    const data = encodeCommand({
      v: 1,
      at: 1_700_000_000_000 + i,
      session: { client: `client-${i % CLIENTS}`, seq: Math.floor(i / CLIENTS) + 1 },
      cmd: { op: "instance.register", instance: instanceSpec(i, service, `${service}-${i % INSTANCES_PER_SERVICE}`, TTL_MS_LONG) },
    });
    const res = sm.apply({ term: 1, index: ++index, kind: EntryKind.Normal, data });
    if (!res?.ok) throw new Error(`registration ${i} was refused: ${JSON.stringify(res)}`);
  }
  const buildMs = performance.now() - t0;
  gc?.();
  // The history (HISTORY_EVENTS_MAX events) is part of what a node holds, so it stays in the figure.
  const heapBytesPerInstance = gc ? (process.memoryUsage().heapUsed - heapBefore) / o.instances : Number.NaN;
  log(`  built ${o.instances} instances in ${Math.round(buildMs)} ms${gc ? `, heap ${Math.round(heapBytesPerInstance)} bytes/instance` : ""}`);

  const snapshotMsAll: number[] = [];
  const restoreMsAll: number[] = [];
  let bytes: Uint8Array = new Uint8Array(0);
  for (let r = 0; r < o.runs; r++) {
    const a = performance.now();
    bytes = sm.snapshot();
    const b = performance.now();
    const copy = new RegistryStateMachine();
    copy.restore(bytes);
    const c = performance.now();
    snapshotMsAll.push(b - a);
    restoreMsAll.push(c - b);
    // Read back what was written: the copy must hold exactly the same state.
    if (r === 0 && Buffer.compare(Buffer.from(copy.snapshot()), Buffer.from(bytes)) !== 0) throw new Error("restored state snapshots differently");
    if (r === 0 && copy.stats().instances !== o.instances) throw new Error(`restored ${copy.stats().instances} instances, expected ${o.instances}`);
  }
  const cluster = new ClusterStateMachine(sm);
  const wrapSnapMs: number[] = [];
  const wrapRestoreMs: number[] = [];
  let wrapped: Uint8Array = new Uint8Array(0);
  for (let r = 0; r < o.runs; r++) {
    const a = performance.now();
    wrapped = cluster.snapshot();
    const b = performance.now();
    new ClusterStateMachine(new RegistryStateMachine()).restore(wrapped);
    wrapSnapMs.push(b - a);
    wrapRestoreMs.push(performance.now() - b);
  }
  return {
    instances: o.instances,
    runs: o.runs,
    buildMs,
    heapBytesPerInstance,
    stats: sm.stats(),
    snapshotBytes: bytes.length,
    snapshotMs: median(snapshotMsAll),
    restoreMs: median(restoreMsAll),
    snapshotMsAll,
    restoreMsAll,
    clusterSnapshotBytes: wrapped.length,
    clusterSnapshotMs: median(wrapSnapMs),
    clusterRestoreMs: median(wrapRestoreMs),
  };
}
