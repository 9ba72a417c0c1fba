/**
 * Client bursts against a 3-node raftmesh cluster (real agent processes, default timing): K calls
 * sent at once through one client pinned to each node (reads: linearizable gets; writes: puts),
 * then the question issue 15 asks — did the burst cost the cluster its leader? Per burst: the
 * outcomes, the highest term before and after (a rise is an election attempt), and each node's
 * largest event-loop delay during the burst (prom-client's nodejs_eventloop_lag_max_seconds,
 * which is reset by every scrape: one scrape before the burst, one after).
 *
 *   npx tsx test/bench/raft/burst.ts [--sizes 1000,3000,6000] [--kinds read,write] [--rounds 3]
 *                                    [--via all|leader] [--json out.json] [--cpu-prof dir]
 * --cpu-prof writes every agent's whole-run CPU profile to dir/<pid>.cpuprofile.
 */
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { RaftmeshClient, RaftmeshError } from "../../../src/client/index.js";
import { RaftmeshCluster } from "./raftmesh-cluster.js";
import { formatTable } from "./stats.js";

/** CALL_DEADLINE_MS is each call's deadline: a burst on a loaded 2-core machine is answered well within it. */
const CALL_DEADLINE_MS = 30_000;
/** SETTLE_MS is the pause between bursts, so one burst's tail does not land in the next one's figures. */
const SETTLE_MS = 1_500;
/** SIZE_MAX bounds one burst, so a typo cannot flood the machine. */
const SIZE_MAX = 50_000;

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "1000,3000,6000" },
    kinds: { type: "string", default: "read,write" },
    rounds: { type: "string", default: "3" },
    via: { type: "string", default: "all" },
    json: { type: "string" },
    "cpu-prof": { type: "string" },
  },
  strict: true,
});
const sizes = values.sizes.split(",").map(Number);
const kinds = values.kinds.split(",");
const rounds = Number(values.rounds);
if (sizes.some((s) => !(s >= 1 && s <= SIZE_MAX)) || !(rounds >= 1)) throw new Error(`--sizes must be 1..${SIZE_MAX}, --rounds ≥ 1`);
if (kinds.some((k) => k !== "read" && k !== "write")) throw new Error("--kinds: read and/or write");
if (values.via !== "all" && values.via !== "leader") throw new Error("--via: all or leader");

/** lagMaxMs scrapes a node's /metrics; the value is the largest loop delay since the previous scrape. */
async function lagMaxMs(adminPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const m = text.match(/^nodejs_eventloop_lag_max_seconds (\S+)$/m);
  return m ? Math.round(Number(m[1]) * 1000) : Number.NaN;
}

interface BurstResult {
  kind: string;
  size: number;
  round: number;
  via: string;
  outcomes: Record<string, number>;
  /** details is the first message of each kind of refusal. */
  details: Record<string, string>;
  elapsedMs: number;
  termBefore: number;
  termAfter: number;
  lagMaxMs: Record<string, number>;
}

const PRELOAD = fileURLToPath(new URL("./cpu-profile-preload.mjs", import.meta.url));
const profEnv: Record<string, string> = values["cpu-prof"]
  ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${PRELOAD}`, RAFTMESH_BENCH_CPU_PROF_DIR: values["cpu-prof"] }
  : {};
const c = await RaftmeshCluster.start(profEnv);
const pc = c.pc;
const adminPort = (id: string) => (pc.specs.get(id) as { adminPort: number }).adminPort;
const highestTerm = async () => Math.max(...(await Promise.all(c.ids.map((id) => c.client(id).status({ deadlineMs: 5_000 }).then((s) => s.term, () => 0)))));
const results: BurstResult[] = [];
console.log(`${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, node ${process.version}, load ${loadavg()[0]?.toFixed(2)} at start`);
try {
  await c.client(await c.leader()).put("burst", "before");
  for (const kind of kinds) {
    for (const size of sizes) {
      for (let round = 0; round < rounds; round++) {
        const leader = await c.leader();
        const via = values.via === "leader" ? [leader] : [...c.ids];
        const clients = via.map((id) => new RaftmeshClient([pc.api(id)], { deadlineMs: CALL_DEADLINE_MS }));
        // Open every channel first, so the burst measures calls, not connection set-up.
        await Promise.all(clients.map((cl) => cl.get("burst", { stale: true })));
        const termBefore = await highestTerm();
        await Promise.all(c.ids.map((id) => lagMaxMs(adminPort(id))));
        const started = performance.now();
        const value = Buffer.alloc(256, 0x61);
        const per = Math.ceil(size / clients.length);
        /** details keeps the first message of each kind of refusal. */
        const details = new Map<string, string>();
        const outcomes = await Promise.all(
          clients.flatMap((cl, ci) =>
            Array.from({ length: per }, (_, i) =>
              (kind === "read" ? cl.get("burst") : cl.put(`burst/${ci}/${i}`, value)).then(
                () => "ok",
                (err: unknown) => {
                  const o = err instanceof RaftmeshError ? `${err.name}:${err.code}` : String(err);
                  if (err instanceof RaftmeshError && !details.has(o)) details.set(o, err.details);
                  return o;
                },
              ),
            ),
          ),
        );
        const elapsedMs = Math.round(performance.now() - started);
        const lags = await Promise.all(c.ids.map(async (id) => [id, await lagMaxMs(adminPort(id))] as const));
        const termAfter = await highestTerm();
        for (const cl of clients) cl.close();
        const counts: Record<string, number> = {};
        for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
        const r: BurstResult = { kind, size: per * clients.length, round, via: values.via, outcomes: counts, details: Object.fromEntries(details), elapsedMs, termBefore, termAfter, lagMaxMs: Object.fromEntries(lags) };
        results.push(r);
        console.log(`${kind} ×${r.size} round ${round + 1}: ${JSON.stringify(counts)} ${JSON.stringify(r.details)} in ${elapsedMs} ms, term ${termBefore}→${termAfter}, loop delay max ${lags.map(([id, ms]) => `${id}${id === leader ? "*" : ""} ${ms}`).join(" ")} ms, load ${loadavg()[0]?.toFixed(1)}`);
        await sleep(SETTLE_MS);
      }
    }
  }
} finally {
  // A clean stop lets each agent write its profile.
  if (values["cpu-prof"]) for (const id of pc.runningIds()) await pc.stop(id);
  await pc.cleanup();
}
const rows = results.map((r) => [r.kind, r.size, r.round + 1, r.elapsedMs, r.outcomes.ok ?? 0, r.size - (r.outcomes.ok ?? 0), r.termAfter - r.termBefore, Math.max(...Object.values(r.lagMaxMs))]);
console.log(`\n${formatTable(["kind", "calls", "round", "ms", "ok", "refused", "term rises", "max loop delay ms"], rows)}`);
if (values.json) writeFileSync(values.json, JSON.stringify({ machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }, results }, null, 2));
