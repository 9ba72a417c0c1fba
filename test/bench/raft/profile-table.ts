/**
 * Tables of a V8 .cpuprofile by self time: top frames and areas (grpc-js, node:http2, src/registry,
 * the garbage collector…), over a time window. Used by profile.ts; run alone on any profile file:
 *
 *   npx tsx test/bench/raft/profile-table.ts <file.cpuprofile> [--top 30]
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { formatTable } from "./stats.js";

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
export interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** frameLabel names a frame by function, file (shortened) and line. */
function frameLabel(f: ProfileNode["callFrame"]): string {
  const url = f.url
    .replace(/^file:\/\//, "")
    .replace(/.*\/node_modules\//, "")
    .replace(/.*\/(src|test)\//, "$1/");
  const name = f.functionName || "(anonymous)";
  return url ? `${name} ${url}:${f.lineNumber + 1}` : name;
}

/** area groups a frame into the part of the stack it belongs to. */
function area(f: ProfileNode["callFrame"]): string {
  const u = f.url;
  if (!u) return f.functionName.startsWith("(") ? f.functionName : "(native)";
  if (u.includes("@grpc")) return "grpc-js";
  if (u.includes("node_modules/")) return u.replace(/.*node_modules\/((@[^/]+\/)?[^/]+).*/, "$1");
  if (u.startsWith("node:")) return u.replace(/^node:(internal\/)?([^/]+).*/, "node:$2");
  const m = u.match(/\/src\/([^/]+)\//);
  return m ? `src/${m[1]}` : "other";
}

/** selfTimes sums each node's self time (µs) over samples whose time falls in [fromUs, toUs]. */
function selfTimes(p: Profile, fromUs: number, toUs: number): { byNode: Map<number, number>; totalUs: number } {
  const byNode = new Map<number, number>();
  let t = p.startTime;
  let totalUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t < fromUs || t > toUs) continue;
    // A sample's weight is the time to the next sample (the last one gets the mean interval).
    const next = p.timeDeltas[i + 1] ?? dt;
    const id = p.samples[i] as number;
    byNode.set(id, (byNode.get(id) ?? 0) + next);
    totalUs += next;
  }
  return { byNode, totalUs };
}

/** profileTable gives the top frames and the areas by self time over samples in [fromUs, toUs] (V8 profile clock). */
export function profileTable(p: Profile, fromUs: number, toUs: number, top: number): string {
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const { byNode, totalUs } = selfTimes(p, fromUs, toUs);
  const byFrame = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const [id, us] of byNode) {
    const f = (nodes.get(id) as ProfileNode).callFrame;
    const label = frameLabel(f);
    byFrame.set(label, (byFrame.get(label) ?? 0) + us);
    byArea.set(area(f), (byArea.get(area(f)) ?? 0) + us);
  }
  const idle = byFrame.get("(idle)") ?? 0;
  const busy = totalUs - idle;
  const pct = (us: number) => Math.round((1000 * us) / totalUs) / 10;
  const busyPct = (us: number) => Math.round((1000 * us) / Math.max(1, busy)) / 10;
  const frames = [...byFrame].sort((a, b) => b[1] - a[1]).slice(0, top);
  const areas = [...byArea].sort((a, b) => b[1] - a[1]);
  return [
    `window ${(totalUs / 1e6).toFixed(2)} s, busy ${(busy / 1e6).toFixed(2)} s (${pct(busy)} %)`,
    formatTable(
      ["self % of window", "% of busy", "frame"],
      frames.map(([label, us]) => [pct(us), label === "(idle)" ? "-" : busyPct(us), label]),
    ),
    "",
    formatTable(
      ["self % of window", "% of busy", "area"],
      areas.map(([a, us]) => [pct(us), a === "(idle)" ? "-" : busyPct(us), a]),
    ),
  ].join("\n");
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, "/"))) {
  const { values, positionals } = parseArgs({ options: { top: { type: "string", default: "30" } }, allowPositionals: true, strict: true });
  const file = positionals[0];
  if (!file) throw new Error("usage: profile-table.ts <file.cpuprofile> [--top 30]");
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  console.log(profileTable(p, p.startTime, p.endTime, Number(values.top)));
}
