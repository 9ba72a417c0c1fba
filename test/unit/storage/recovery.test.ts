import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { nodeId } from "../../../src/raft/types.js";
import { encodeEntry } from "../../../src/storage/codec.js";
import { entryKey, HARD_STATE_KEY } from "../../../src/storage/keys.js";
import {
  ClusterMismatchError,
  CorruptLogError,
  CorruptSnapshotError,
  CorruptStateError,
  LogStore,
  SNAPSHOT_DIR,
} from "../../../src/storage/index.js";
import { snapshotFileName } from "../../../src/storage/snapshot-store.js";
import { entries, entry, hardState, IDENTITY, openStore, RecordingLogger, snapshot, TempDirs, withRawDb } from "./helpers.js";

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

/** storeWith leaves a closed store holding entries 1..last in term 1 with the given commit index. */
async function storeWith(last: number, commit: number): Promise<string> {
  const dir = await dirs.make();
  const { store } = await openStore(dir);
  await store.save({ hardState: hardState(1, commit), entries: entries(1, last, 1) });
  await store.close();
  return dir;
}

async function flipByte(dir: string, index: number, offset: number): Promise<void> {
  await withRawDb(dir, async (db) => {
    const value = await db.get(entryKey(index));
    const damaged = Buffer.from(value!);
    damaged[offset]! ^= 0x40;
    await db.put(entryKey(index), damaged);
  });
}

/** dump is every key and value of the store's LevelDB, to show that a refusal changed nothing. */
async function dump(dir: string): Promise<string[]> {
  const rows: string[] = [];
  await withRawDb(dir, async (db) => {
    for await (const [key, value] of db.iterator()) rows.push(`${key.toString("hex")}=${Buffer.from(value).toString("hex")}`);
  });
  return rows;
}

/**
 * reopenExpectingRefusal checks that a fault past the commit index refuses to start, naming the
 * index: LevelDB applies a batch whole or not at all, so such a fault is damage to synced data
 * that may be committed on other nodes, never a torn write to cut off. Nothing may be deleted.
 */
async function reopenExpectingRefusal(dir: string, index: number, commit: number): Promise<void> {
  const before = await dump(dir);
  const logger = new RecordingLogger();
  const error = await openStore(dir, logger).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(CorruptLogError);
  expect(error).toMatchObject({ index, committedIndex: commit });
  expect((error as Error).message).toContain(`log entry ${index} is corrupt`);
  expect((error as Error).message).toContain(`above this node's commit index ${commit}`);
  expect(logger.warnings).toEqual([]);
  expect(await dump(dir)).toEqual(before);
  // It keeps refusing: nothing was repaired behind the operator's back.
  await expect(openStore(dir)).rejects.toMatchObject({ name: "CorruptLogError", index });
}

