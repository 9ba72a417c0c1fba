/**
 * Lines each failover round up with the agents' logs: for every round of a failover.ts run kept
 * with `BENCH_LOG_LEVEL=info KEEP_CLUSTER=1`, when (ms after the signal) each follower heard that
 * its leader's connection ended, became pre-candidate and candidate, and when the new leader was
 * elected, next to the first acknowledged write. Two candidates in one term are a split vote.
 *
 *   BENCH_LOG_LEVEL=info KEEP_CLUSTER=1 npx tsx test/bench/raft/failover.ts --kinds kill --json run.json
 *   npx tsx test/bench/raft/failover-timeline.ts --cluster /tmp/raftmesh-cluster-XXXX --json run.json
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

/** ROUND_WINDOW_MS is how long after a round's signal its events are looked for: rounds are seconds apart. */
const ROUND_WINDOW_MS = 2_000;

interface LogEvent {
  readonly atMs: number;
  readonly node: string;
  readonly msg: string;
  readonly role?: string;
  readonly term?: number;
}

interface RunSummary {
  readonly fault: string;
  readonly failoverMs: readonly number[];
  readonly killedAtEpochMs?: readonly number[];
}

function readEvents(dir: string): LogEvent[] {
  const events: LogEvent[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".log"))) {
    for (const line of readFileSync(join(dir, file), "utf8").split("\n")) {
      if (!line.startsWith("{")) continue;
      let j: Record<string, unknown>;
      try {
        j = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // a line cut short by the kill
      }
      const msg = String(j.msg ?? "");
      if (msg !== "raft state changed" && msg !== "the leader's connection ended") continue;
      events.push({ atMs: Number(j.time), node: String(j.node), msg, role: j.role as string | undefined, term: j.term as number | undefined });
    }
  }
  return events.sort((a, b) => a.atMs - b.atMs);
}

function main(): void {
  const { values } = parseArgs({ options: { cluster: { type: "string" }, json: { type: "string" } }, strict: true });
  if (!values.cluster || !values.json) {
    console.error("usage: failover-timeline.ts --cluster <kept cluster directory> --json <failover.ts --json file>");
    process.exit(2);
  }
  const events = readEvents(values.cluster);
  const summaries = (JSON.parse(readFileSync(values.json, "utf8")) as { summaries: RunSummary[] }).summaries;
  for (const s of summaries) {
    if (!s.killedAtEpochMs) {
      console.error(`${values.json}: no killedAtEpochMs (a run from before the field existed)`);
      process.exit(2);
    }
    console.log(`${s.fault}: ms after the signal`);
    s.killedAtEpochMs.forEach((killedAt, k) => {
      const round = events.filter((e) => e.atMs >= killedAt && e.atMs < killedAt + ROUND_WINDOW_MS);
      const at = (e: LogEvent) => `${e.atMs - killedAt} ${e.node}`;
      const notices = round.filter((e) => e.msg === "the leader's connection ended").map(at);
      const pre = round.filter((e) => e.role === "pre-candidate").map(at);
      const candidates = round.filter((e) => e.role === "candidate");
      const leader = round.find((e) => e.role === "leader");
      const terms = candidates.map((e) => e.term);
      const split = terms.length !== new Set(terms).size;
      console.log(
        `round ${k + 1}: acked ${s.failoverMs[k]} | notices ${notices.join(", ")} | pre-candidate ${pre.join(", ")} | candidate ${candidates.map((e) => `${at(e)} t${e.term}`).join(", ")} | leader ${leader ? at(leader) : "-"}${split ? " | SPLIT VOTE" : ""}`,
      );
    });
  }
}

main();
