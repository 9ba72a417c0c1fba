import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { requestDigest, resultPairs, SessionTable } from "../../../src/registry/state-machine-sessions.js";
import type { CommandResult } from "../../../src/registry/types.js";

/**
 * referenceRecord is the table's record rule written the plain way (append, drop what left the
 * window, sort): the fast path for a client's next seq must give exactly the same results.
 */
function referenceResults(prev: readonly (readonly [number, CommandResult])[], seq: number, result: CommandResult, window: number, prevMax: number) {
  const maxSeq = Math.max(prevMax, seq);
  return [...prev, [seq, result] as const].filter(([s]) => s > maxSeq - window).sort((a, b) => a[0] - b[0]);
}

const result = (index: number): CommandResult => ({ ok: true, index });
/** DIGEST stands for every request's digest here (one request per seq); the table stores it with the result and answers without it. */
const DIGEST = "d";
const stored = (r: CommandResult): CommandResult => ({ ...r, digest: DIGEST }) as unknown as CommandResult;
const answered = (r: CommandResult): CommandResult => {
  const { digest: _d, ...rest } = r as CommandResult & { digest?: string };
  return rest as CommandResult;
};

describe("session table", () => {
  it("records and answers exactly as the append-filter-sort rule, for in-order and out-of-order seqs", () => {
    const window = 4;
    fc.assert(
      fc.property(fc.array(fc.record({ client: fc.constantFrom("a", "b", "c"), seq: fc.integer({ min: 1, max: 30 }), step: fc.boolean() }), { maxLength: 60 }), (ops) => {
        const table = new SessionTable(2, 1_000_000, window);
        const model = new Map<string, { maxSeq: number; results: (readonly [number, CommandResult])[] }>();
        const next = new Map<string, number>();
        ops.forEach((op, i) => {
          // Half the ops are a client's next seq (the fast path), the rest any seq at all.
          const seq = op.step ? (next.get(op.client) ?? 0) + 1 : op.seq;
          const answer = table.lookup(op.client, seq, DIGEST);
          const m = model.get(op.client);
          if (m === undefined) expect(answer).toEqual({ kind: "new" });
          else if (seq <= m.maxSeq - window) expect(answer).toEqual({ kind: "stale", maxSeq: m.maxSeq });
          else {
            const hit = m.results.find(([s]) => s === seq);
            expect(answer).toEqual(hit ? { kind: "duplicate", result: answered(hit[1]) } : { kind: "new" });
          }
          if (answer.kind !== "new") return;
          const before = table.get(op.client);
          const frozen = before ? resultPairs(before) : [];
          table.record(op.client, seq, result(i), DIGEST, i);
          // A record is replaced, never changed in place (snapshots hold old ones).
          if (before) expect(resultPairs(before)).toEqual(frozen);
          const results = referenceResults(m?.results ?? [], seq, stored(result(i)), window, m?.maxSeq ?? 0);
          model.delete(op.client);
          model.set(op.client, { maxSeq: Math.max(m?.maxSeq ?? 0, seq), results });
          if (model.size > 2) model.delete(model.keys().next().value as string);
          next.set(op.client, Math.max(next.get(op.client) ?? 0, seq));
          expect(table.entries().map(([c, r]) => [c, r.maxSeq, resultPairs(r)])).toEqual([...model].map(([c, r]) => [c, r.maxSeq, r.results]));
        });
      }),
      { numRuns: 500 },
    );
  });

  it("requestDigest: the first 22 base64 characters of the command's sha256, as every build wrote them (snapshots keep them)", () => {
    // A fixed vector: a digest that changed would make a retry after an upgrade look like a reused seq.
    expect(requestDigest({ op: "kv.put", key: "config/a", value: "dg==" })).toBe("Y3dHjPrWcdN1vV6eNiw0vE");
    fc.assert(
      fc.property(fc.string(), fc.string(), (key, value) => {
        const cmd = { op: "kv.put" as const, key, value };
        const d = requestDigest(cmd);
        expect(d).toBe(createHash("sha256").update(JSON.stringify(cmd)).digest("base64").slice(0, 22));
      }),
      { numRuns: 500 },
    );
  });
});
