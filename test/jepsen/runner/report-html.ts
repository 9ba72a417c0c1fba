/**
 * report.html: one self-contained page (inline SVG, no scripts) with the fault timeline drawn
 * over throughput and latency, the election markers, the verdicts, and each anomaly with its
 * minimal example. Pure: it renders from results.json and the history.
 */
import type { HistoryEntry, OpRecord } from "./history.js";
import type { RunResults } from "./results.js";
import { throughput } from "./stats.js";

/** POINTS_MAX bounds the latency dots drawn, so a long run's page stays light. */
const POINTS_MAX = 6_000;
const WIDTH = 1_100;
const LEFT = 60;
const PLOT = WIDTH - LEFT - 20;
const STATUS_COLOR = { ok: "#2a9d4b", fail: "#e0a100", info: "#d63a3a" } as const;
const FAULT_COLOR: Record<string, string> = { partition: "#9ec5fe", kill: "#f4a6a6", pause: "#d7c2f7" };

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

function timeline(res: RunResults, ops: readonly OpRecord[], endAt: number): string {
  const x = (t: number) => LEFT + (Math.max(0, Math.min(t, endAt)) / endAt) * PLOT;
  const bucketMs = Math.max(250, Math.round(endAt / 200));
  const buckets = throughput(ops, endAt, bucketMs);
  const maxCount = Math.max(1, ...buckets.map((b) => b.ok + b.fail + b.info));
  const thrTop = 30;
  const thrH = 140;
  const latTop = thrTop + thrH + 30;
  const latH = 220;
  const height = latTop + latH + 40;
  const parts: string[] = [];
  // Fault bands span both plots.
  res.faults.forEach((f, i) => {
    const fam = f.f.split(":")[0] ?? "";
    parts.push(
      `<rect x="${x(f.from).toFixed(1)}" y="${thrTop}" width="${Math.max(1, x(f.to) - x(f.from)).toFixed(1)}" height="${latTop + latH - thrTop}" fill="${FAULT_COLOR[fam] ?? "#ddd"}" opacity="0.45"><title>${esc(`${f.f} ${JSON.stringify(f.value)} ${Math.round(f.from)}–${Math.round(f.to)} ms`)}</title></rect>`,
      `<text x="${(x(f.from) + 2).toFixed(1)}" y="${thrTop - 4 - (i % 2) * 11}" font-size="10">${esc(f.f)}</text>`,
    );
  });
  for (const p of res.phases) parts.push(`<line x1="${x(p.time)}" x2="${x(p.time)}" y1="${thrTop}" y2="${latTop + latH}" stroke="#555" stroke-dasharray="3,3"/><text x="${x(p.time) + 2}" y="${height - 22}" font-size="10">${esc(p.name)}</text>`);
  for (const c of res.termChanges) parts.push(`<circle cx="${x(c.time)}" cy="${thrTop + 6}" r="4" fill="#000"><title>term ${c.term}, leader ${esc(c.leader)}</title></circle>`);
  // Throughput: stacked bars per bucket.
  const bw = Math.max(1, (bucketMs / endAt) * PLOT - 0.5);
  for (const b of buckets) {
    let y = thrTop + thrH;
    for (const s of ["ok", "fail", "info"] as const) {
      const h = (b[s] / maxCount) * thrH;
      if (h <= 0) continue;
      y -= h;
      parts.push(`<rect x="${x(b.t).toFixed(1)}" y="${y.toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${STATUS_COLOR[s]}"/>`);
    }
  }
  parts.push(`<text x="4" y="${thrTop + 12}" font-size="11">ops/${bucketMs}ms</text><text x="4" y="${thrTop + 26}" font-size="10">max ${maxCount}</text>`);
  // Latency: log scale from 1 ms to the largest, one dot per op (sampled), coloured by outcome.
  const lats = ops.map((o) => (Number.isFinite(o.return) ? o.return - o.call : 0));
  const maxLat = Math.max(10, ...lats);
  const ly = (ms: number) => latTop + latH - (Math.log10(Math.max(1, ms)) / Math.log10(maxLat)) * latH;
  const stride = Math.max(1, Math.ceil(ops.length / POINTS_MAX));
  for (let i = 0; i < ops.length; i += stride) {
    const o = ops[i] as OpRecord;
    if (!Number.isFinite(o.return)) continue;
    parts.push(`<circle cx="${x(o.call).toFixed(1)}" cy="${ly(o.return - o.call).toFixed(1)}" r="1.6" fill="${STATUS_COLOR[o.status]}"/>`);
  }
  for (const ms of [1, 10, 100, 1_000, 10_000].filter((v) => v <= maxLat)) {
    parts.push(`<line x1="${LEFT}" x2="${LEFT + PLOT}" y1="${ly(ms)}" y2="${ly(ms)}" stroke="#ccc"/><text x="4" y="${ly(ms) + 4}" font-size="10">${ms} ms</text>`);
  }
  for (let t = 0; t <= endAt; t += 10_000) parts.push(`<text x="${x(t)}" y="${height - 6}" font-size="10">${t / 1000}s</text>`);
  const frame = `<rect x="${LEFT}" y="${thrTop}" width="${PLOT}" height="${thrH}" fill="none" stroke="#999"/><rect x="${LEFT}" y="${latTop}" width="${PLOT}" height="${latH}" fill="none" stroke="#999"/>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif">${frame}${parts.join("")}</svg>`;
}

