import assert from "node:assert/strict";
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { LogIndex, Snapshot, SnapshotMeta, Term } from "../raft/types.js";
import type { StorageLogger } from "./logger.js";
import type { Decoded } from "./codec.js";
import { decodeSnapshotFile, decodeSnapshotFileSliced, encodeSnapshotHeaderSliced, type SnapshotToStore, snapshotChunks } from "./snapshot-codec.js";

/**
 * SNAPSHOTS_KEPT is how many snapshot files survive pruning. Two, because the log store writes a
 * new snapshot file before the LevelDB batch that makes it current: until that batch is synced the
 * previous file is the one the log refers to, and a crash in between must still find it. The
 * second file also gives recovery a fallback should the newest one rot on disk.
 */
export const SNAPSHOTS_KEPT = 2;

/** SNAPSHOT_DIR is the folder, inside the node's data directory, that holds snapshot files. */
export const SNAPSHOT_DIR = "snapshots";

/** NAME_DIGITS pads term and index in file names; 20 digits fit any u64, so names of one store always have the same width. */
const NAME_DIGITS = 20;
const SNAPSHOT_SUFFIX = ".snap";
const TEMP_SUFFIX = ".tmp";
const NAME_PATTERN = /^(\d{20})-(\d{20})\.snap$/;

/** SnapshotFile names one snapshot file by the term and index its name encodes. */
export interface SnapshotFile {
  readonly name: string;
  readonly term: Term;
  readonly index: LogIndex;
}

/** snapshotFileName is the file name of the snapshot with meta: "<term>-<index>.snap", fixed width. */
export function snapshotFileName(meta: Pick<SnapshotMeta, "term" | "index">): string {
  const pad = (n: number) => String(n).padStart(NAME_DIGITS, "0");
  return `${pad(meta.term)}-${pad(meta.index)}${SNAPSHOT_SUFFIX}`;
}

function parseFileName(name: string): SnapshotFile | undefined {
  const match = NAME_PATTERN.exec(name);
  if (match === null) return undefined;
  const term = Number(match[1]);
  const index = Number(match[2]);
  if (!Number.isSafeInteger(term) || !Number.isSafeInteger(index)) return undefined;
  return { name, term, index };
}

/** newestFirst orders by index, then term: a higher index always holds more of the log. */
function newestFirst(a: SnapshotFile, b: SnapshotFile): number {
  return b.index - a.index || b.term - a.term;
}

async function syncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * SnapshotStore keeps snapshots as files in `<dir>/snapshots/`. Contract: save() resolves only once
 * the file and its directory entry are durable; a file is complete and checksummed or it does not
 * exist under a ".snap" name (it is written under a temporary name and renamed).
 */
export class SnapshotStore {
  private constructor(
    readonly dir: string,
    private readonly logger: StorageLogger,
  ) {}

  /** open creates the folder when missing and removes temporary files a crash left behind. */
  static async open(dataDir: string, logger: StorageLogger): Promise<SnapshotStore> {
    const dir = join(dataDir, SNAPSHOT_DIR);
    const created = await mkdir(dir, { recursive: true });
    if (created !== undefined) await syncPath(dataDir);
    const store = new SnapshotStore(dir, logger);
    for (const name of await readdir(dir)) {
      if (!name.endsWith(TEMP_SUFFIX)) continue;
      logger.warn({ file: name }, "removing unfinished snapshot file left by a crash");
      await rm(join(dir, name), { force: true });
    }
    return store;
  }

  /** save writes the snapshot (its chunks in order, when it comes in chunks) to a temporary file, fsyncs it, renames it into place and fsyncs the folder. */
  async save(snapshot: SnapshotToStore): Promise<void> {
    const name = snapshotFileName(snapshot.meta);
    const temp = join(this.dir, name + TEMP_SUFFIX);
    const header = await encodeSnapshotHeaderSliced(snapshot);
    const handle = await open(temp, "w");
    try {
      await writeAll(handle, header);
      for (const chunk of snapshotChunks(snapshot)) await writeAll(handle, chunk);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, join(this.dir, name));
    // The rename is durable only once the directory itself is synced.
    await syncPath(this.dir);
  }

  /** list returns the snapshot files, newest first. */
  async list(): Promise<SnapshotFile[]> {
    const files: SnapshotFile[] = [];
    for (const name of await readdir(this.dir)) {
      const file = parseFileName(name);
      if (file !== undefined) files.push(file);
    }
    return files.sort(newestFirst);
  }

  /** loadNewest returns the newest valid snapshot with index <= indexMax; corrupt files are skipped with a warning. */
  async loadNewest(indexMax: LogIndex): Promise<Snapshot | undefined> {
    for (const file of await this.list()) {
      if (file.index > indexMax) continue;
      const snapshot = await this.read(file);
      if (snapshot !== undefined) return snapshot;
    }
    return undefined;
  }

  /**
   * load returns the snapshot with this term and index when its file is still here and sound
   * (undefined once pruned, or with a warning when corrupt). The checksum is checked a slice per
   * event-loop turn: a node reads a snapshot back to send it while it serves.
   */
  async load(meta: Pick<SnapshotMeta, "term" | "index">): Promise<Snapshot | undefined> {
    const file = { name: snapshotFileName(meta), term: meta.term, index: meta.index };
    let bytes: Buffer;
    try {
      bytes = await readFile(join(this.dir, file.name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    return this.check(file, await decodeSnapshotFileSliced(bytes));
  }

  private async read(file: SnapshotFile): Promise<Snapshot | undefined> {
    return this.check(file, decodeSnapshotFile(await readFile(join(this.dir, file.name))));
  }

  private check(file: SnapshotFile, decoded: Decoded<Snapshot>): Snapshot | undefined {
    if (!decoded.ok) {
      this.logger.warn({ file: file.name, reason: decoded.reason }, "skipping corrupt snapshot file");
      return undefined;
    }
    const { meta } = decoded.value;
    if (meta.index !== file.index || meta.term !== file.term) {
      this.logger.warn({ file: file.name, index: meta.index, term: meta.term }, "skipping snapshot whose name and contents disagree");
      return undefined;
    }
    return decoded.value;
  }

  /** removeNewerThan deletes snapshot files past index: files whose save never became current. */
  async removeNewerThan(index: LogIndex): Promise<void> {
    for (const file of await this.list()) {
      if (file.index <= index) continue;
      this.logger.warn({ file: file.name, currentIndex: index }, "removing snapshot file that never became current");
      await rm(join(this.dir, file.name), { force: true });
    }
  }

  /** prune deletes all but the SNAPSHOTS_KEPT newest snapshot files. */
  async prune(): Promise<void> {
    const files = await this.list();
    for (const file of files.slice(SNAPSHOTS_KEPT)) {
      await rm(join(this.dir, file.name), { force: true });
    }
  }
}

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    // A regular file never takes zero bytes without an error; asserting it bounds the loop.
    assert(bytesWritten > 0, "write made no progress");
    offset += bytesWritten;
  }
}
