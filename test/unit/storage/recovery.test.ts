import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { nodeId } from "../../../src/raft/types.js";
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
import { entries, hardState, IDENTITY, openStore, RecordingLogger, snapshot, TempDirs, withRawDb } from "./helpers.js";

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

async function reopenExpectingTruncation(dir: string, fromIndex: number, expectedLast: number): Promise<void> {
  const logger = new RecordingLogger();
  const { store, state } = await openStore(dir, logger);
  expect(state.entries).toEqual(entries(1, expectedLast, 1));
  expect(store.lastIndex()).toBe(expectedLast);
  expect(logger.warnings).toHaveLength(1);
  expect(logger.warnings[0]).toMatchObject({ message: "truncated torn log tail", fields: { fromIndex } });
  // The log goes on from the truncation point, and the next open is clean.
  await store.save({ entries: entries(expectedLast + 1, expectedLast + 2, 1) });
  await store.close();
  const again = new RecordingLogger();
  const reopened = await openStore(dir, again);
  expect(reopened.state.entries).toEqual(entries(1, expectedLast + 2, 1));
  expect(again.warnings).toEqual([]);
  await reopened.store.close();
}

describe("LogStore recovery", () => {
  it("storage: garbage in the last entry past commit is truncated with a warning", async () => {
    const dir = await storeWith(10, 7);
    await withRawDb(dir, (db) => db.put(entryKey(10), new Uint8Array([1, 2, 3, 4, 5, 6, 7])));
    await reopenExpectingTruncation(dir, 10, 9);
  });

  it("storage: a flipped byte in the last entry past commit is truncated with a warning", async () => {
    const dir = await storeWith(10, 7);
    await flipByte(dir, 10, 12);
    await reopenExpectingTruncation(dir, 10, 9);
  });

  it("storage: a corrupt entry just past commit drops it and everything after it", async () => {
    const dir = await storeWith(10, 7);
    await flipByte(dir, 8, 25);
    await reopenExpectingTruncation(dir, 8, 7);
  });

  it("storage: a gap past commit is truncated from the missing index", async () => {
    const dir = await storeWith(10, 5);
    await withRawDb(dir, (db) => db.del(entryKey(7)));
    await reopenExpectingTruncation(dir, 7, 6);
  });

  it("storage: a record stored under the wrong index is treated as corrupt", async () => {
    const dir = await storeWith(10, 5);
    await withRawDb(dir, async (db) => {
      await db.put(entryKey(9), (await db.get(entryKey(10)))!);
    });
    await reopenExpectingTruncation(dir, 9, 8);
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
