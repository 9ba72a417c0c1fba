/**
 * The watch checker. For every watcher, across all its reconnects:
 * - order: event indexes strictly increase (an equal index for the same key is a duplicate, a
 *   lower one is going back in time);
 * - agreement: all watchers agree on what happened at each (index, key);
 * - completeness: a watcher that caught up to index N saw every change any watcher saw up to N,
 *   and every acknowledged write (with the index its ack reported) was seen by someone.
 * A watcher that never caught up with the final index makes the verdict unknown.
 */
import type { Anomaly, CheckerResult } from "./types.js";

/** WatchChange is one delivered change, reduced to what the checker compares. */
export interface WatchChange {
  readonly index: number;
  readonly key: string;
  /** what is the change itself, e.g. "put v17" (compared for agreement). */
  readonly what: string;
  readonly time: number;
  readonly connection: number;
}

/** WatcherLog is one watcher's deliveries in arrival order. */
export interface WatcherLog {
  readonly name: string;
  readonly changes: readonly WatchChange[];
  /** caughtUp says the watcher reached the final index after the heal. */
  readonly caughtUp: boolean;
  /** lastIndex is how far the watcher is known to have caught up. */
  readonly lastIndex: number;
}

/** AckedWrite is a write the cluster acknowledged, with the index in its answer. */
export interface AckedWrite {
  readonly index: number;
  readonly key: string;
  readonly what: string;
}

const EXAMPLE_MAX = 6;
const id = (c: { index: number; key: string }) => `${c.index}/${c.key}`;

/** checkWatch: see the module comment (pure). */
export function checkWatch(watchers: readonly WatcherLog[], acked: readonly AckedWrite[]): CheckerResult {
  const anomalies: Anomaly[] = [];
  const union = new Map<string, { change: WatchChange; by: string }>();
  const divergent: unknown[] = [];
  for (const w of watchers) {
    const backInTime: unknown[] = [];
    const duplicates: unknown[] = [];
    for (let i = 1; i < w.changes.length; i++) {
      const prev = w.changes[i - 1] as WatchChange;
      const cur = w.changes[i] as WatchChange;
      if (cur.index < prev.index) backInTime.push({ after: prev, got: cur });
      else if (cur.index === prev.index && cur.key === prev.key) duplicates.push({ first: prev, again: cur });
    }
    if (backInTime.length > 0) anomalies.push({ kind: "back-in-time", message: `${w.name}: ${backInTime.length} events older than one already delivered`, example: backInTime.slice(0, EXAMPLE_MAX) });
    if (duplicates.length > 0) anomalies.push({ kind: "duplicate", message: `${w.name}: ${duplicates.length} events delivered twice`, example: duplicates.slice(0, EXAMPLE_MAX) });
    for (const c of w.changes) {
      const known = union.get(id(c));
      if (!known) union.set(id(c), { change: c, by: w.name });
      else if (known.change.what !== c.what) divergent.push({ index: c.index, key: c.key, [known.by]: known.change.what, [w.name]: c.what });
    }
  }
  for (const a of acked) {
    const seen = union.get(id(a));
    if (seen && seen.change.what !== a.what) divergent.push({ index: a.index, key: a.key, acknowledged: a.what, watched: seen.change.what });
  }
  if (divergent.length > 0) anomalies.push({ kind: "divergent", message: `${divergent.length} (index, key) pairs seen differently`, example: divergent.slice(0, EXAMPLE_MAX) });
  const reach = Math.max(0, ...watchers.filter((w) => w.caughtUp).map((w) => w.lastIndex));
  const lost = acked.filter((a) => a.index <= reach && !union.has(id(a)));
  if (lost.length > 0) anomalies.push({ kind: "lost", message: `${lost.length} acknowledged writes never delivered to any watcher`, example: lost.slice(0, EXAMPLE_MAX) });
  const perWatcher: Record<string, unknown>[] = [];
  for (const w of watchers) {
    const mine = new Set(w.changes.map(id));
    const missed = [...union.values()].filter((u) => u.change.index <= w.lastIndex && !mine.has(id(u.change))).map((u) => ({ index: u.change.index, key: u.change.key, seenBy: u.by }));
    if (missed.length > 0) anomalies.push({ kind: "missed", message: `${w.name}: ${missed.length} changes up to index ${w.lastIndex} never delivered to it`, example: missed.slice(0, EXAMPLE_MAX) });
    const reconnects = new Set(w.changes.map((c) => c.connection)).size;
    perWatcher.push({ name: w.name, events: w.changes.length, lastIndex: w.lastIndex, caughtUp: w.caughtUp, streamsWithEvents: reconnects });
  }
  const notCaughtUp = watchers.filter((w) => !w.caughtUp).map((w) => w.name);
  const stats = { watchers: perWatcher, changes: union.size, acknowledged: acked.length };
  const valid = anomalies.length > 0 ? false : notCaughtUp.length > 0 ? "unknown" : true;
  const summary =
    valid === false
      ? `${anomalies.length} anomalies (${[...new Set(anomalies.map((a) => a.kind))].join(", ")})`
      : `${union.size} changes, ${acked.length} acknowledged writes, ${watchers.length} watchers${notCaughtUp.length > 0 ? `; not caught up: ${notCaughtUp.join(", ")}` : ", all in order, once, complete"}`;
  return { name: "watch", valid, summary, anomalies, stats };
}
