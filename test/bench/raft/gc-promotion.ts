/**
 * How many bytes each write promotes into V8's old generation on every node, from V8's own trace
 * of each collection (`--trace-gc-nvp`, preloaded into the agents): 3 agents, a closed loop of
 * 256-byte puts or registrations at one concurrency, to the leader or through a follower (which
 * forwards). Per node: scavenges and their pause time, bytes promoted per write, mark-compacts and
 * their pause time. Promoted bytes are what later major collections must trace and free: the
 * old-space garbage behind the pauses that a snapshot's stall is made of, and the heap between them.
 *
 *   npx tsx test/bench/raft/gc-promotion.ts [--op put|register] [--via leader|follower]
 *        [--concurrency 64] [--seconds 8] [--json out.json]
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ProcessCluster } from "../../integration/harness/process-cluster.js";
import { runLoad } from "./load.js";
import { registrationFor } from "./registration-load.js";

const { values } = parseArgs({
  options: {
    op: { type: "string", default: "put" },
    via: { type: "string", default: "leader" },
    concurrency: { type: "string", default: "64" },
    seconds: { type: "string", default: "8" },
    json: { type: "string" },
  },
  strict: true,
});
if (values.op !== "put" && values.op !== "register") throw new RangeError(`--op: put or register, got "${values.op}"`);
if (values.via !== "leader" && values.via !== "follower") throw new RangeError(`--via: leader or follower, got "${values.via}"`);
const concurrency = Number(values.concurrency);
const durationMs = Number(values.seconds) * 1000;
if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`--concurrency: a positive integer, got "${values.concurrency}"`);
if (!(durationMs > 0)) throw new RangeError(`--seconds: a positive number, got "${values.seconds}"`);
/** WARMUP_MS: a short load first, so compilation and connection set-up are not in the figures. */
const WARMUP_MS = 3_000;
const PRELOAD = fileURLToPath(new URL("./gc-trace-preload.mjs", import.meta.url));

/** NodeGc is one node's collections over the measured window. */
interface NodeGc {
  node: string;
  role: "leader" | "follower";
  scavenges: number;
  scavengePauseMs: number;
  promotedBytesPerWrite: number;
  markCompacts: number;
  markCompactPauseMs: number;
}

/** summarize reads V8's --trace-gc-nvp lines ("pause=… gc=s|mc … promoted=…") of one window of a log. */
function summarize(text: string, writes: number): Omit<NodeGc, "node" | "role"> {
  let scavenges = 0;
  let scavengePauseMs = 0;
  let promoted = 0;
  let markCompacts = 0;
  let markCompactPauseMs = 0;
  for (const line of text.split("\n")) {
    const kind = /\bgc=(\w+)/.exec(line)?.[1];
    const pause = Number(/\bpause=([\d.]+)/.exec(line)?.[1] ?? 0);
    if (kind === "s") {
      scavenges++;
      scavengePauseMs += pause;
      promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
    } else if (kind === "mc") {
      markCompacts++;
      markCompactPauseMs += pause;
    }
  }
  return { scavenges, scavengePauseMs, promotedBytesPerWrite: writes > 0 ? promoted / writes : 0, markCompacts, markCompactPauseMs };
}

const pc = await ProcessCluster.create({ size: 3, env: { RAFTMESH_LOG_LEVEL: "warn", NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${PRELOAD}` } });
try {
  pc.startAll();
  const leader = await pc.waitForLeader(120_000);
  const target = values.via === "leader" ? leader : (pc.runningIds().find((id) => id !== leader) as string);
  const client = pc.client(target);
  const write =
    values.op === "register"
      ? async (key: string) => {
          await client.register(registrationFor(key).request);
        }
      : async (key: string, value: Uint8Array) => {
          await client.put(key, value);
        };
  await runLoad({ put: write, concurrency: 16, durationMs: WARMUP_MS, keyPrefix: "warm" });
  const ids = pc.runningIds();
  const logs = ids.map((id) => join(pc.root, `${id}.log`));
  const from = logs.map((f) => statSync(f).size);
  const r = await runLoad({ put: write, concurrency, durationMs });
  const to = logs.map((f) => statSync(f).size);
  const nodes: NodeGc[] = ids.map((id, i) => ({
    node: id,
    role: id === leader ? "leader" : "follower",
    ...summarize(readFileSync(logs[i] as string).subarray(from[i], to[i]).toString(), r.ops),
  }));
  const machine = { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version, loadavgAtEnd: loadavg()[0] ?? 0 };
  console.log(`${machine.cpu}, ${machine.cores} cores, node ${machine.node}; load average ${machine.loadavgAtEnd.toFixed(2)} at end`);
  console.log(`${values.op} c=${concurrency} via ${values.via} (${target}): ${Math.round(r.opsPerSec)}/s, ${r.ops} writes, p50 ${r.p50Ms.toFixed(1)} ms, errors ${r.errors}`);
  for (const n of nodes) {
    console.log(
      `${n.node}${n.node === target ? " (takes the calls)" : ""} ${n.role}: promoted ${Math.round(n.promotedBytesPerWrite)} B/write; ${n.scavenges} scavenges, ${n.scavengePauseMs.toFixed(0)} ms; ${n.markCompacts} mark-compacts, ${n.markCompactPauseMs.toFixed(0)} ms`,
    );
  }
  if (values.json) writeFileSync(values.json, JSON.stringify({ machine, op: values.op, via: values.via, concurrency, durationMs, writes: r.ops, writesPerSec: r.opsPerSec, nodes }, null, 2));
  for (const id of ids) await pc.stop(id);
} finally {
  await pc.cleanup();
}
