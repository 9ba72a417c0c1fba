import { readdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SNAPSHOT_DIR, SNAPSHOTS_KEPT, SnapshotStore, snapshotFileName } from "../../../src/storage/snapshot-store.js";
import { RecordingLogger, snapshot, TempDirs } from "./helpers.js";

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

describe("SnapshotStore", () => {
  it("storage: file names encode term and index at a fixed width", () => {
    expect(snapshotFileName({ term: 3, index: 1234 })).toBe("00000000000000000003-00000000000000001234.snap");
    expect(snapshotFileName({ term: 1, index: Number.MAX_SAFE_INTEGER })).toHaveLength(
      snapshotFileName({ term: 1, index: 1 }).length,
    );
  });

  it("storage: the newest valid snapshot at or below a bound is loaded", async () => {
    const dir = await dirs.make();
    const store = await SnapshotStore.open(dir, new RecordingLogger());
    for (const index of [5, 50, 500]) await store.save(snapshot(index, 2));
    expect(await store.loadNewest(Number.MAX_SAFE_INTEGER)).toEqual(snapshot(500, 2));
    expect(await store.loadNewest(499)).toEqual(snapshot(50, 2));
    expect(await store.loadNewest(4)).toBeUndefined();
  });

  it("storage: load reads one snapshot back by term and index; a pruned, unknown or corrupt one is undefined", async () => {
    const dir = await dirs.make();
    const logger = new RecordingLogger();
    const store = await SnapshotStore.open(dir, logger);
    await store.save(snapshot(5, 1));
    expect(await store.load({ term: 1, index: 5 })).toEqual(snapshot(5, 1));
    expect(await store.load({ term: 2, index: 5 })).toBeUndefined();
    expect(await store.load({ term: 1, index: 6 })).toBeUndefined();
    for (const index of [6, 7]) await store.save(snapshot(index, 1));
    await store.prune();
    expect(SNAPSHOTS_KEPT).toBe(2);
    expect(await store.load({ term: 1, index: 5 })).toBeUndefined();
    expect(await store.load({ term: 1, index: 7 })).toEqual(snapshot(7, 1));
    expect(logger.warnings).toEqual([]);
    await writeFile(join(dir, SNAPSHOT_DIR, snapshotFileName({ term: 1, index: 7 })), "not a snapshot");
    expect(await store.load({ term: 1, index: 7 })).toBeUndefined();
    expect(logger.warnings.map((w) => w.message)).toEqual(["skipping corrupt snapshot file"]);
  });

  it("storage: a corrupt or misnamed snapshot is skipped with a warning", async () => {
    const dir = await dirs.make();
    const logger = new RecordingLogger();
    const store = await SnapshotStore.open(dir, logger);
    await store.save(snapshot(5, 1));
    await writeFile(join(dir, SNAPSHOT_DIR, snapshotFileName({ term: 1, index: 9 })), "not a snapshot");
    // A valid file under another snapshot's name: its contents say index 6, its name says 7.
    await store.save(snapshot(6, 1));
    await rename(join(dir, SNAPSHOT_DIR, snapshotFileName({ term: 1, index: 6 })), join(dir, SNAPSHOT_DIR, snapshotFileName({ term: 1, index: 7 })));
    expect(await store.loadNewest(100)).toEqual(snapshot(5, 1));
    expect(logger.warnings.map((w) => w.message)).toEqual([
      "skipping corrupt snapshot file",
      "skipping snapshot whose name and contents disagree",
    ]);
  });

  it("storage: pruning keeps the SNAPSHOTS_KEPT newest files", async () => {
    const dir = await dirs.make();
    const store = await SnapshotStore.open(dir, new RecordingLogger());
    for (const index of [1, 2, 3, 4, 5]) await store.save(snapshot(index, 1));
    await store.prune();
    expect(SNAPSHOTS_KEPT).toBe(2);
    const names = (await readdir(join(dir, SNAPSHOT_DIR))).sort();
    expect(names).toEqual([snapshotFileName({ term: 1, index: 4 }), snapshotFileName({ term: 1, index: 5 })]);
  });
});
