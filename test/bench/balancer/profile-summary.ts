/**
 * Summarises a V8 .cpuprofile (node --cpu-prof) as a table of the frames with the most self time,
 * aggregated by function and place: the hot-path table of bench:balancer's profile runs. Shares
 * are of the busy time (idle left out); given the number of requests the profile served, each
 * frame's time per request too.
 *   tsx test/bench/balancer/profile-summary.ts <file.cpuprofile> [top=30] [requests]
 */
import { readFileSync } from "node:fs";

interface Node {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}
interface Profile {
  readonly nodes: Node[];
  readonly samples: number[];
  readonly timeDeltas: number[];
}

const [file, topArg, requestsArg] = process.argv.slice(2);
const requests = requestsArg === undefined ? 0 : Number(requestsArg);
if (!file) {
  process.stderr.write("usage: profile-summary <file.cpuprofile> [top]\n");
  process.exit(2);
}
const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
let total = 0;
for (let i = 0; i < p.samples.length; i++) {
  const n = byId.get(p.samples[i]!)!;
  const dt = p.timeDeltas[i] ?? 0;
  total += dt;
  const f = n.callFrame;
  const where = f.url === "" ? "" : ` ${f.url.replace(/^.*\/(src|node_modules)\//, "$1/").replace(/^node:/, "node:")}:${f.lineNumber + 1}`;
  const key = `${f.functionName || "(anonymous)"}${where}`;
  self.set(key, (self.get(key) ?? 0) + dt);
}
const idle = self.get("(idle)") ?? 0;
self.delete("(idle)");
const busy = total - idle;
const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 30));
const perReq = (us: number) => (requests > 0 ? (us / requests).toFixed(2) : "-");
process.stdout.write(`total ${(total / 1e3).toFixed(0)} ms sampled, busy ${(busy / 1e3).toFixed(0)} ms${requests > 0 ? `, ${perReq(busy)} us per request` : ""}\n`);
process.stdout.write(`${"BUSY %".padStart(7)}  ${"SELF MS".padStart(8)}  ${"US/REQ".padStart(7)}  FRAME\n`);
for (const [k, us] of top) process.stdout.write(`${((us / busy) * 100).toFixed(1).padStart(7)}  ${(us / 1e3).toFixed(0).padStart(8)}  ${perReq(us).padStart(7)}  ${k}\n`);
