/**
 * npm run bench:pick: nanoseconds per ServiceBalancer.pick() for each policy at 3, 30 and 300
 * endpoints, and what a pick allocates.
 *
 *   npm run bench:pick -- [--picks 1000000] [--json out.json]
 *
 * Setup: every endpoint passing in one zone and one priority level, weights 1–4, and a background
 * load of 0–9 requests in flight per endpoint (least-connections and p2c then compare real
 * loads). Hash policies pick with one of 1,024 pre-built keys. Each case warms up, then times
 * `picks` calls. Allocation: after a forced GC, heap growth over 100,000 picks, in bytes per pick
 * (0 means pick allocates nothing; a few hundred KiB of noise from the timer and JIT divides to
 * about 1 byte), and the count of GCs seen during the timed run (0 when nothing allocates).
 * Wall time suffers on a loaded machine; CPU time per pick is the steadier figure there.
 */
import { writeFileSync } from "node:fs";
import { PerformanceObserver } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { balancerConfig, createServiceBalancer } from "../../../src/balancer/policy/index.js";
import type { BalancePolicy, Endpoint, HashMethod, PickRequest } from "../../../src/balancer/types.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const { values } = parseArgs({ options: { picks: { type: "string", default: "1000000" }, json: { type: "string" } } });
const PICKS = Number(values.picks);
/** WARMUP_PICKS gets the JIT past its tiers before timing. */
const WARMUP_PICKS = 200_000;
/** ALLOC_PICKS: 100,000 picks of even 8 bytes each would show as 800 KB, well above the noise. */
const ALLOC_PICKS = 100_000;
const SIZES = [3, 30, 300] as const;
const CASES: readonly { name: string; policy: BalancePolicy; hashMethod?: HashMethod }[] = [
  { name: "round-robin", policy: "round-robin" },
  { name: "random", policy: "random" },
  { name: "weighted", policy: "weighted" },
  { name: "least-connections", policy: "least-connections" },
  { name: "p2c", policy: "p2c" },
  { name: "hash-ring", policy: "hash", hashMethod: "ring" },
  { name: "hash-maglev", policy: "hash", hashMethod: "maglev" },
];

/** xorshift32 is the bench's own seeded random source (the balancer takes random() as a dependency). */
function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

interface Row {
  policy: string;
  endpoints: number;
  /** nsPerPick is wall time; cpuNsPerPick is this process's CPU time, steadier on a shared machine. */
  nsPerPick: number;
  cpuNsPerPick: number;
  bytesPerPick: number;
  gcsDuringTimedRun: number;
}

let gcs = 0;
new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
}).observe({ entryTypes: ["gc"] });

/** settle lets pending performance entries reach the observer. */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 20));
}

async function runCase(c: (typeof CASES)[number], n: number): Promise<Row> {
  const rnd = xorshift32(42);
  const endpoints: Endpoint[] = Array.from({ length: n }, (_, i) => ({
    id: `i-${i}`,
    address: `10.0.${i >> 8}.${i & 255}`,
    port: 8080,
    weight: 1 + (i % 4),
    priority: 0,
    zone: "z1",
    health: "passing",
  }));
  const b = createServiceBalancer({ name: "bench", config: balancerConfig({ policy: c.policy, hashMethod: c.hashMethod ?? "ring" }), endpoints }, { random: rnd, localZone: "z1" });
  for (const e of endpoints) for (let k = Math.floor(rnd() * 10); k > 0; k--) b.onStart(e.id);
  const reqs: PickRequest[] = Array.from({ length: 1024 }, (_, i) => (c.policy === "hash" ? { hashKey: `user-${i}-${i * 7919}` } : {}));
  let sink = 0;
  const loop = (count: number): void => {
    // `| 0` keeps sink a small integer: a growing double would itself allocate per pick.
    for (let i = 0; i < count; i++) sink = (sink + (b.pick(reqs[i & 1023] as PickRequest, 0)?.port ?? 0)) | 0;
  };
  loop(WARMUP_PICKS);
  gc();
  const before = process.memoryUsage().heapUsed;
  loop(ALLOC_PICKS);
  const bytesPerPick = Math.max(0, process.memoryUsage().heapUsed - before) / ALLOC_PICKS;
  gc();
  await settle(); // the forced GCs' entries arrive before the count is read
  const gcsBefore = gcs;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  loop(PICKS);
  const ns = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  await settle();
  if (sink === -1) console.log(sink); // keeps the loop's result alive
  const cpuNs = (cpu.user + cpu.system) * 1000;
  return { policy: c.name, endpoints: n, nsPerPick: ns / PICKS, cpuNsPerPick: cpuNs / PICKS, bytesPerPick, gcsDuringTimedRun: gcs - gcsBefore };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  for (const c of CASES) for (const n of SIZES) rows.push(await runCase(c, n));
  console.log("policy              endpoints  ns/pick  cpu-ns/pick  bytes/pick  GCs");
  for (const r of rows) {
    console.log(
      `${r.policy.padEnd(20)}${String(r.endpoints).padStart(9)}${r.nsPerPick.toFixed(1).padStart(9)}${r.cpuNsPerPick.toFixed(1).padStart(13)}${r.bytesPerPick.toFixed(2).padStart(12)}${String(r.gcsDuringTimedRun).padStart(5)}`,
    );
  }
  if (values.json !== undefined) {
    writeFileSync(values.json, `${JSON.stringify({ picks: PICKS, node: process.version, rows }, null, 2)}\n`);
  }
}

await main();
