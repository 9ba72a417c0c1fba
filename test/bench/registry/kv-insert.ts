/**
 * The cost of a new KV key by the size of the KV, in one process, no I/O: the KV's sorted key index
 * (SortedKeys) side by side with the one sorted array it replaced (the baseline), both fed the same
 * keys in the same scattered order. Every node pays this per new key on apply, so it bounds the
 * cluster's write rate once the KV is large. The table gives µs per new key at each size step and
 * the baseline/new ratio.
 *
 *   npx tsx test/bench/registry/kv-insert.ts [--keys 400000] [--step 100000] [--json out.json]
 */
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { KV_KEYS_MAX } from "../../../src/registry/limits.js";
import { SortedKeys } from "../../../src/registry/sorted-keys.js";
import { formatTable } from "../raft/stats.js";

const { values } = parseArgs({ options: { keys: { type: "string", default: "400000" }, step: { type: "string", default: "100000" }, json: { type: "string" } }, strict: true });
const KEYS = Number(values.keys);
const STEP = Number(values.step);
if (!Number.isInteger(KEYS) || KEYS < 1 || KEYS > KV_KEYS_MAX) throw new Error(`--keys must be an integer in 1..${KV_KEYS_MAX}, got ${values.keys}`);
if (!Number.isInteger(STEP) || STEP < 1 || STEP > KEYS) throw new Error(`--step must be an integer in 1..--keys, got ${values.step}`);

/** keyOf scatters keys over the order the way bench:raft's random prefixes and decimal counters do. */
const keyOf = (i: number) => `bench/${((i * 2_654_435_761) >>> 0).toString(16)}/${i}`;

/** SortedArray is the baseline: one array, a binary search and a splice per new key. */
class SortedArray {
  private readonly a: string[] = [];
  insert(key: string): void {
    let lo = 0;
    let hi = this.a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.a[mid] as string) < key) lo = mid + 1;
      else hi = mid;
    }
    this.a.splice(lo, 0, key);
  }
}

/** usPerKey times the inserts of keys [from, to) into s. */
function usPerKey(s: { insert(k: string): void }, from: number, to: number): number {
  const t = performance.now();
  for (let i = from; i < to; i++) s.insert(keyOf(i));
  return ((performance.now() - t) * 1000) / (to - from);
}

const baseline = new SortedArray();
const next = new SortedKeys();
const rows: { keysAfter: number; baselineUs: number; sortedKeysUs: number; ratio: number }[] = [];
for (let from = 0; from < KEYS; from += STEP) {
  const to = Math.min(KEYS, from + STEP);
  // Alternate which goes first per step, so neither always runs on the warmer cache.
  const first = rows.length % 2 === 0;
  const a = first ? usPerKey(baseline, from, to) : Number.NaN;
  const b = usPerKey(next, from, to);
  const baselineUs = first ? a : usPerKey(baseline, from, to);
  rows.push({ keysAfter: to, baselineUs, sortedKeysUs: b, ratio: baselineUs / b });
}
console.log(`${cpus()[0]?.model}, ${cpus().length} cores, node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}`);
console.log(
  formatTable(
    ["keys after step", "one sorted array µs/key", "SortedKeys µs/key", "ratio"],
    rows.map((r) => [r.keysAfter, r.baselineUs.toFixed(1), r.sortedKeysUs.toFixed(2), r.ratio.toFixed(1)]),
  ),
);
if (values.json) writeFileSync(values.json, `${JSON.stringify({ machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }, rows }, null, 2)}\n`);
