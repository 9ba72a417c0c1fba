/**
 * The benchmark's tables: one per phase, printed as soon as the phase ends.
 */
import { type Cell, formatTable } from "../raft/stats.js";
import type { HeartbeatReport } from "./phase-heartbeat.js";
import type { MemoryReport } from "./phase-memory.js";
import type { RegisterReport } from "./phase-register.js";
import type { SnapshotReport } from "./phase-snapshot.js";
import type { WatchReport } from "./phase-watch.js";

type Log = (line: string) => void;

/** fmt rounds for reading: whole numbers from 100 up, two decimals below. */
function fmt(x: number | undefined): Cell {
  if (x === undefined || Number.isNaN(x)) return Number.NaN;
  return Math.abs(x) >= 100 ? Math.round(x) : Math.round(x * 100) / 100;
}

const mib = (bytes: number) => fmt(bytes / 2 ** 20);

export function printRegister(r: RegisterReport, repeats: number, log: Log): void {
  const rows = r.rows.map((x) => [x.concurrency, fmt(x.registersPerSec), fmt(x.registerP50Ms), fmt(x.registerP99Ms), fmt(x.putsPerSec), fmt(x.putP50Ms), fmt(x.putP99Ms), fmt(x.ratio), x.errors]);
  log(`\nregistrations through the leader (${r.leader}) vs KV puts of the same entry size (${r.registerEntryBytes} B entry, ${r.kvValueBytes} B value), median of ${repeats}`);
  log(formatTable(["conc", "registers/s", "p50 ms", "p99 ms", "kv puts/s", "p50 ms", "p99 ms", "reg/kv", "errors"], rows));
  log("");
}

export function printHeartbeat(h: HeartbeatReport, log: Log): void {
  log(`\nheartbeats: ${h.registered} instances, TTL ${h.ttlMs} ms, every TTL/3 through all nodes; window ${h.windowSeconds.toFixed(1)} s (registering took ${h.registerSeconds.toFixed(1)} s)`);
  log(
    formatTable(
      ["offered/s", "achieved/s", "ok", "errors", "skipped", "p50 ms", "p99 ms", "max ms", "commit growth", "critical after"],
      [[fmt(h.offeredPerSec), fmt(h.achievedPerSec), h.ok, h.errors, h.skipped, fmt(h.p50Ms), fmt(h.p99Ms), fmt(h.maxMs), h.commitGrowth, h.healthAfter.critical]],
    ),
  );
  if (h.firstError) log(`first error: ${h.firstError}`);
  const rows = Object.entries(h.byNode).map(([id, n]) => [id, n.role, n.ok, fmt(n.p50Ms), fmt(n.p99Ms), fmt(h.cpuPercent[id])]);
  rows.push(["client", "bench process", "", "", "", fmt(h.cpuPercent.client)]);
  log(`\n${formatTable(["node", "role", "ok", "p50 ms", "p99 ms", "cpu % of a core"], rows)}`);
  log(`leader commit index ${h.leaderCommitBefore} -> ${h.leaderCommitAfter} over the window (term ${h.termBefore} -> ${h.termAfter}, leader after: ${h.leaderAfter}); after: ${h.healthAfter.passing} passing, ${h.healthAfter.warning} warning, ${h.healthAfter.critical} critical`);
  const e = h.eventsInWindow;
  const wu = h.eventsInWarmup;
  log(`instance events in the window: ${e.critical} to critical, ${e.passing} to passing, ${e.warning} to warning, ${e.other} other (in the warm-up: ${wu.critical} / ${wu.passing} / ${wu.warning} / ${wu.other})`);
  const d = h.clientLoopDelayMs;
  log(`client event-loop delay: p50 ${fmt(d.p50)} ms, p99 ${fmt(d.p99)} ms, max ${fmt(d.max)} ms`);
  log(`per second ok: ${h.perSecond.ok.join(" ")}`);
  log(`per second failed or skipped: ${h.perSecond.failed.join(" ")}`);
  log(`failed status reads of the leader (retried): ${h.statusFailures.length}${h.statusFailures[0] ? ` (${h.statusFailures[0]})` : ""}\n`);
}

