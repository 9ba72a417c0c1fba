/**
 * storage-bench measures synced batch saves of the LogStore: for each batch size, batches/s and
 * entries/s, the median of REPEATS runs, each in a fresh temporary directory on os.tmpdir()'s disk.
 *
 * Run with: npx tsx test/bench/storage-bench.ts
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { type Entry, EntryKind, nodeId } from "../../src/raft/types.js";
import { LogStore } from "../../src/storage/index.js";

/** BATCH_SIZES are entries per save: one proposal, then what proposal batching gives under load. */
const BATCH_SIZES = [1, 16, 64, 256] as const;
/** ENTRY_BYTES is a typical registry command (an instance registration with a few tags). */
const ENTRY_BYTES = 256;
/** REPEATS runs per size; the median damps a noisy neighbour on a shared 2-core machine. */
const REPEATS = 3;
/** RUN_MS bounds one run, so the whole bench takes about BATCH_SIZES × REPEATS seconds. */
const RUN_MS = 1_000;
/** RUN_BATCHES_MAX bounds one run on a disk whose fsync is a no-op (tmpfs), where RUN_MS alone would write gigabytes. */
const RUN_BATCHES_MAX = 200_000;

interface RunResult {
  readonly batches: number;
  readonly seconds: number;
}

function makeEntries(from: number, count: number, payload: Uint8Array): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) out.push({ index: from + i, term: 1, kind: EntryKind.Normal, data: payload });
  return out;
}

async function runOnce(batchSize: number, payload: Uint8Array): Promise<RunResult> {
  const dir = await mkdtemp(join(os.tmpdir(), "raftmesh-storage-bench-"));
  try {
    const { store } = await LogStore.open(dir, { clusterId: "bench", nodeId: nodeId("n1") });
    let next = 1;
    let batches = 0;
    const start = performance.now();
    while (performance.now() - start < RUN_MS && batches < RUN_BATCHES_MAX) {
      const last = next + batchSize - 1;
      await store.save({ hardState: { term: 1, vote: nodeId("n1"), commit: last }, entries: makeEntries(next, batchSize, payload) });
      next = last + 1;
      batches++;
    }
    const seconds = (performance.now() - start) / 1000;
    await store.close();
    return { batches, seconds };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const payload = new Uint8Array(ENTRY_BYTES).map((_, i) => (i * 31) & 0xff);
  const rows = [];
  for (const batchSize of BATCH_SIZES) {
    const rates: number[] = [];
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      const { batches, seconds } = await runOnce(batchSize, payload);
      rates.push(batches / seconds);
    }
    const batchesPerSecond = median(rates);
    rows.push({
      entriesPerBatch: batchSize,
      batchesPerSecond: Math.round(batchesPerSecond),
      entriesPerSecond: Math.round(batchesPerSecond * batchSize),
      mibPerSecond: Number(((batchesPerSecond * batchSize * ENTRY_BYTES) / 2 ** 20).toFixed(2)),
      runsBatchesPerSecond: rates.map(Math.round),
    });
  }
  const cpus = os.cpus();
  const machine = { cpu: cpus[0]?.model ?? "unknown", cores: cpus.length, node: process.version, platform: `${os.platform()} ${os.release()}`, tmpdir: os.tmpdir() };
  console.log(`storage bench: synced saves of ${ENTRY_BYTES}-byte entries, median of ${REPEATS} runs of ${RUN_MS} ms`);
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.platform}, dir ${machine.tmpdir}`);
  console.log("");
  console.log("entries/batch | batches/s | entries/s | MiB/s  | runs (batches/s)");
  console.log("------------- | --------- | --------- | ------ | ----------------");
  for (const row of rows) {
    console.log(
      `${String(row.entriesPerBatch).padStart(13)} | ${String(row.batchesPerSecond).padStart(9)} | ${String(row.entriesPerSecond).padStart(9)} | ${row.mibPerSecond.toFixed(2).padStart(6)} | ${row.runsBatchesPerSecond.join(", ")}`,
    );
  }
  console.log("");
  console.log(JSON.stringify({ bench: "storage", entryBytes: ENTRY_BYTES, repeats: REPEATS, runMs: RUN_MS, machine, rows }));
}

await main();
