/**
 * npm run test:balancer-isolation: proxy load must not delay Raft. A real 3-node cluster; wrk
 * saturates the leader's balancing endpoint (three backends in their own process) for --seconds
 * while a writer puts through the same node. Passes when the term did not move (no election) and
 * the writes' p99 under load is within 2x of the same writer with the endpoint idle.
 *
 *   npm run test:balancer-isolation -- [--seconds 30] [--connections 64] [--json out.json]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { freePorts, ProcessCluster } from "../../integration/harness/process-cluster.js";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "30" }, connections: { type: "string", default: "64" }, json: { type: "string" } } });
const SECONDS = Number(values.seconds);
/** WRITES_MAX bounds the writer's loop per phase. */
const WRITES_MAX = 100_000;

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] ?? Number.NaN;
}

async function writer(put: (k: string) => Promise<unknown>, ms: number, tag: string): Promise<number[]> {
  const lat: number[] = [];
  const end = Date.now() + ms;
  for (let i = 0; i < WRITES_MAX && Date.now() < end; i++) {
    const t = performance.now();
    await put(`iso/${tag}/${i}`);
    lat.push(performance.now() - t);
  }
  return lat;
}

async function main(): Promise<number> {
  const ports = await freePorts(3);
  const backends: ChildProcess = spawn(process.execPath, ["--import", "tsx", resolve(import.meta.dirname, "backends.ts"), ...ports.map(String)], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((ok) => {
    let n = 0;
    createInterface({ input: backends.stdout! }).on("line", () => ++n === 3 && ok());
  });
  const c = await ProcessCluster.create({ size: 3 });
  try {
    c.startAll();
    const leader = await c.waitForLeader();
    const client = c.client(leader);
    for (const [i, port] of ports.entries()) await client.register({ service: "hello", id: `h${i}`, address: "127.0.0.1", port, ttlMs: 60_000 });
    const put = (k: string) => client.put(k, "v");
    await writer(put, 2_000, "warm");
    const term0 = (await client.status()).term;
    const idle = await writer(put, SECONDS * 1000, "idle");
    const url = `http://127.0.0.1:${c.specs.get(leader)!.balancerPort}/svc/hello/`;
    const wrk = spawn("wrk", ["-t1", `-c${values.connections}`, `-d${SECONDS}s`, url], { stdio: ["ignore", "pipe", "inherit"] });
    let wrkOut = "";
    wrk.stdout?.on("data", (d) => (wrkOut += d));
    const loaded = await writer(put, (SECONDS - 1) * 1000, "loaded");
    await new Promise((r) => wrk.once("exit", r));
    const st = await client.status();
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(wrkOut)?.[1]);
    const report = {
      seconds: SECONDS,
      endpointRps: rps,
      idle: { writes: idle.length, p99Ms: p99(idle) },
      loaded: { writes: loaded.length, p99Ms: p99(loaded) },
      termBefore: term0,
      termAfter: st.term,
      leaderBefore: leader,
      leaderAfter: st.leader,
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
    const ok = st.term === term0 && st.leader === leader && report.loaded.p99Ms <= 2 * report.idle.p99Ms && rps > 0;
    process.stdout.write(ok ? "PASS: no election, write p99 under endpoint load within 2x idle\n" : "FAIL\n");
    return ok ? 0 : 1;
  } finally {
    await c.cleanup();
    backends.kill("SIGTERM");
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  },
);
