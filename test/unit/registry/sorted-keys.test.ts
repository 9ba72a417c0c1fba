import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KvStore } from "../../../src/registry/state-machine-kv.js";
import { SORTED_KEYS_LEAF_MAX, SortedKeys } from "../../../src/registry/sorted-keys.js";

/** Op is one step of a schedule run against SortedKeys and a plain sorted array side by side. */
type Op = { kind: "insert"; key: string } | { kind: "delete"; key: string } | { kind: "deletePrefix"; prefix: string } | { kind: "from"; key: string | undefined } | { kind: "load"; keys: string[] };

/** Keys from a small alphabet, so prefixes, neighbours and repeats are common. */
const key = fc.string({ unit: fc.constantFrom("a", "b", "c", "é", "😀"), maxLength: 4 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: key.map((k) => ({ kind: "insert" as const, key: k })) },
  { weight: 3, arbitrary: key.map((k) => ({ kind: "delete" as const, key: k })) },
  { weight: 1, arbitrary: key.map((k) => ({ kind: "deletePrefix" as const, prefix: k })) },
  { weight: 1, arbitrary: fc.option(key, { nil: undefined }).map((k) => ({ kind: "from" as const, key: k })) },
  { weight: 1, arbitrary: fc.uniqueArray(key, { maxLength: 40 }).map((ks) => ({ kind: "load" as const, keys: ks.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) })) },
);

describe("sorted keys", () => {
  it("agrees with one sorted array on every schedule of inserts, deletes, prefix deletes, loads and scans (leaves of 2 to 8 keys)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 8 }), fc.array(op, { maxLength: 200 }), (leafMax, ops) => {
        const s = new SortedKeys(leafMax);
        let model: string[] = [];
        for (const o of ops) {
          switch (o.kind) {
            case "insert":
              // The KV inserts only keys its map does not hold.
              if (!model.includes(o.key)) {
                s.insert(o.key);
                model = [...model, o.key].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
              }
              break;
            case "delete":
              expect(s.delete(o.key)).toBe(model.includes(o.key));
              model = model.filter((k) => k !== o.key);
              break;
            case "deletePrefix":
              expect(s.deletePrefix(o.prefix)).toEqual(model.filter((k) => k.startsWith(o.prefix)));
              model = model.filter((k) => !k.startsWith(o.prefix));
              break;
            case "from":
              expect([...s.from(o.key)]).toEqual(o.key === undefined ? model : model.filter((k) => k >= (o.key as string)));
              break;
            case "load":
              s.load(o.keys);
              model = [...o.keys];
              break;
          }
          s.checkInvariants();
          expect(s.size).toBe(model.length);
          expect(s.toArray()).toEqual(model);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("deleting most keys merges small leaves, so the leaf count follows the key count down", () => {
    const s = new SortedKeys(8);
    for (let i = 0; i < 1_000; i++) s.insert(`k${String(i).padStart(4, "0")}`);
    const full = s.leafCount;
    for (let i = 0; i < 1_000; i++) if (i % 10 !== 0) s.delete(`k${String(i).padStart(4, "0")}`);
    s.checkInvariants();
    expect(s.size).toBe(100);
    // 100 keys fit in 13 leaves of 8; merging keeps well under the 100 a leaf per survivor would give.
    expect(s.leafCount).toBeLessThanOrEqual(50);
    expect(s.leafCount).toBeLessThan(full);
  });

  it("220,000 keys inserted out of order: every leaf stays within SORTED_KEYS_LEAF_MAX, so an insert moves at most that many keys", () => {
    // The bound, not a timing: a timing would be noise on a shared machine.
    const s = new SortedKeys();
    const keyOf = (i: number) => `bench/${((i * 2_654_435_761) >>> 0).toString(16)}/${i}`;
    for (let i = 0; i < 220_000; i++) s.insert(keyOf(i));
    s.checkInvariants();
    expect(s.size).toBe(220_000);
    expect(s.leafCount).toBeGreaterThanOrEqual(220_000 / SORTED_KEYS_LEAF_MAX);
  });

  it("the KV lists pages across leaf boundaries and deletes prefixes that span leaves", () => {
    const kv = new KvStore();
    for (let i = 0; i < 3 * SORTED_KEYS_LEAF_MAX; i++) kv.put(`a/${String(i).padStart(5, "0")}`, "", i + 1);
    for (let i = 0; i < 10; i++) kv.put(`b/${i}`, "", 10_000 + i);
    const page1 = kv.list("a/", undefined, SORTED_KEYS_LEAF_MAX + 7);
    expect(page1.more).toBe(true);
    expect(page1.entries).toHaveLength(SORTED_KEYS_LEAF_MAX + 7);
    const page2 = kv.list("a/", page1.entries.at(-1)?.key, 10 * SORTED_KEYS_LEAF_MAX);
    expect(page2.more).toBe(false);
    expect(page1.entries.length + page2.entries.length).toBe(3 * SORTED_KEYS_LEAF_MAX);
    expect(page2.entries[0]?.key).toBe(`a/${String(SORTED_KEYS_LEAF_MAX + 7).padStart(5, "0")}`);
    expect(kv.deletePrefix("a/")).toHaveLength(3 * SORTED_KEYS_LEAF_MAX);
    expect(kv.all().map((e) => e.key)).toEqual(Array.from({ length: 10 }, (_, i) => `b/${i}`));
  });
});
