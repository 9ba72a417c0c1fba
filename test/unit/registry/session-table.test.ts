import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { requestDigest, resultPairs, type SessionRecord, SessionTable } from "../../../src/registry/state-machine-sessions.js";
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
  it("records and answers exactly as the append-filter-sort rule, for in-order and out-of-order seqs; a view never changes", () => {
    const window = 4;
    fc.assert(
      fc.property(
        fc.array(fc.record({ client: fc.constantFrom("a", "b", "c"), seq: fc.integer({ min: 1, max: 30 }), step: fc.boolean(), view: fc.boolean() }), { maxLength: 60 }),
        (ops) => {
          const table = new SessionTable(2, 1_000_000, window);
          const model = new Map<string, { maxSeq: number; lastAt: number; results: (readonly [number, CommandResult])[] }>();
          const next = new Map<string, number>();
          // Every view taken (a snapshot's entries(), a get()), with what it showed then.
          const views: { records: [string, SessionRecord][]; shown: unknown }[] = [];
          const show = (records: [string, SessionRecord][]) => records.map(([c, r]) => [c, r.maxSeq, r.lastAt, resultPairs(r)]);
          const expectModel = () => expect(show(table.entries())).toEqual([...model].map(([c, r]) => [c, r.maxSeq, r.lastAt, r.results]));
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
            // Half the writes come after a view (the copying path), the rest extend a record no view holds (in place).
            if (op.view) {
              const records = i % 2 === 0 ? table.entries() : ([[op.client, table.get(op.client)]].filter(([, r]) => r !== undefined) as [string, SessionRecord][]);
              views.push({ records, shown: show(records) });
            }
            table.record(op.client, seq, result(i), DIGEST, i);
            const results = referenceResults(m?.results ?? [], seq, stored(result(i)), window, m?.maxSeq ?? 0);
            model.delete(op.client);
            model.set(op.client, { maxSeq: Math.max(m?.maxSeq ?? 0, seq), lastAt: i, results });
            if (model.size > 2) model.delete(model.keys().next().value as string);
            next.set(op.client, Math.max(next.get(op.client) ?? 0, seq));
            for (const v of views) expect(show(v.records)).toEqual(v.shown);
          });
          expectModel();
          for (const v of views) expect(show(v.records)).toEqual(v.shown);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("a record loaded from a snapshot is copied before it changes: the snapshot's arrays stay as they were", () => {
    const seqs = [1, 2];
    const results = [stored(result(1)), stored(result(2))];
    const table = new SessionTable(10, 1_000_000, 4);
    table.load([["a", { maxSeq: 2, lastAt: 0, seqs, results }]]);
    table.record("a", 3, result(3), DIGEST, 1);
    expect(seqs).toEqual([1, 2]);
    expect(results).toHaveLength(2);
    expect(resultPairs(table.entries()[0]![1]).map(([s]) => s)).toEqual([1, 2, 3]);
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

  it("requestDigest: a kv.put with a base64 value (hashed without JSON.stringify) digests as JSON.stringify of it would", () => {
    const digestOfJson = (cmd: unknown) => createHash("sha256").update(JSON.stringify(cmd)).digest("base64").slice(0, 22);
    const base64 = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString("base64"));
    // Keys with what JSON escapes (quotes, backslashes, controls, lone surrogates) and non-ASCII.
    const key = fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.constantFrom('a"b', "a\\b", "\u2028", "\ud800", "é/ü"));
    fc.assert(
      fc.property(key, base64, (k, v) => {
        const cmd = { op: "kv.put" as const, key: k, value: v };
        expect(requestDigest(cmd)).toBe(digestOfJson(cmd));
      }),
      { numRuns: 1000 },
    );
    // Shapes the shortcut must leave to JSON.stringify: another key order, another field, a value
    // that is not base64 or has what JSON escapes.
    const others: unknown[] = [
      { key: "a", op: "kv.put", value: "dg==" },
      { op: "kv.put", value: "dg==", key: "a" },
      { op: "kv.put", key: "a", value: "dg==", extra: 1 },
      { op: "kv.put", key: "a", value: 'd"==' },
      { op: "kv.put", key: "a", value: "d\u00e9==" },
      { op: "kv.put", key: "a", value: "\u0000\u0000\u0000\u0000" },
      { op: "kv.delete", key: "a" },
    ];
    for (const cmd of others) expect(requestDigest(cmd as never)).toBe(digestOfJson(cmd));
  });

  it("requestDigest: a failover's positions (the leader's, not the request's) are not digested; without them it digests as always", () => {
    const digestOfJson = (cmd: unknown) => createHash("sha256").update(JSON.stringify(cmd)).digest("base64").slice(0, 22);
    const bare = { op: "failover" as const, service: "db", to: "s1", reason: "switchover" as const };
    const withPositions = { ...bare, positions: [{ service: "db", id: "s1", position: 100 }] };
    expect(requestDigest(bare)).toBe(digestOfJson(bare));
    expect(requestDigest(withPositions)).toBe(requestDigest(bare));
    expect(requestDigest({ ...bare, to: "s2" })).not.toBe(requestDigest(bare));
    // health.set is the leader's own command: its positions stay in its digest.
    const hs = { op: "health.set" as const, changes: [], positions: [{ service: "db", id: "s1", position: 1 }] };
    expect(requestDigest(hs)).toBe(digestOfJson(hs));
  });
});
