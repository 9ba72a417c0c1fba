import { afterEach, describe, expect, it } from "vitest";
import { type Entry, type HardState, type LogIndex, type Snapshot, nodeId } from "../../src/raft/index.js";
import { type LoadedState, type LogStore, MemoryLogStore, SnapshotOutOfDateError } from "../../src/storage/index.js";
import { entries, entry, openStore, snapshot, TempDirs } from "../unit/storage/helpers.js";
import { MemoryStorage } from "./memory-storage.js";
import { Rng } from "./rng.js";

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

/** Op is one write a host makes: a ready's durable part, or a local snapshot. */
type Op = { save: { hardState?: HardState; entries: Entry[]; snapshot?: Snapshot } } | { compact: Snapshot };

const VOTE = nodeId("n1");

/** comparable reduces a loaded state to plain data, so the two stores' answers compare field by field. */
function comparable(s: { hardState: HardState; snapshot?: Snapshot | undefined; entries: readonly Entry[] }) {
  return {
    hardState: s.hardState,
    snapshot: s.snapshot && { meta: s.snapshot.meta, data: Buffer.from(s.snapshot.data).toString("hex") },
    entries: s.entries.map((e) => ({ index: e.index, term: e.term, kind: e.kind, data: Buffer.from(e.data).toString("hex") })),
  };
}

/**
 * runBoth applies ops to the LevelDB LogStore and to both in-memory stores (MemoryLogStore, which
 * simulated RaftNodes run on, and MemoryStorage, which the core's synchronous test hosts use) and
 * returns what each would hand a restarting node.
 */
async function runBoth(ops: readonly Op[]) {
  const dir = await dirs.make();
  let { store } = await openStore(dir);
  const memory = new MemoryStorage();
  const hosted = new MemoryLogStore();
  let ended: LoadedState | undefined;
  for (const [i, op] of ops.entries()) {
    if ("save" in op) {
      memory.save(op.save);
      await hosted.save(op.save);
      await store.save(op.save);
    } else {
      memory.compact(op.compact);
      await hosted.compact(op.compact);
      await store.compact(op.compact);
    }
    // Reopen now and then, so the store is also compared as it recovers mid-way.
    if (i % 7 === 6 || i === ops.length - 1) {
      await store.close();
      const reopened = await reopen(dir);
      store = reopened.store;
      ended = reopened.state;
      expect(comparable(memory.load()), `after op ${i}: ${describeOp(op)}`).toEqual(comparable(ended));
      expect(comparable(hosted.load()), `MemoryLogStore after op ${i}: ${describeOp(op)}`).toEqual(comparable(ended));
    }
  }
  await store.close();
  return { memory: memory.load(), hosted: hosted.load(), real: ended };
}

function describeOp(op: Op): string {
  if ("compact" in op) return `compact at ${op.compact.meta.index} term ${op.compact.meta.term}`;
  const { hardState, entries: es, snapshot: snap } = op.save;
  const what = es.length > 0 ? `entries ${es[0]?.index}..${es.at(-1)?.index} term ${es[0]?.term}` : "no entries";
  return `save ${what}${snap ? ` after snapshot ${snap.meta.index} term ${snap.meta.term}` : ""}, hard state ${JSON.stringify(hardState)}`;
}

function reopen(dir: string): Promise<{ store: LogStore; state: LoadedState }> {
  return openStore(dir);
}

/**
 * randomOps draws writes as the core makes them: appends that may overwrite the uncommitted tail
 * in a later term, snapshots from the leader (at, inside or past the log, with or without the
 * stored term there, sometimes followed by entries), local snapshots at committed indexes, and
 * commit-only hard states.
 */
function randomOps(rng: Rng, count: number): Op[] {
  const ops: Op[] = [];
  let hs: HardState = { term: 1, vote: VOTE, commit: 0 };
  let snap = { index: 0, term: 0 };
  let log: Entry[] = [];
  const last = (): LogIndex => log.at(-1)?.index ?? snap.index;
  const termAt = (i: LogIndex): number => (i === snap.index ? snap.term : (log.find((e) => e.index === i)?.term ?? 0));
  for (let n = 0; n < count; n++) {
    const roll = rng.next();
    if (roll < 0.55) {
      const from = Math.max(snap.index, hs.commit) + 1 + rng.nextInt(last() - Math.max(snap.index, hs.commit) + 1);
      // An overwrite comes from a later leader; an append at the end may stay in the term.
      const term = from <= last() ? hs.term + 1 : Math.max(hs.term, termAt(from - 1)) + rng.nextInt(2);
      const batch = entries(from, from + rng.nextInt(4), term);
      log = [...log.filter((e) => e.index < from), ...batch];
      hs = { term: Math.max(hs.term, term), vote: VOTE, commit: hs.commit + rng.nextInt(last() - hs.commit + 1) };
      ops.push({ save: { hardState: hs, entries: batch } });
    } else if (roll < 0.75) {
      const index = Math.max(snap.index, hs.commit) + 1 + rng.nextInt(last() - hs.commit + 4);
      const stored = termAt(index);
      const term = stored > 0 && rng.chance(0.5) ? stored : hs.term + rng.nextInt(2);
      const after = rng.chance(0.5) ? entries(index + 1, index + 1 + rng.nextInt(3), Math.max(term, hs.term)) : [];
      snap = { index, term };
      log = after;
      hs = { term: Math.max(hs.term, term, after[0]?.term ?? 0), vote: VOTE, commit: index };
      ops.push({ save: { hardState: hs, entries: after, snapshot: snapshot(index, term) } });
    } else if (roll < 0.92) {
      const top = Math.min(hs.commit, last());
      if (top <= snap.index) continue;
      const index = snap.index + 1 + rng.nextInt(top - snap.index);
      snap = { index, term: termAt(index) };
      log = log.filter((e) => e.index > index);
      ops.push({ compact: snapshot(index, snap.term) });
    } else {
      hs = { ...hs, commit: hs.commit + rng.nextInt(last() - hs.commit + 1) };
      ops.push({ save: { hardState: hs, entries: [] } });
    }
  }
  return ops;
}