function verdictRows(res: RunResults): string {
  return res.verdicts
    .map((v) => {
      const cls = v.valid === true ? "ok" : v.valid === false ? "bad" : "unk";
      const anomalies = v.anomalies
        .map((a) => `<li><b>${esc(a.kind)}</b>: <pre>${esc(a.message)}</pre><pre>${esc(a.example.map((e) => JSON.stringify(e)).join("\n"))}</pre></li>`)
        .join("");
      return `<tr class="${cls}"><td>${esc(v.name)}</td><td>${v.valid === true ? "valid" : v.valid === false ? "INVALID" : "unknown"}</td><td>${esc(v.summary)}${anomalies ? `<ul>${anomalies}</ul>` : ""}</td></tr>`;
    })
    .join("");
}

/** renderReport renders report.html. */
export function renderReport(res: RunResults, entries: readonly HistoryEntry[]): string {
  const ops = entries.filter((e): e is OpRecord => e.type === "op");
  const endAt = Math.max(1_000, res.durationMs);
  const opRows = Object.entries(res.ops)
    .map(([f, c]) => `<tr><td>${esc(f)}</td><td>${c.ok}</td><td>${c.fail}</td><td>${c.info}</td><td>${res.latency[f]?.p50Ms ?? ""}</td><td>${res.latency[f]?.p99Ms ?? ""}</td></tr>`)
    .join("");
  const facts = [
    ["seed", String(res.seed)],
    ["workload", res.workload],
    ["cluster", res.cluster],
    ["duration", `${(res.durationMs / 1000).toFixed(1)} s`],
    ["elections seen", `${res.elections} (terms elapsed ${res.termsElapsed})`],
    ["heal → first acknowledged write", res.healToFirstWriteMs === undefined ? "none" : `${res.healToFirstWriteMs} ms`],
    ["longest unavailable window", `${res.longestUnavailable.ms} ms (${res.longestUnavailable.from}–${res.longestUnavailable.to} ms)`],
    ...res.notes.map((n) => ["note", n]),
  ]
    .map(([k, v]) => `<tr><th>${esc(k ?? "")}</th><td>${esc(v ?? "")}</td></tr>`)
    .join("");
  const overall = res.valid === true ? "VALID" : res.valid === false ? "INVALID" : "UNKNOWN";
  return `<!doctype html><html><head><meta charset="utf-8"><title>raftmesh jepsen ${esc(res.workload)} seed ${res.seed}: ${overall}</title>
<style>body{font-family:sans-serif;margin:20px}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}tr.ok td:nth-child(2){color:#2a9d4b}tr.bad td:nth-child(2){color:#d63a3a;font-weight:bold}tr.unk td:nth-child(2){color:#b07d00}pre{margin:2px 0;font-size:12px;white-space:pre-wrap}</style></head><body>
<h1>${esc(res.workload)} — seed ${res.seed} — ${overall}</h1>
<table>${facts}</table>
<h2>Timeline</h2><p>Bands are faults (blue partition, red kill, purple pause); dashed lines are schedule phases; black dots are term rises. Top: completions per bucket (green ok, amber fail, red info). Bottom: latency of each operation by invocation time (log scale).</p>
${timeline(res, ops, endAt)}
<h2>Verdicts</h2><table><tr><th>checker</th><th>verdict</th><th>summary and anomalies</th></tr>${verdictRows(res)}</table>
<h2>Operations</h2><table><tr><th>f</th><th>ok</th><th>fail</th><th>info</th><th>p50 ms</th><th>p99 ms</th></tr>${opRows}</table>
</body></html>
`;
}