describe("LogStore recovery", () => {
  it("storage: garbage in the last entry past commit refuses to start naming the index (no truncation)", async () => {
    const dir = await storeWith(10, 7);
    await withRawDb(dir, (db) => db.put(entryKey(10), new Uint8Array([1, 2, 3, 4, 5, 6, 7])));
    await reopenExpectingRefusal(dir, 10, 7);
  });

  it("storage: a flipped byte in the last entry past commit refuses to start naming the index", async () => {
    const dir = await storeWith(10, 7);
    await flipByte(dir, 10, 12);
    await reopenExpectingRefusal(dir, 10, 7);
  });

  it("storage: a corrupt entry just past commit refuses to start and keeps every later entry", async () => {
    const dir = await storeWith(10, 7);
    await flipByte(dir, 8, 25);
    await reopenExpectingRefusal(dir, 8, 7);
  });

  it("storage: a gap past commit refuses to start naming the missing index", async () => {
    const dir = await storeWith(10, 5);
    await withRawDb(dir, (db) => db.del(entryKey(7)));
    await reopenExpectingRefusal(dir, 7, 5);
  });

  it("storage: a record stored under the wrong index past commit refuses to start", async () => {
    const dir = await storeWith(10, 5);
    await withRawDb(dir, async (db) => {
      await db.put(entryKey(9), (await db.get(entryKey(10)))!);
    });
    await reopenExpectingRefusal(dir, 9, 5);
  });

  it("storage: a term that goes down past commit refuses to start", async () => {
    const dir = await dirs.make();
    const { store } = await openStore(dir);
    await store.save({ hardState: hardState(3, 4), entries: [...entries(1, 6, 2), ...entries(7, 8, 3)] });
    await store.close();
    await withRawDb(dir, (db) => db.put(entryKey(8), encodeEntry(entry(8, 1))));
    await reopenExpectingRefusal(dir, 8, 4);
  });

  it("storage: a log that simply ends past commit (a write that never happened) opens cleanly", async () => {
    // A crash in the middle of a save leaves no trace: LevelDB replays its log only up to the last
    // whole batch. What recovery sees is a shorter, intact log, which needs no repair.
    const dir = await storeWith(10, 4);
    const logger = new RecordingLogger();
    const { store, state } = await openStore(dir, logger);
    expect(state.entries).toEqual(entries(1, 10, 1));
    expect(logger.warnings).toEqual([]);
    await store.close();
  });

  it("storage: a corrupt committed entry refuses to start with CorruptLogError naming the index", async () => {
    const dir = await storeWith(10, 7);
    await flipByte(dir, 4, 30);
    const error = await openStore(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptLogError);
    expect(error).toMatchObject({ index: 4, reason: "checksum mismatch" });
    expect((error as Error).message).toContain("entry 4");
    // Refusing must not have changed anything: the damaged entry and the tail are still there.
    await withRawDb(dir, async (db) => {
      expect(await db.get(entryKey(10))).toBeDefined();
    });
  });

  it("storage: corruption at exactly the commit index refuses to start", async () => {
    const dir = await storeWith(10, 7);
    await flipByte(dir, 7, 0);
    await expect(openStore(dir)).rejects.toMatchObject({ name: "CorruptLogError", index: 7 });
  });

  it("storage: a missing committed entry refuses to start with CorruptLogError", async () => {
    const dir = await storeWith(10, 7);
    await withRawDb(dir, (db) => db.del(entryKey(3)));
    await expect(openStore(dir)).rejects.toMatchObject({ name: "CorruptLogError", index: 3 });
  });

  it("storage: a log cut short below the commit index refuses to start", async () => {
    const dir = await storeWith(10, 10);
    await withRawDb(dir, async (db) => {
      await db.del(entryKey(9));
      await db.del(entryKey(10));
    });
    await expect(openStore(dir)).rejects.toMatchObject({ name: "CorruptLogError", index: 9 });
  });

  it("storage: a corrupt hard state refuses to start with CorruptStateError", async () => {
    const dir = await storeWith(3, 1);
    await withRawDb(dir, async (db) => {
      const damaged = Buffer.from((await db.get(HARD_STATE_KEY))!);
      damaged[2]! ^= 1;
      await db.put(HARD_STATE_KEY, damaged);
    });
    await expect(openStore(dir)).rejects.toMatchObject({ name: "CorruptStateError", record: "hard state" });
    await expect(openStore(dir)).rejects.toBeInstanceOf(CorruptStateError);
  });

  it("storage: another cluster's directory is refused with ClusterMismatchError naming both ids", async () => {
    const dir = await storeWith(3, 1);
    const error = await LogStore.open(dir, { clusterId: "other-cluster", nodeId: IDENTITY.nodeId, logger: new RecordingLogger() }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ClusterMismatchError);
    expect(error).toMatchObject({
      expected: { clusterId: "other-cluster", nodeId: "n1" },
      found: { clusterId: "test-cluster", nodeId: "n1" },
    });
    expect((error as Error).message).toContain("other-cluster");
    expect((error as Error).message).toContain("test-cluster");
    // The refused directory is still usable by its owner.
    const { store, state } = await openStore(dir);
    expect(state.entries).toHaveLength(3);
    await store.close();
  });

  it("storage: another node's directory is refused with ClusterMismatchError", async () => {
    const dir = await storeWith(3, 1);
    const open = LogStore.open(dir, { clusterId: IDENTITY.clusterId, nodeId: nodeId("n2"), logger: new RecordingLogger() });
    await expect(open).rejects.toMatchObject({ name: "ClusterMismatchError", found: { nodeId: "n1" }, expected: { nodeId: "n2" } });
  });

  it("storage: a corrupt current snapshot falls back to an older one when the log still reaches it", async () => {
    const dir = await dirs.make();
    const first = await openStore(dir);
    await first.store.save({ hardState: hardState(1, 30), entries: entries(1, 30, 1) });
    await first.store.compact(snapshot(10, 1), { entriesKept: 100 });
    await first.store.compact(snapshot(20, 1), { entriesKept: 100 });
    await first.store.close();
    const newest = join(dir, SNAPSHOT_DIR, snapshotFileName({ term: 1, index: 20 }));
    const bytes = await readFile(newest);
    bytes[bytes.length - 2]! ^= 1;
    await writeFile(newest, bytes);

    const logger = new RecordingLogger();
    const { store, state } = await openStore(dir, logger);
    expect(state.snapshot).toEqual(snapshot(10, 1));
    expect(state.entries).toEqual(entries(11, 30, 1));
    expect(logger.warnings.map((w) => w.message)).toContain("skipping corrupt snapshot file");
    expect(logger.warnings.map((w) => w.message)).toContain("current snapshot unusable; falling back to an older one and the stored log");
    await store.close();
  });

  it("storage: a corrupt current snapshot with no way back refuses to start with CorruptSnapshotError", async () => {
    const dir = await dirs.make();
    const first = await openStore(dir);
    await first.store.save({ hardState: hardState(1, 30), entries: entries(1, 30, 1) });
    await first.store.compact(snapshot(20, 1));
    await first.store.close();
    const file = join(dir, SNAPSHOT_DIR, snapshotFileName({ term: 1, index: 20 }));
    await writeFile(file, (await readFile(file)).subarray(0, 30));
    const error = await openStore(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptSnapshotError);
    expect(error).toMatchObject({ index: 20, term: 1 });
  });

  it("storage: temporary and never-current snapshot files left by a crash are removed", async () => {
    const dir = await dirs.make();
    const first = await openStore(dir);
    await first.store.save({ hardState: hardState(1, 30), entries: entries(1, 30, 1) });
    await first.store.compact(snapshot(10, 1));
    await first.store.close();
    const snapDir = join(dir, SNAPSHOT_DIR);
    // A crash mid-write leaves a temp file; a crash between file and batch leaves a newer complete file.
    await writeFile(join(snapDir, `${snapshotFileName({ term: 1, index: 25 })}.tmp`), "half a snapshot");
    await writeFile(join(snapDir, snapshotFileName({ term: 1, index: 20 })), "never made current");

    const logger = new RecordingLogger();
    const { store, state } = await openStore(dir, logger);
    expect(state.snapshot?.meta.index).toBe(10);
    expect(await readdir(snapDir)).toEqual([snapshotFileName({ term: 1, index: 10 })]);
    expect(logger.warnings.map((w) => w.message)).toEqual([
      "removing unfinished snapshot file left by a crash",
      "removing snapshot file that never became current",
    ]);
    await store.close();
  });
});
