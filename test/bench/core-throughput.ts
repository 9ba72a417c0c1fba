/**
 * Core throughput with no I/O: a 3-node cluster of real Raft cores in one process, messages handed
 * over directly, "disks" in memory. Reports committed entries/s at the leader for several proposal
 * batch sizes (256-byte entries), median of 3 runs. A baseline for the node's figures, which add
 * fsync and gRPC on top. Run: npm run bench:core [-- --seconds 2 --json out.json]
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { bootstrapEntries, type Message, type NodeId, nodeId, RawNode } from "../../src/raft/index.js";
import { MemoryStorage } from "../sim/memory-storage.js";
import { Rng } from "../sim/rng.js";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "2" }, json: { type: "string" } } });
const SECONDS = Number(values.seconds);
const BATCHES = [1, 16, 64, 256];
const ENTRY_BYTES = 256;
const REPEATS = 3;

function cluster() {
  const ids = ["n1", "n2", "n3"].map(nodeId);
  const boot = bootstrapEntries(ids);
  const nodes = new Map<NodeId, { raw: RawNode; storage: MemoryStorage }>();
  for (const id of ids) {
    const storage = new MemoryStorage({ hardState: { term: 1, vote: "" as NodeId, commit: boot.length }, entries: boot });
    nodes.set(id, { raw: new RawNode({ id, electionTick: 10, heartbeatTick: 1, random: new Rng(1) }, storage.load()), storage });
  }
  return nodes;
}

/** run drives the cluster until the deadline; returns entries applied at the leader per second. */
function run(batch: number): number {
  const nodes = cluster();
  const queue: Message[] = [];
  let applied = 0;
  const pump = () => {
    for (let guard = 0; guard < 1_000_000; guard++) {
      let progressed = false;
      for (const [id, n] of nodes) {
        if (!n.raw.hasReady()) continue;
        progressed = true;
        const rd = n.raw.ready();
        n.storage.save(rd);
        queue.push(...rd.messages);
        if (id === "n1") applied += rd.committedEntries.length;
        n.raw.advance(rd);
      }
      const m = queue.shift();
      if (m) {
        nodes.get(m.to)?.raw.step(m);
        progressed = true;
      }
      if (!progressed) return;
    }
  };
  const leader = nodes.get(nodeId("n1"));
  if (!leader) throw new Error("no n1");
  leader.raw.campaign();
  pump();
  const payload = new Uint8Array(ENTRY_BYTES).fill(7);
  const datas = Array.from({ length: batch }, () => payload);
  const start = performance.now();
  const base = applied;
  while (performance.now() - start < SECONDS * 1000) {
    leader.raw.propose(datas);
    pump();
    // Compact now and then, as a node would, so the in-memory log stays bounded.
    const st = leader.raw.status();
    if (st.applied % 10_000 < batch) for (const n of nodes.values()) n.raw.compact(n.raw.status().applied, new Uint8Array(0));
  }
  return (applied - base) / ((performance.now() - start) / 1000);
}

const rows = BATCHES.map((batch) => {
  const runs = Array.from({ length: REPEATS }, () => run(batch)).sort((a, b) => a - b);
  return { batch, entriesPerSecond: Math.round(runs[1] ?? 0), runs: runs.map(Math.round) };
});
const machine = { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version };
console.log(`core throughput, 3 nodes, no I/O, ${ENTRY_BYTES}-byte entries, median of ${REPEATS} x ${SECONDS}s (${machine.cpu}, ${machine.cores} cores)`);
console.log("batch | entries/s | runs");
for (const r of rows) console.log(`${String(r.batch).padStart(5)} | ${String(r.entriesPerSecond).padStart(9)} | ${r.runs.join(", ")}`);
const out = { bench: "core-throughput", machine, entryBytes: ENTRY_BYTES, rows };
console.log(JSON.stringify(out));
if (values.json) writeFileSync(values.json, JSON.stringify(out, null, 2));