export function printMemory(m: MemoryReport, log: Log): void {
  log(
    `\nmemory: ${m.registered}/${m.instances} instances registered by ${m.sessions} sessions in ${m.registerSeconds.toFixed(1)} s (${fmt(m.registersPerSec)}/s)${m.errors ? `, ${m.errors} errors (${m.firstError})` : ""}, then ${m.keysWritten} KV keys`,
  );
  const rows = Object.entries(m.nodes).map(([id, n]) => [id, n.role, mib(n.rssBeforeBytes), mib(n.rssAfterBytes), mib(n.rssAtRestBytes), mib(n.rssAfterBytes - n.rssBeforeBytes), fmt(n.bytesPerInstance)]);
  log(formatTable(["node", "role", "RSS before MiB", "RSS after MiB", "RSS at rest MiB", "growth MiB", "bytes/instance"], rows));
  const t = m.totals;
  log(`registry (ListServices): ${t.services} services, ${t.instances} instances (${t.passing} passing, ${t.warning} warning, ${t.critical} critical) at index ${t.index}; leader commit ${m.leaderStatus.commit}, snapshot index ${m.leaderStatus.snapshotIndex}`);
  if (m.learner && "catchUpMs" in m.learner) {
    log(`learner catch-up: applied index ${m.learner.targetIndex} ${fmt(m.learner.catchUpMs)} ms after being added (its snapshot index ${m.learner.snapshotIndex}, RSS ${mib(m.learner.rssBytes)} MiB)`);
  } else if (m.learner) log(`learner catch-up failed: ${m.learner.error}`);
  log("");
}

export function printSnapshot(s: SnapshotReport, log: Log): void {
  log(`\nsnapshot / restore of ${s.instances} instances (${s.stats.services} services, ${s.stats.sessions} sessions, ${s.stats.historyEvents} history events), median of ${s.runs}`);
  log(
    formatTable(
      ["machine", "bytes", "MiB", "snapshot ms", "restore ms"],
      [
        ["RegistryStateMachine", s.snapshotBytes, mib(s.snapshotBytes), fmt(s.snapshotMs), fmt(s.restoreMs)],
        ["ClusterStateMachine (node)", s.clusterSnapshotBytes, mib(s.clusterSnapshotBytes), fmt(s.clusterSnapshotMs), fmt(s.clusterRestoreMs)],
      ],
    ),
  );
  log(`build (apply ${s.instances} registrations through the codec): ${fmt(s.buildMs)} ms; heap ${fmt(s.heapBytesPerInstance)} bytes/instance\n`);
}

export function printWatch(w: WatchReport, log: Log): void {
  log(`\nwatch fan-out: ${w.watchers} watchers over ${w.channels} channels, ${w.writesWithEvent}/${w.writes} writes with an event through the leader (${w.leader})`);
  const lat = (name: string, l: WatchReport["fromSend"]) => [name, l.count, fmt(l.p50Ms), fmt(l.p99Ms), fmt(l.maxMs)];
  log(formatTable(["latency", "count", "p50 ms", "p99 ms", "max ms"], [lat("write sent -> watcher", w.fromSend), lat("write acked -> watcher", w.fromAck), lat("write sent -> acked", w.writeAckMs)]));
  const rows = Object.entries(w.byNode).map(([id, n]) => [id, n.role, n.watchers, n.count, fmt(n.p50Ms), fmt(n.p99Ms), fmt(n.maxMs), fmt(w.cpuPercent[id])]);
  rows.push(["client", "bench process", "", "", "", "", "", fmt(w.cpuPercent.client)]);
  log(`\n${formatTable(["node", "role", "watchers", "deliveries", "p50 ms", "p99 ms", "max ms", "cpu %"], rows)}`);
  log(`deliveries ${w.delivered}/${w.expectedDeliveries}, missing ${w.missing}; watches ended early ${w.watchesEnded}${w.firstWatchEnd ? ` (${w.firstWatchEnd})` : ""}; write errors ${w.writeErrors}${w.firstWriteError ? ` (${w.firstWriteError})` : ""}\n`);
}
