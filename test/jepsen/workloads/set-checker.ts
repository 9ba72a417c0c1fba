/**
 * The set checker: after the heal, every acknowledged element must be present in the final read
 * of every node, nothing that was never added (or was refused) may be present, and nothing may be
 * present twice. Elements whose add was indeterminate may be present or not ("recovered" counts
 * those present).
 */
import type { OpStatus } from "../checker/history.js";
import type { Anomaly, CheckerResult } from "./types.js";

/** SetAdd is one attempted add and how it ended. */
export interface SetAdd {
  readonly element: string;
  readonly status: OpStatus;
}

/** SetFinalRead is one node's final read: the elements, or undefined if it never succeeded. */
export interface SetFinalRead {
  readonly node: string;
  readonly elements: readonly string[] | undefined;
}

/** EXAMPLE_MAX bounds the elements listed in an anomaly. */
const EXAMPLE_MAX = 10;

/** checkSet: see the module comment (pure). */
export function checkSet(adds: readonly SetAdd[], reads: readonly SetFinalRead[]): CheckerResult {
  const status = new Map<string, OpStatus>();
  for (const a of adds) status.set(a.element, a.status);
  const acked = adds.filter((a) => a.status === "ok").map((a) => a.element);
  const anomalies: Anomaly[] = [];
  const perNode: Record<string, unknown>[] = [];
  let lostTotal = 0;
  let unexpectedTotal = 0;
  let duplicatedTotal = 0;
  let recovered = 0;
  const done = reads.filter((r): r is { node: string; elements: readonly string[] } => r.elements !== undefined);
  for (const r of done) {
    const counts = new Map<string, number>();
    for (const e of r.elements) counts.set(e, (counts.get(e) ?? 0) + 1);
    const lost = acked.filter((e) => !counts.has(e));
    const unexpected = [...counts.keys()].filter((e) => status.get(e) === undefined || status.get(e) === "fail");
    const duplicated = [...counts.entries()].filter(([, n]) => n > 1).map(([e]) => e);
    recovered = Math.max(recovered, [...counts.keys()].filter((e) => status.get(e) === "info").length);
    perNode.push({ node: r.node, present: counts.size, lost: lost.length, unexpected: unexpected.length, duplicated: duplicated.length });
    lostTotal += lost.length;
    unexpectedTotal += unexpected.length;
    duplicatedTotal += duplicated.length;
    if (lost.length > 0) anomalies.push({ kind: "lost", message: `${r.node}: ${lost.length} acknowledged adds are missing`, example: lost.slice(0, EXAMPLE_MAX) });
    if (unexpected.length > 0) {
      anomalies.push({ kind: "unexpected", message: `${r.node}: ${unexpected.length} elements never added or refused`, example: unexpected.slice(0, EXAMPLE_MAX).map((e) => ({ element: e, add: status.get(e) ?? "never" })) });
    }
    if (duplicated.length > 0) anomalies.push({ kind: "duplicated", message: `${r.node}: ${duplicated.length} elements appear more than once`, example: duplicated.slice(0, EXAMPLE_MAX) });
  }
  const stats = { attempted: adds.length, acknowledged: acked.length, indeterminate: adds.filter((a) => a.status === "info").length, recovered, perNode };
  if (done.length === 0) return { name: "set", valid: "unknown", summary: "no final read succeeded", anomalies, stats };
  const valid = anomalies.length === 0;
  const summary = `${acked.length} acknowledged, lost ${lostTotal}, unexpected ${unexpectedTotal}, duplicated ${duplicatedTotal}, recovered ${recovered} indeterminate (final reads on ${done.length} of ${reads.length} nodes)`;
  return { name: "set", valid: valid && done.length === reads.length ? true : valid ? "unknown" : false, summary, anomalies, stats };
}
