/**
 * What the SDK's keepalive pings cost a node: N clients, each with its own connection and one open
 * watch (an open call, so grpc-js pings while it lasts), on one follower of a 3-node cluster, held
 * quiet for S seconds; the follower's CPU over that window with pings every K ms against none,
 * alternating, R rounds. Watches are the worst case: a unary call is open only while it runs.
 *
 *   npx tsx test/bench/client/keepalive-cost.ts [--clients 1000] [--seconds 20] [--rounds 2]
 *     [--keepalive-ms 2000] [--json out.json]
 */
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { RaftmeshClient } from "../../../src/client/index.js";
import { BenchCluster } from "../registry/cluster.js";
import { CpuMeter, machineInfo } from "../registry/procs.js";

/** CLIENTS_MAX: the node's own bound is 10,000 client connections; stay well inside it. */
const CLIENTS_MAX = 5_000;
/** READY_MS_MAX bounds the wait for every watch to be open. */
const READY_MS_MAX = 60_000;

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "1000" },
    seconds: { type: "string", default: "20" },
    rounds: { type: "string", default: "2" },
    "keepalive-ms": { type: "string", default: "2000" },
    json: { type: "string" },
  },
  strict: true,
});

function intIn(name: string, raw: string | undefined, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`--${name}: an integer in [${min}, ${max}], got "${raw}"`);
  return n;
}

const clientsCount = intIn("clients", values.clients, 1, CLIENTS_MAX);
const holdMs = intIn("seconds", values.seconds, 1, 600) * 1000;
const rounds = intIn("rounds", values.rounds, 1, 20);
const keepaliveMs = intIn("keepalive-ms", values["keepalive-ms"], 500, 60_000);

interface Row {
  readonly round: number;
  readonly keepaliveMs: number;
  readonly nodeCpuPercent: number;
  readonly pingsPerSecond: number;
}

const machine = machineInfo();
console.log(`${machine.cpu}, ${machine.cores} cores, node ${machine.node}, load average ${machine.loadavgAtStart.join(" ")}`);
// All clients come from this one process: the per-client watch rate limit would refuse most of them.
const cluster = await BenchCluster.start({ RAFTMESH_CLIENT_WATCH_RATE: "0" });
const rows: Row[] = [];
try {
  const leader = await cluster.leader();
  const target = cluster.ids.find((id) => id !== leader) as string;
  const pid = cluster.pids.get(target) as number;
  const fromIndex = (await cluster.pc.client(leader).put("keepalive-bench/start", "x")).index;
  for (let round = 1; round <= rounds; round++) {
    for (const k of [0, keepaliveMs]) {
      const clients = Array.from({ length: clientsCount }, () => new RaftmeshClient([cluster.pc.api(target)], { keepaliveMs: k }));
      let ready = 0;
      let ended = 0;
      const watches = clients.map((c, i) => {
        let seen = false;
        return c.watch(
          { fromIndex, keyPrefix: `keepalive-bench/w${i}/` },
          {
            onMessage: () => {
              if (!seen) ready++;
              seen = true;
            },
            onEnd: () => void ended++,
          },
        );
      });
      // A watch sends its first message (the header) once it is open; wait for all before measuring.
      const until = Date.now() + READY_MS_MAX;
      while (ready < clientsCount && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      if (ready < clientsCount) throw new Error(`only ${ready} of ${clientsCount} watches opened within ${READY_MS_MAX} ms`);
      const meter = new CpuMeter([pid]);
      await new Promise((r) => setTimeout(r, holdMs));
      const cpu = meter.read().percentByPid.get(pid) ?? 0;
      if (ended > 0) throw new Error(`${ended} watches ended during the window`);
      const row = { round, keepaliveMs: k, nodeCpuPercent: cpu, pingsPerSecond: k === 0 ? 0 : (clientsCount * 1000) / k };
      rows.push(row);
      console.log(`round ${round}, keepalive ${k === 0 ? "off" : `${k} ms`}: ${clientsCount} open watches, the follower used ${cpu.toFixed(2)} % of a core (~${row.pingsPerSecond.toFixed(0)} pings/s); load average ${loadavg()[0]?.toFixed(2)}`);
      for (const w of watches) w.cancel();
      for (const c of clients) c.close();
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
} finally {
  await cluster.stop();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const off = median(rows.filter((r) => r.keepaliveMs === 0).map((r) => r.nodeCpuPercent));
const on = median(rows.filter((r) => r.keepaliveMs !== 0).map((r) => r.nodeCpuPercent));
const perPingUs = ((on - off) / 100 / ((clientsCount * 1000) / keepaliveMs)) * 1e6;
console.log(`median: off ${off.toFixed(2)} %, every ${keepaliveMs} ms ${on.toFixed(2)} % of a core: ${perPingUs.toFixed(1)} µs of the node's CPU per ping`);
if (values.json) writeFileSync(values.json, JSON.stringify({ machine: { ...machine, loadavgAtEnd: loadavg() }, clients: clientsCount, keepaliveMs, rows, medianOffPercent: off, medianOnPercent: on, perPingUs }, null, 2));
