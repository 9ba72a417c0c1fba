import { parseArgs } from "node:util";
import type { UnsafeSwitches } from "../../src/raft/index.js";
import type { MachineKind } from "./sim-machine.js";
import { type RegistryTally, runSeed, type SimResult } from "./simulation.js";
import { isUnsafeConfVariant, UNSAFE_CONF_VARIANTS, type UnsafeConfVariant } from "./unsafe-conf.js";

/**
 * The simulator's command line:
 *   npm run sim -- --seed 42            replay one seed and print its figures
 *   npm run sim -- --seeds 100000       run a campaign from --first (default 1)
 *   npm run sim -- --seeds 500 --unsafe grantVoteWithoutLogCheck   a negative control
 *   npm run sim -- --seeds 500 --unsafe confChangeBeforeTermCommit  a membership control (unsafe-conf.ts)
 *   npm run sim -- --seeds 3000 --machine registry   nodes run the registry state machine
 */
const { values } = parseArgs({
  options: {
    seed: { type: "string" },
    seeds: { type: "string" },
    first: { type: "string", default: "1" },
    nodes: { type: "string" },
    unsafe: { type: "string" },
    "fault-ticks": { type: "string" },
    json: { type: "boolean", default: false },
    machine: { type: "string", default: "kv" },
  },
  strict: true,
});

function intArg(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got "${v}"`);
    process.exit(2);
  }
  return n;
}

const UNSAFE_NAMES = ["grantVoteWithoutLogCheck", "commitPriorTermByCount", "skipPersistVote", "readWithoutHeartbeat"];
const unsafe: UnsafeSwitches = {};
let unsafeConf: UnsafeConfVariant | undefined;
if (values.unsafe) {
  if (isUnsafeConfVariant(values.unsafe)) unsafeConf = values.unsafe;
  else if (UNSAFE_NAMES.includes(values.unsafe)) (unsafe as Record<string, boolean>)[values.unsafe] = true;
  else {
    console.error(`--unsafe must be one of ${[...UNSAFE_NAMES, ...UNSAFE_CONF_VARIANTS].join(", ")}`);
    process.exit(2);
  }
}
const nodes = intArg("nodes", values.nodes);
const faultTicks = intArg("fault-ticks", values["fault-ticks"]);
if (values.machine !== "kv" && values.machine !== "registry") {
  console.error(`--machine must be kv or registry, got "${values.machine}"`);
  process.exit(2);
}
const machine: MachineKind = values.machine;
const base = { nodes, unsafe, faultTicks, machine, ...(unsafeConf ? { unsafeConf } : {}) };
const replayFlags = `${values.unsafe ? ` --unsafe ${values.unsafe}` : ""}${machine !== "kv" ? ` --machine ${machine}` : ""}`;

function show(r: SimResult): string {
  return `seed=${r.seed} nodes=${r.nodes} ticks=${r.ticks} elections=${r.elections} acked=${r.writesAcked} reads=${r.readsDone} refused=${r.readsRefused} crashes=${r.crashes} conf=${r.confChanges} transfers=${r.transfers} snapshots=${r.snapshotsSent} leaderDisconnects=${r.leaderDisconnects} confSplits=${r.confSplits} heal->write=${r.healToWriteTicks} msgs=${r.messages}${r.registry ? ` registry=${JSON.stringify(r.registry)}` : ""}`;
}

const one = intArg("seed", values.seed);
if (one !== undefined) {
  const r = await runSeed({ ...base, seed: one });
  console.log(values.json ? JSON.stringify(r) : show(r));
  if (!r.ok) {
    console.log(`VIOLATION ${r.violation?.property} at tick ${r.violation?.tick}: ${r.violation?.message}`);
    process.exit(1);
  }
  process.exit(0);
}

const count = intArg("seeds", values.seeds) ?? 1000;
const first = intArg("first", values.first) ?? 1;
const started = performance.now();
let ticks = 0;
let failures = 0;
let healMax = 0;
let healMaxSeed = 0;
const heals: number[] = [];
const tally: RegistryTally = { commands: 0, ok: 0, duplicates: 0, failed: {} };
/** ran counts the seeds actually run: a campaign stops early at its tenth failure. */
let ran = 0;
let leaderDisconnects = 0;
for (let s = first; s < first + count; s++) {
  ran++;
  const r = await runSeed({ ...base, seed: s });
  ticks += r.ticks;
  leaderDisconnects += r.leaderDisconnects;
  if (r.registry) {
    tally.commands += r.registry.commands;
    tally.ok += r.registry.ok;
    tally.duplicates += r.registry.duplicates;
    for (const [code, n] of Object.entries(r.registry.failed)) tally.failed[code] = (tally.failed[code] ?? 0) + n;
  }
  if (r.healToWriteTicks >= 0) {
    heals.push(r.healToWriteTicks);
    if (r.healToWriteTicks > healMax) {
      healMax = r.healToWriteTicks;
      healMaxSeed = s;
    }
  }
  if (!r.ok) {
    failures++;
    console.log(`FAIL seed=${s} step=${r.violation?.tick} ${r.violation?.property}: ${r.violation?.message}`);
    console.log(`  reproduce with: npm run sim -- --seed ${s}${replayFlags}`);
    if (failures >= 10) break;
  }
  if ((s - first + 1) % 1000 === 0) {
    const secs = (performance.now() - started) / 1000;
    console.log(`${s - first + 1} seeds, ${(ticks / secs).toFixed(0)} ticks/s, ${((s - first + 1) / secs).toFixed(1)} seeds/s`);
  }
}
const secs = (performance.now() - started) / 1000;
heals.sort((a, b) => a - b);
const summary = {
  seeds: ran,
  ...(ran < count ? { stoppedEarlyOf: count } : {}),
  failures,
  seconds: Number(secs.toFixed(1)),
  seedsPerSecond: Number((ran / secs).toFixed(1)),
  ticksPerSecond: Math.round(ticks / secs),
  leaderDisconnects,
  healToWriteTicksMedian: heals[Math.floor(heals.length / 2)] ?? -1,
  healToWriteTicksMax: healMax,
  healToWriteTicksMaxSeed: healMaxSeed,
  ...(machine === "registry" ? { registry: tally } : {}),
};
console.log(JSON.stringify(summary));
process.exit(failures > 0 ? 1 : 0);
