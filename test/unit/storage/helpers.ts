import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Level } from "level";
import { type Entry, EntryKind, type HardState, nodeId, type Snapshot } from "../../../src/raft/types.js";
import { LEVELDB_DIR } from "../../../src/storage/db.js";
import { LogStore, type StorageLogger } from "../../../src/storage/index.js";

/** IDENTITY is the cluster and node the storage tests open their stores as. */
export const IDENTITY = { clusterId: "test-cluster", nodeId: nodeId("n1") } as const;

/** TempDirs hands out real temporary directories and removes them all in cleanup(). */
export class TempDirs {
  private readonly dirs: string[] = [];

  async make(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "raftmesh-storage-"));
    this.dirs.push(dir);
    return dir;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  }
}

/** entryData is the deterministic payload of the entry at index and term, so any reader can check it. */
export function entryData(index: number, term: number): Uint8Array {
  return new TextEncoder().encode(`entry ${index} term ${term}`);
}

/** entry makes a Normal entry with deterministic data. */
export function entry(index: number, term: number): Entry {
  return { index, term, kind: EntryKind.Normal, data: entryData(index, term) };
}

/** entries makes entries from..through, all in term. */
export function entries(from: number, through: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let index = from; index <= through; index++) out.push(entry(index, term));
  return out;
}

/** hardState makes a hard state voting for n1. */
export function hardState(term: number, commit: number): HardState {
  return { term, vote: nodeId("n1"), commit };
}

/** snapshot makes a snapshot at index and term with a recognisable payload. */
export function snapshot(index: number, term: number): Snapshot {
  return {
    meta: { index, term, conf: { voters: [nodeId("n1"), nodeId("n2"), nodeId("n3")], learners: [] } },
    data: new TextEncoder().encode(`state machine through ${index}`),
  };
}

/** RecordingLogger keeps every warning so tests can assert that recovery spoke up. */
export class RecordingLogger implements StorageLogger {
  readonly warnings: { fields: Record<string, unknown>; message: string }[] = [];
  readonly infos: { fields: Record<string, unknown>; message: string }[] = [];

  warn(fields: object, message: string): void {
    this.warnings.push({ fields: fields as Record<string, unknown>, message });
  }

  info(fields: object, message: string): void {
    this.infos.push({ fields: fields as Record<string, unknown>, message });
  }
}

/** openStore opens the store in dir as IDENTITY with the given logger. */
export function openStore(dir: string, logger: StorageLogger = new RecordingLogger()) {
  return LogStore.open(dir, { ...IDENTITY, logger });
}

/** withRawDb opens the store's LevelDB directly, to damage it the way a crash or a bad disk would. */
export async function withRawDb(dir: string, change: (db: Level<Buffer, Uint8Array>) => Promise<void>): Promise<void> {
  const db = new Level<Buffer, Uint8Array>(join(dir, LEVELDB_DIR), { keyEncoding: "buffer", valueEncoding: "view" });
  await db.open();
  try {
    await change(db);
  } finally {
    await db.close();
  }
}
