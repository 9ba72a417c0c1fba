/**
 * The watch hub's own cost of fan-out, in one process with no I/O: W watchers each on a key prefix
 * of their own (as in watch-fanout.ts), then C changes published B per index, each change for a
 * different watcher; sinks take every batch at once. Reports the CPU time of publish() per index
 * and in total: what the node's event loop spends on fan-out before any byte is encoded or sent.
 *
 *   npx tsx test/bench/registry/watch-hub-publish.ts [--watchers 10000] [--changes 100000] [--batch 10] [--hub path/to/watch-hub.ts]
 *
 * --hub measures another build of the hub (for example an older checkout's), for a before/after.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { RegistryEvent } from "../../../src/registry/types.js";
import type { HistorySource } from "../../../src/registry/watch-hub.js";

const { values } = parseArgs({
  options: {
    watchers: { type: "string", default: "10000" },
    changes: { type: "string", default: "100000" },
    batch: { type: "string", default: "10" },
    hub: { type: "string", default: "src/registry/watch-hub.ts" },
  },
  strict: true,
});
const W = Number(values.watchers);
const C = Number(values.changes);
const B = Number(values.batch);
/** LIMIT bounds the arguments, so the run stays seconds long. */
const LIMIT = 1_000_000;
for (const [name, n] of [["watchers", W], ["changes", C], ["batch", B]] as const) {
  if (!Number.isInteger(n) || n < 1 || n > LIMIT) throw new RangeError(`--${name}: an integer in [1, ${LIMIT}], got ${n}`);
}
const { WatchHub } = (await import(pathToFileURL(resolve(values.hub)).href)) as typeof import("../../../src/registry/watch-hub.js");

/** History keeps only what the hub asks of it here: the applied index (watchers start live, at it). */
const history: HistorySource & { applied: number } = { applied: 0, eventsSince: () => ({ events: [] }) };
const hub = new WatchHub(history, { watchersMax: W });
let delivered = 0;
for (let w = 0; w < W; w++) {
  hub.watch({ fromIndex: 0, keyPrefix: `fan/w${w}/` }, { events: (batch, _through, done) => { delivered += batch.length; done(); }, end: () => undefined });
}
const perIndexMs: number[] = [];
const cpu0 = process.cpuUsage();
for (let c = 0; c < C; c += B) {
  const index = ++history.applied;
  const events: RegistryEvent[] = [];
  for (let k = c; k < Math.min(C, c + B); k++) {
    events.push({ kind: "kv", type: "put", index, entry: { key: `fan/w${k % W}/k`, value: "x", createIndex: index, modIndex: index, version: 1 } } as RegistryEvent);
  }
  const t0 = performance.now();
  hub.publish(events);
  perIndexMs.push(performance.now() - t0);
}
const cpu = process.cpuUsage(cpu0);
perIndexMs.sort((a, b) => a - b);
const at = (p: number) => perIndexMs[Math.min(perIndexMs.length - 1, Math.floor(p * perIndexMs.length))] ?? Number.NaN;
console.log(
  JSON.stringify({
    hub: values.hub,
    watchers: W,
    changes: C,
    batch: B,
    delivered,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    publishMsP50: at(0.5),
    publishMsP99: at(0.99),
    publishMsMax: perIndexMs.at(-1),
  }),
);