describe("sim: MemoryStorage", () => {
  it("sim: a snapshot from the leader drops every stored entry, as the LevelDB store does", async () => {
    // The log holds 1..10; the snapshot at 5 carries the stored term, so 6..10 follow it without
    // a gap. The core restores from the snapshot with an empty log, and so must what it restarts from.
    const { memory, hosted, real } = await runBoth([
      { save: { hardState: { term: 1, vote: VOTE, commit: 2 }, entries: entries(1, 10, 1) } },
      { save: { hardState: { term: 1, vote: VOTE, commit: 5 }, entries: [], snapshot: snapshot(5, 1) } },
    ]);
    expect(real?.entries).toEqual([]);
    expect(memory.entries).toEqual([]);
    expect(hosted.entries).toEqual([]);
  });

  it("sim: a snapshot from the leader keeps the entries that came with it", async () => {
    const { memory, hosted } = await runBoth([
      { save: { hardState: { term: 1, vote: VOTE, commit: 2 }, entries: entries(1, 10, 1) } },
      { save: { hardState: { term: 2, vote: VOTE, commit: 5 }, entries: [entry(6, 2)], snapshot: snapshot(5, 1) } },
    ]);
    expect(memory.entries).toEqual([entry(6, 2)]);
    expect(hosted.entries).toEqual([entry(6, 2)]);
  });

  it("sim: MemoryStorage and the LevelDB store agree on random write sequences", async () => {
    for (let seed = 1; seed <= 12; seed++) await runBoth(randomOps(new Rng(seed), 40));
  });

  it("sim: MemoryLogStore refuses what the LevelDB store refuses", async () => {
    const store = new MemoryLogStore();
    await store.save({ hardState: { term: 2, vote: VOTE, commit: 3 }, entries: entries(1, 5, 2) });
    await expect(store.save({ hardState: { term: 1, vote: VOTE, commit: 3 }, entries: [] })).rejects.toThrow(/term goes down/);
    await expect(store.save({ entries: [entry(8, 2)] })).rejects.toThrow(/gap/);
    await store.compact(snapshot(3, 2));
    await expect(store.compact(snapshot(2, 2))).rejects.toThrow(SnapshotOutOfDateError);
    expect(store.load().entries.map((e) => e.index)).toEqual([4, 5]);
  });

  it("sim: a crash keeps every write that resolved and loses, whole, every write that had not", async () => {
    const held: (() => void)[] = [];
    const store = new MemoryLogStore(undefined, { persist: (done) => held.push(done) });
    const first = store.save({ hardState: { term: 1, vote: VOTE, commit: 0 }, entries: entries(1, 3, 1) });
    await new Promise((r) => setImmediate(r));
    expect(held).toHaveLength(1);
    held.shift()?.();
    await first;
    let secondDone = false;
    void store.save({ hardState: { term: 2, vote: VOTE, commit: 2 }, entries: entries(4, 6, 2) }).then(() => {
      secondDone = true;
    });
    // The second write is handed to the disk but has not finished: a crash now loses all of it.
    await new Promise((r) => setImmediate(r));
    expect(held).toHaveLength(1);
    store.crash();
    held.shift()?.();
    await new Promise((r) => setImmediate(r));
    expect(secondDone).toBe(false);
    expect(comparable(store.load())).toEqual(comparable({ hardState: { term: 1, vote: VOTE, commit: 0 }, entries: entries(1, 3, 1) }));
    // The store goes on from its durable state, as a reopened one does.
    const third = store.save({ hardState: { term: 3, vote: VOTE, commit: 3 }, entries: entries(4, 4, 3) });
    await new Promise((r) => setImmediate(r));
    held.shift()?.();
    await third;
    expect(store.load().entries.map((e) => `${e.index}/${e.term}`)).toEqual(["1/1", "2/1", "3/1", "4/3"]);
  });
});
