/**
 * How long a SIGKILLed process's TCP connections stay open, by the memory it held. A crashed
 * leader is noticed first through its peer connections closing (a follower then pre-votes at once,
 * RaftNode.peerDisconnected); the kernel closes a dying process's sockets only after it has freed
 * its memory, so that moment moves with the process's size. Each round spawns a Node process that
 * fills its heap with small objects up to about the given size, connects to this process over
 * loopback, and is SIGKILLed; the figure is the time from the signal to the connection's close.
 *
 *   npx tsx test/bench/raft/kill-teardown.ts [--sizes 0,200,800] [--rounds 5] [--json out.json]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { parseArgs } from "node:util";
import { machineInfo, rssBytesOf } from "../registry/procs.js";
import { median } from "./stats.js";
import { trackChild } from "./reaper.js";

/** SIZE_MIB_MAX bounds one child's heap (the machine has room for a few GiB). */
const SIZE_MIB_MAX = 4_096;
/** ROUNDS_MAX bounds the repeats per size. */
const ROUNDS_MAX = 50;
/** FILL_TIMEOUT_MS bounds the wait for a child to fill its heap and connect. */
const FILL_TIMEOUT_MS = 120_000;
/** SETTLE_MS lets the child's allocation finish paging in before the signal. */
const SETTLE_MS = 500;

/** CHILD fills about `mib` MiB with small objects (~250 bytes each, as a registry's records), connects, and waits. */
const CHILD = `
const net = require("node:net");
const [mib, port] = process.argv.slice(1).map(Number);
const keep = [];
for (let i = 0; i < mib * 4096; i++) keep.push({ id: "instance-" + i + "-".repeat(40), n: i, pair: [i, i + 1] });
const s = net.connect(port, "127.0.0.1", () => s.write("ready"));
setInterval(() => keep.length, 60000);
`;

const { values } = parseArgs({
  options: { sizes: { type: "string", default: "0,200,800" }, rounds: { type: "string", default: "5" }, json: { type: "string" } },
  strict: true,
});
const sizes = (values.sizes as string).split(",").map(Number);
const rounds = Number(values.rounds);
for (const s of sizes) if (!Number.isInteger(s) || s < 0 || s > SIZE_MIB_MAX) throw new RangeError(`--sizes: whole MiB in [0, ${SIZE_MIB_MAX}], got ${s}`);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > ROUNDS_MAX) throw new RangeError(`--rounds: 1 to ${ROUNDS_MAX}, got ${values.rounds}`);

/** oneKill spawns a child of `mib`, SIGKILLs it once connected, and answers its RSS and the close delay. */
async function oneKill(mib: number): Promise<{ rssMiB: number; closeMs: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  let child: ChildProcess | undefined;
  try {
    const connected = new Promise<Socket>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child of ${mib} MiB did not connect within ${FILL_TIMEOUT_MS} ms`)), FILL_TIMEOUT_MS);
      server.once("connection", (sock) =>
        sock.once("data", () => {
          clearTimeout(timer);
          resolve(sock);
        }),
      );
    });
    child = spawn(process.execPath, ["--max-old-space-size=8192", "-e", CHILD, String(mib), String(port)], { stdio: "ignore" });
    trackChild(child);
    const sock = await connected;
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const rssMiB = Math.round(rssBytesOf(child.pid as number) / 1_048_576);
    sock.on("error", () => {});
    const closed = new Promise<number>((resolve) => sock.once("close", () => resolve(performance.now())));
    const t0 = performance.now();
    child.kill("SIGKILL");
    return { rssMiB, closeMs: (await closed) - t0 };
  } finally {
    child?.kill("SIGKILL");
    server.close();
  }
}

const results: { sizeMiB: number; rssMiB: number; closeMsMedian: number; closeMsMax: number; closeMs: number[] }[] = [];
const machine = machineInfo();
console.log(`${machine.cpu}, ${machine.cores} cores, node ${machine.node}, load ${machine.loadavgAtStart.join(" ")}\nSIGKILL → peer connection closed, ${rounds} rounds per size`);
for (const mib of sizes) {
  const runs = [];
  for (let r = 0; r < rounds; r++) runs.push(await oneKill(mib));
  const closeMs = runs.map((x) => Math.round(x.closeMs * 10) / 10);
  const row = { sizeMiB: mib, rssMiB: median(runs.map((x) => x.rssMiB)), closeMsMedian: median(closeMs), closeMsMax: Math.max(...closeMs), closeMs };
  results.push(row);
  console.log(`heap ~${mib} MiB (RSS ${row.rssMiB} MiB): close after median ${row.closeMsMedian} ms, max ${row.closeMsMax} ms`);
}
const out = { machine, rounds, results };
console.log(JSON.stringify(out));
if (values.json) writeFileSync(values.json, `${JSON.stringify(out, null, 2)}\n`);
