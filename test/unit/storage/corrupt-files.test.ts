/**
 * Damaged files, the way a bad disk damages them: one byte flipped somewhere in one file of a real
 * data directory (LevelDB's write-ahead log, its tables, its manifest, CURRENT, the snapshot
 * files). Whatever byte it is, opening the store must either refuse with a StorageError or load
 * exactly what was stored before; it must never load something else (a forgotten vote, a missing
 * or changed entry, another snapshot). Every file kind is hit at many seeded offsets.
 */
import { cp, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LEVELDB_DIR } from "../../../src/storage/db.js";
import { type LoadedState, StorageError } from "../../../src/storage/index.js";
import type { Entry } from "../../../src/raft/types.js";
import { entries, entry, hardState, openStore, snapshot, TempDirs } from "./helpers.js";

/** FLIPS_PER_FILE: seeded offsets per file; with ~8 files that is some hundreds of opens, a few seconds. */
const FLIPS_PER_FILE = 30;

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

/** xorshift32 gives the seeded offsets, so a failure names a case that can be run again. */
function offsets(seed: number, size: number, count: number): number[] {
  let x = seed >>> 0 || 1;
  const out = new Set<number>();
  // The first and last bytes of every file are always among them: headers and torn-tail positions.
  out.add(0);
  out.add(size - 1);
  while (out.size < Math.min(count, size)) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.add(x % size);
  }
  return [...out].sort((a, b) => a - b);
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir, { recursive: true })) {
    const path = join(dir, name);
    if ((await stat(path)).isFile()) out.push(path);
  }
  return out.sort();
}

/** comparable turns a loaded state into plain data, so two loads can be compared deeply. */
function comparable(s: LoadedState): unknown {
  return {
    hardState: s.hardState,
    snapshot: s.snapshot === undefined ? null : { meta: s.snapshot.meta, data: Buffer.from(s.snapshot.data).toString("hex") },
    entries: s.entries.map(comparableEntry),
  };
}

function comparableEntry(e: Entry): unknown {
  return { ...e, data: Buffer.from(e.data).toString("hex") };
}

/** termStored is the term the set-up stored entry `index` in. */
function termStored(index: number): number {
  return index <= 30 ? 1 : index <= 60 ? 2 : 3;
}

/** loadOf opens dir and closes it again: the loaded state, or the error that refused it. */
async function loadOf(dir: string): Promise<{ state: unknown } | { error: unknown }> {
  try {
    const { store, state } = await openStore(dir);
    await store.close();
    return { state: comparable(state) };
  } catch (error) {
    return { error };
  }
}

describe("storage: flipped bytes in the data directory's files", () => {
  let pristine: string;
  let expected: unknown;
  let files: string[];

  beforeAll(async () => {
    // A store with everything a node keeps: entries in LevelDB tables (written, closed, reopened,
    // so the first write-ahead log became a table), more entries in the live write-ahead log, a
    // hard state with a vote, a local snapshot and the log compacted to it.
    pristine = await dirs.make();
    let { store } = await openStore(pristine);
    await store.save({ hardState: hardState(2, 40), entries: [...entries(1, 30, 1), ...entries(31, 60, 2)] });
    await store.close();
    ({ store } = await openStore(pristine));
    await store.compact(snapshot(40, 2));
    await store.save({ hardState: hardState(3, 70), entries: entries(61, 90, 3) });
    await store.close();
    // What was stored, read from a copy: opening the original would let LevelDB fold its log into a table.
    const probe = await dirs.make();
    await cp(pristine, probe, { recursive: true });
    const loaded = await loadOf(probe);
    if (!("state" in loaded)) throw loaded.error;
    expected = loaded.state;
    files = (await filesUnder(pristine)).filter((f) => !/\/(LOCK|LOG|LOG\.old)$/.test(f)); // LevelDB's lock and its text log hold no data
  });

  it("storage: a flipped byte in any file either refuses to open with a StorageError or loads exactly what was stored", async () => {
    const kinds = new Map<string, { refused: number; same: number }>();
    const wrong: string[] = [];
    let seed = 1;
    for (const file of files) {
      const rel = relative(pristine, file);
      const kind = rel.replace(/\d+/g, "N");
      const bytes = await readFile(file);
      for (const offset of offsets(seed++, bytes.length, FLIPS_PER_FILE)) {
        const dir = await dirs.make();
        await cp(pristine, dir, { recursive: true });
        const damaged = Buffer.from(bytes);
        damaged[offset] = (damaged[offset] as number) ^ 0x10;
        await writeFile(join(dir, rel), damaged);
        const got = await loadOf(dir);
        const tally = kinds.get(kind) ?? { refused: 0, same: 0 };
        kinds.set(kind, tally);
        if ("error" in got) {
          if (got.error instanceof StorageError) tally.refused++;
          else wrong.push(`${rel} @${offset}: refused, but not with a StorageError: ${String(got.error)}`);
        } else if (JSON.stringify(got.state) === JSON.stringify(expected)) {
          tally.same++;
        } else {
          wrong.push(`${rel} @${offset}: opened with other data than was stored`);
        }
      }
    }
    console.log(JSON.stringify(Object.fromEntries(kinds)));
    expect(wrong).toEqual([]);
    expect(files.some((f) => f.includes(LEVELDB_DIR) && f.endsWith(".log"))).toBe(true);
    expect(files.some((f) => f.endsWith(".ldb"))).toBe(true);
  }, 120_000);

  it("storage: a write-ahead log cut short at any length (a write torn by a power loss) opens, with a prefix of what was stored", async () => {
    const wal = files.find((f) => f.endsWith(".log") && f.includes(LEVELDB_DIR)) as string;
    const rel = relative(pristine, wal);
    const bytes = await readFile(wal);
    const want = expected as { hardState: { term: number }; entries: { index: number }[] };
    let opened = 0;
    for (const length of offsets(99, bytes.length, FLIPS_PER_FILE)) {
      const dir = await dirs.make();
      await cp(pristine, dir, { recursive: true });
      await writeFile(join(dir, rel), bytes.subarray(0, length));
      const got = await loadOf(dir);
      expect("state" in got ? "opened" : String((got as { error: unknown }).error), `cut at ${length}`).toBe("opened");
      const state = (got as { state: typeof want }).state;
      expect(state.hardState.term).toBeLessThanOrEqual(want.hardState.term);
      // Every entry it has is one that was stored at that index (a cut may also bring back entries
      // the lost batches had compacted away: they were stored, and the chain checks still hold).
      for (const e of state.entries) expect(e, `cut at ${length}`).toEqual(comparableEntry(entry(e.index, termStored(e.index))));
      opened++;
    }
    expect(opened).toBeGreaterThan(0);
  }, 120_000);
});
