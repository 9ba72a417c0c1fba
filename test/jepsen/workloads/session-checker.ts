/**
 * The session checker: every sessioned write applies at most once, however it is retried.
 *
 * Each write puts a key of its own with value "first" under a session (client, seq); its retry
 * reuses the session with value "second". After the heal the final read shows every key with its
 * value and version:
 * - at most once: no key has version > 1 (a second application bumps it);
 * - retries are answered from the session: when the first try was acknowledged, an acknowledged
 *   retry says duplicate with the first try's index, and the value is "first";
 * - durability: a key whose first try or retry was acknowledged is present.
 */
import type { OpStatus } from "../checker/history.js";
import type { Anomaly, CheckerResult } from "./types.js";

/** SessionAnswer is one try's outcome: its status and, when ok, the answer. */
export interface SessionAnswer {
  readonly status: OpStatus;
  readonly index?: number;
  readonly duplicate?: boolean;
}

/** SessionWrite is one sessioned write and its retry. */
export interface SessionWrite {
  readonly key: string;
  readonly first: SessionAnswer;
  /** retry is absent when the run ended before the retry was sent. */
  readonly retry?: SessionAnswer;
  /** spansLeaderChange: a clock-jumped node was made leader between the first try and the retry. */
  readonly spansLeaderChange: boolean;
}

/** SessionFinal is one key in the final read. */
export interface SessionFinal {
  readonly value: string;
  readonly version: number;
}

const EXAMPLE_MAX = 6;

/** checkSessions: see the module comment (pure). `final` is undefined when the final read failed. */
export function checkSessions(writes: readonly SessionWrite[], final: ReadonlyMap<string, SessionFinal> | undefined): CheckerResult {
  if (final === undefined) return { name: "session", valid: "unknown", summary: "the final read never succeeded", anomalies: [] };
  const twice: unknown[] = [];
  const notDuplicate: unknown[] = [];
  const lost: unknown[] = [];
  for (const w of writes) {
    const got = final.get(w.key);
    if (got && got.version > 1) twice.push({ ...w, final: got });
    const r = w.retry;
    if (w.first.status === "ok" && r?.status === "ok" && (r.duplicate !== true || r.index !== w.first.index || got?.value !== "first")) {
      notDuplicate.push({ ...w, final: got });
    }
    if ((w.first.status === "ok" || r?.status === "ok") && !got) lost.push(w);
  }
  const anomalies: Anomaly[] = [];
  if (twice.length > 0) anomalies.push({ kind: "applied-twice", message: `${twice.length} sessioned writes applied more than once`, example: twice.slice(0, EXAMPLE_MAX) });
  if (notDuplicate.length > 0) {
    anomalies.push({ kind: "retry-not-duplicate", message: `${notDuplicate.length} retries of acknowledged writes were not answered from the session`, example: notDuplicate.slice(0, EXAMPLE_MAX) });
  }
  if (lost.length > 0) anomalies.push({ kind: "lost", message: `${lost.length} acknowledged writes are missing`, example: lost.slice(0, EXAMPLE_MAX) });
  const retried = writes.filter((w) => w.retry?.status === "ok");
  const stats = {
    writes: writes.length,
    acknowledged: writes.filter((w) => w.first.status === "ok").length,
    retried: retried.length,
    duplicates: retried.filter((w) => w.retry?.duplicate === true).length,
    retriedAcrossClockLeaderChange: retried.filter((w) => w.spansLeaderChange).length,
  };
  const valid = anomalies.length === 0;
  const summary = valid
    ? `${stats.writes} writes, ${stats.retried} retried (${stats.retriedAcrossClockLeaderChange} across a leader change to a clock-jumped node), none applied twice`
    : anomalies.map((a) => a.message).join("; ");
  return { name: "session", valid, summary, anomalies, stats };
}
