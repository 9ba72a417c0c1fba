import { readdir } from "node:fs/promises";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { NO_NODE, nodeId } from "../../../src/raft/types.js";
import {
  COMPACTION_ENTRIES_KEPT,
  LogStore,
  SNAPSHOT_DIR,
  SnapshotOutOfDateError,
  StorageClosedError,
  StorageFailedError,
  StorageLockedError,
  type StorageLogger,
} from "../../../src/storage/index.js";
import type { Snapshot } from "../../../src/raft/types.js";
import { entries, entry, hardState, openStore, snapshot, TempDirs } from "./helpers.js";

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

describe("LogStore", () => {
  it("storage: a new directory opens empty", async () => {
    const dir = await dirs.make();
    const { store, state } = await openStore(dir);
    expect(state).toEqual({ hardState: { term: 0, vote: NO_NODE, commit: 0 }, entries: [] });
    expect([store.firstIndex(), store.lastIndex()]).toEqual([1, 0]);
    await store.close();
  });

  it("storage: entries and hard state survive close and reopen", async () => {
    const dir = await dirs.make();
    const first = await openStore(dir);
    await first.store.save({ hardState: hardState(1, 0), entries: entries(1, 3, 1) });
    await first.store.save({ hardState: hardState(2, 3), entries: entries(4, 6, 2) });
    await first.store.close();

    const { store, state } = await openStore(dir);
    expect(state.hardState).toEqual(hardState(2, 3));
    expect(state.entries).toEqual([...entries(1, 3, 1), ...entries(4, 6, 2)]);
    expect(state.snapshot).toBeUndefined();
    expect([store.firstIndex(), store.lastIndex()]).toEqual([1, 6]);
    await store.close();
  });

  it("storage: appends are stored while a compaction's snapshot file is still being written; a snapshot stored from the leader meanwhile makes the compaction out of date", async () => {
    const dir = await dirs.make();
    const { store } = await openStore(dir);
    await store.save({ hardState: hardState(1, 6), entries: entries(1, 6, 1) });
    // The file write waits for the gate, as a file of tens of MB and its fsync take their time.
    const files = (store as unknown as { snapshots: { save(s: Snapshot): Promise<void> } }).snapshots;
    const save = files.save.bind(files);
    let open: () => void = () => {};
    const gate = new Promise<void>((r) => {
      open = r;
    });
    files.save = async (s) => {
      if (s.meta.index === 5) await gate;
      return save(s);
    };
    let compacted = false;
    const compaction = store.compact(snapshot(5, 1)).then(() => {
      compacted = true;
    });
    await store.save({ hardState: hardState(1, 9), entries: entries(7, 9, 1) });
    expect(store.lastIndex()).toBe(9);
    expect(compacted).toBe(false);
    open();
    await compaction;
    expect(store.firstIndex()).toBeGreaterThan(1);

    // A leader's snapshot at 12 stored while the local one at 11 is written: the local one is refused.
    await store.save({ hardState: hardState(1, 11), entries: entries(10, 11, 1) });
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    files.save = async (s) => {
      if (s.meta.index === 11) await held;
      return save(s);
    };
    const late = store.compact(snapshot(11, 1)).catch((e: unknown) => e);
    await store.save({ hardState: hardState(1, 12), entries: [], snapshot: snapshot(12, 1) });
    release();
    expect(await late).toBeInstanceOf(SnapshotOutOfDateError);
    await store.close();
    const reopened = await openStore(dir);
    expect(reopened.state.snapshot?.meta.index).toBe(12);
    await reopened.store.close();
  });

  it("storage: an overwrite deletes every stored entry from its first index on", async () => {
    const dir = await dirs.make();
    const first = await openStore(dir);
    await first.store.save({ hardState: hardState(1, 2), entries: entries(1, 10, 1) });
    // A new leader at term 2 replaces the uncommitted 4..10 with a shorter 4..5.
    await first.store.save({ hardState: hardState(2, 2), entries: entries(4, 5, 2) });
    expect(first.store.lastIndex()).toBe(5);
    await first.store.close();

    const { store, state } = await openStore(dir);
    expect(state.entries).toEqual([...entries(1, 3, 1), ...entries(4, 5, 2)]);
    expect(store.lastIndex()).toBe(5);
    await store.close();
  });

  it("storage: an overwrite longer than the stored log replaces and extends it", async () => {
    const dir = await dirs.make();
    const first = await openStore(dir);
    await first.store.save({ hardState: hardState(1, 1), entries: entries(1, 4, 1) });
    await first.store.save({ entries: entries(3, 8, 2) });
    await first.store.close();
    const { store, state } = await openStore(dir);
    expect(state.entries).toEqual([...entries(1, 2, 1), ...entries(3, 8, 2)]);
    await store.close();
  });

  it("storage: a gap, an overwrite below the snapshot and a vote change within a term are refused", async () => {
    const dir = await dirs.make();
    const { store } = await openStore(dir);
    await store.save({ hardState: hardState(1, 2), entries: entries(1, 3, 1) });
    await expect(store.save({ entries: entries(5, 6, 1) })).rejects.toThrow(/gap/);
    await expect(store.save({ hardState: { term: 1, vote: nodeId("n2"), commit: 2 }, entries: [] })).rejects.toThrow(/vote/);
    await expect(store.save({ hardState: hardState(1, 9), entries: [] })).rejects.toThrow(/past the last index/);
    await store.compact(snapshot(2, 1));
    await expect(store.save({ entries: entries(2, 4, 2) })).rejects.toThrow(/overwrite the snapshot/);
    // The refused writes changed nothing.
    expect([store.firstIndex(), store.lastIndex()]).toEqual([3, 3]);
    await store.close();
  });

  it("storage: compaction keeps the snapshot and the log after it across reopen", async () => {
    const dir = await dirs.make();
    const first = await openStore(dir);
    await first.store.save({ hardState: hardState(1, 8), entries: entries(1, 10, 1) });
    await first.store.compact(snapshot(6, 1));
    expect(COMPACTION_ENTRIES_KEPT).toBe(0);
    expect([first.store.firstIndex(), first.store.lastIndex()]).toEqual([7, 10]);
    await first.store.close();

    const { store, state } = await openStore(dir);
    expect(state.snapshot).toEqual(snapshot(6, 1));
    // A node sends the stored snapshot by reading it back.
    expect(await store.loadSnapshot({ term: 1, index: 6 })).toEqual(snapshot(6, 1));
    expect(state.entries).toEqual(entries(7, 10, 1));
    expect([store.firstIndex(), store.lastIndex()]).toEqual([7, 10]);
    await store.close();
  });

  it("storage: compaction can keep entries below the snapshot for slow followers", async () => {
    const dir = await dirs.make();
    const first = await openStore(dir);
    await first.store.save({ hardState: hardState(1, 10), entries: entries(1, 10, 1) });
    await first.store.compact(snapshot(8, 1), { entriesKept: 3 });
    expect(first.store.firstIndex()).toBe(6);
    await first.store.close();

    const { store, state } = await openStore(dir);
    // The core still gets only the log after the snapshot.
    expect(state.entries).toEqual(entries(9, 10, 1));
    expect([store.firstIndex(), store.lastIndex()]).toEqual([6, 10]);
    await store.close();
  });

  it("storage: compacting everything leaves an empty log after the snapshot", async () => {
    const dir = await dirs.make();
    const first = await openStore(dir);
    await first.store.save({ hardState: hardState(1, 5), entries: entries(1, 5, 1) });
    await first.store.compact(snapshot(5, 1));
    expect([first.store.firstIndex(), first.store.lastIndex()]).toEqual([6, 5]);
    await first.store.save({ entries: entries(6, 7, 1) });
    await first.store.close();
    const { store, state } = await openStore(dir);
    expect(state.entries).toEqual(entries(6, 7, 1));
    await store.close();
  });

  it("storage: a snapshot from the leader replaces the whole stored log", async () => {
    const dir = await dirs.make();
    const first = await openStore(dir);
    await first.store.save({ hardState: hardState(1, 3), entries: entries(1, 12, 1) });
    // The leader's snapshot at 20 (term 3) supersedes everything, including the divergent 4..12.
    await first.store.save({ hardState: hardState(3, 20), snapshot: snapshot(20, 3), entries: entries(21, 22, 3) });
    expect([first.store.firstIndex(), first.store.lastIndex()]).toEqual([21, 22]);
    await first.store.close();

    const { store, state } = await openStore(dir);
    expect(state.snapshot).toEqual(snapshot(20, 3));
    expect(state.entries).toEqual(entries(21, 22, 3));
    expect(state.hardState).toEqual(hardState(3, 20));
    await store.close();
  });

  it("storage: a snapshot from the leader below the log end still drops every older entry", async () => {
    const dir = await dirs.make();
    const first = await openStore(dir);
    await first.store.save({ hardState: hardState(1, 2), entries: entries(1, 12, 1) });
    await first.store.save({ hardState: hardState(2, 5), snapshot: snapshot(5, 2), entries: [] });
    expect([first.store.firstIndex(), first.store.lastIndex()]).toEqual([6, 5]);
    await first.store.close();
    const { store, state } = await openStore(dir);
    expect(state.entries).toEqual([]);
    expect(state.snapshot?.meta.index).toBe(5);
    await store.close();
  });

  it("storage: an out-of-date snapshot is refused with SnapshotOutOfDateError", async () => {
    const dir = await dirs.make();
    const { store } = await openStore(dir);
    await store.save({ hardState: hardState(1, 10), entries: entries(1, 10, 1) });
    await store.compact(snapshot(8, 1));
    const error = await store.compact(snapshot(7, 1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapshotOutOfDateError);
    expect(error).toMatchObject({ index: 7, currentIndex: 8 });
    await expect(store.save({ snapshot: snapshot(8, 1), entries: [] })).rejects.toBeInstanceOf(SnapshotOutOfDateError);
    await store.close();
  });

  it("storage: only the SNAPSHOTS_KEPT newest snapshot files remain", async () => {
    const dir = await dirs.make();
    const { store } = await openStore(dir);
    await store.save({ hardState: hardState(1, 40), entries: entries(1, 40, 1) });
    for (const index of [10, 20, 30, 40]) await store.compact(snapshot(index, 1));
    const files = (await readdir(join(dir, SNAPSHOT_DIR))).sort();
    expect(files).toEqual(["00000000000000000001-00000000000000000030.snap", "00000000000000000001-00000000000000000040.snap"]);
    await store.close();
  });

  it("storage: saves run in call order and resolve only once written", async () => {
    const dir = await dirs.make();
    const first = await openStore(dir);
    const pending = [];
    for (let index = 1; index <= 50; index++) {
      pending.push(first.store.save({ hardState: hardState(1, index - 1), entries: [entry(index, 1)] }));
    }
    await Promise.all(pending);
    await first.store.close();
    const { store, state } = await openStore(dir);
    expect(state.entries).toEqual(entries(1, 50, 1));
    expect(state.hardState.commit).toBe(49);
    await store.close();
  });

  it("storage: every call after close throws StorageClosedError", async () => {
    const dir = await dirs.make();
    const { store } = await openStore(dir);
    const save = store.save({ entries: entries(1, 1, 1) });
    const closed = store.close();
    await save; // A save issued before close still completes.
    await closed;
    await expect(store.save({ entries: entries(2, 2, 1) })).rejects.toBeInstanceOf(StorageClosedError);
    await expect(store.compact(snapshot(1, 1))).rejects.toBeInstanceOf(StorageClosedError);
    await expect(store.loadSnapshot({ term: 1, index: 1 })).rejects.toBeInstanceOf(StorageClosedError);
    expect(() => store.lastIndex()).toThrow(StorageClosedError);
    await store.close(); // Idempotent.
  });

  it("storage: after a failed write every call throws StorageFailedError with the cause", async () => {
    const dir = await dirs.make();
    const { store } = await openStore(dir);
    await store.save({ hardState: hardState(1, 1), entries: entries(1, 2, 1) });
    // Pull LevelDB out from under the store: the next synced write fails as a dying disk would.
    await (store as unknown as { db: { close(): Promise<void> } }).db.close();
    const error = await store.save({ entries: entries(3, 3, 1) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageFailedError);
    expect((error as StorageFailedError).cause).toMatchObject({ code: "LEVEL_DATABASE_NOT_OPEN" });
    // The store will not pretend later writes are durable.
    await expect(store.save({ entries: [] })).rejects.toBeInstanceOf(StorageFailedError);
    await expect(store.compact(snapshot(1, 1))).rejects.toBeInstanceOf(StorageFailedError);
    await store.close();
  });

  it("storage: a directory held by another store is refused with StorageLockedError", async () => {
    const dir = await dirs.make();
    const { store } = await openStore(dir);
    const error = await openStore(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageLockedError);
    expect((error as StorageLockedError).cause).toBeDefined();
    await store.close();
  });

  it("storage: a pino logger fits StorageLogger as it is", async () => {
    const dir = await dirs.make();
    const logger: StorageLogger = pino({ level: "silent" });
    const { store } = await LogStore.open(dir, { clusterId: "c", nodeId: nodeId("n1"), logger });
    await store.close();
  });
});
