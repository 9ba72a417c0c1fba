/**
 * Checks LevelDB's own files before LevelDB opens them. LevelDB as the `level` package opens it
 * trusts its files: it replays the write-ahead log without paranoid checks, so a record damaged on
 * disk is skipped in silence (a synced batch — a vote, entries — vanishes), and it reads table
 * blocks without verifying their checksums, so a damaged block can abort the process in an
 * assertion. Our own records carry checksums (codec.ts), but a batch that vanishes whole leaves
 * nothing to check. So, at open, every log file (write-ahead logs and MANIFESTs) and every table is
 * read and every checksum LevelDB wrote is verified; any damage refuses the start, naming the file
 * and the offset. Formats: leveldb doc/log_format.md and doc/table_format.md.
 *
 * The one thing accepted is what a power loss leaves: a log whose last record is cut short by the
 * end of the file (its write never completed, so it was never acknowledged). LevelDB and etcd read
 * it the same way. Known limit: damage to the length field of a log's very last record that makes
 * it run past the end of the file looks exactly like that, and is read the same way.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { crc32c } from "./crc32c.js";
import { CorruptFileError } from "./errors.js";

/** LOG_BLOCK_BYTES and LOG_HEADER_BYTES are fixed by LevelDB's log format. */
const LOG_BLOCK_BYTES = 32_768;
const LOG_HEADER_BYTES = 7;
/** Record types of the log format: a whole record, or its first, middle and last fragments. */
const FULL = 1;
const FIRST = 2;
const MIDDLE = 3;
const LAST = 4;
/** CRC_MASK_DELTA is LevelDB's constant for masking stored CRCs. */
const CRC_MASK_DELTA = 0xa282ead8;
/** TABLE_FOOTER_BYTES and TABLE_MAGIC are fixed by LevelDB's table format. */
const TABLE_FOOTER_BYTES = 48;
const TABLE_MAGIC = 0xdb4775248b80fb57n;
/** BLOCK_TRAILER_BYTES: a type byte (0 none, 1 snappy) and a masked CRC after every table block. */
const BLOCK_TRAILER_BYTES = 5;

function unmask(masked: number): number {
  const rot = (masked - CRC_MASK_DELTA) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}

/** checkLevelDbFiles verifies every log and table file in LevelDB's folder; a folder not created yet has nothing to check. */
export async function checkLevelDbFiles(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  const current = names.includes("CURRENT") ? (await readFile(join(dir, "CURRENT"), "latin1")).trim() : undefined;
  if (current !== undefined && !(/^MANIFEST-\d+$/.test(current) && names.includes(current))) {
    throw new CorruptFileError(join(dir, "CURRENT"), 0, `names ${JSON.stringify(current.slice(0, 40))}, which is not a manifest in the folder`);
  }
  for (const name of names.sort()) {
    const path = join(dir, name);
    const isLog = name.endsWith(".log") || name.startsWith("MANIFEST-");
    const isTable = name.endsWith(".ldb") || name.endsWith(".sst");
    if (!isLog && !isTable) continue;
    const bytes = await readIfPresent(path);
    // Gone since the listing: another process holds this store and compacted it; its open fails on the lock.
    if (bytes === undefined) continue;
    if (isLog) checkLogFile(path, bytes);
    else checkTableFile(path, bytes);
  }
}

async function readIfPresent(path: string): Promise<Uint8Array | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** checkLogFile verifies every record of a log-format file; only a last record cut short by the end of the file is accepted. */
export function checkLogFile(path: string, bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let inFragments = false;
  let at = 0;
  while (at < bytes.length) {
    const leftInBlock = LOG_BLOCK_BYTES - (at % LOG_BLOCK_BYTES);
    if (leftInBlock < LOG_HEADER_BYTES) {
      // LevelDB pads a block's last few bytes with zeros.
      for (let i = at; i < Math.min(at + leftInBlock, bytes.length); i++) {
        if (bytes[i] !== 0) throw new CorruptFileError(path, i, "non-zero block padding");
      }
      at += leftInBlock;
      continue;
    }
    if (bytes.length - at < LOG_HEADER_BYTES) return; // a header cut short by the end of the file: a torn last write
    const stored = view.getUint32(at, true);
    const length = view.getUint16(at + 4, true);
    const type = bytes[at + 6] as number;
    if (stored === 0 && length === 0 && type === 0) {
      // Zeros where a record should start: only a preallocated, never written tail looks like this.
      for (let i = at; i < bytes.length; i++) if (bytes[i] !== 0) throw new CorruptFileError(path, at, "an empty record header followed by data");
      return;
    }
    if (LOG_HEADER_BYTES + length > leftInBlock) throw new CorruptFileError(path, at, `record length ${length} runs past its block`);
    const end = at + LOG_HEADER_BYTES + length;
    if (end > bytes.length) return; // cut short by the end of the file: a torn last write, never acknowledged
    if (type < FULL || type > LAST) throw new CorruptFileError(path, at, `unknown record type ${type}`);
    const crc = crc32c(bytes.subarray(at + LOG_HEADER_BYTES, end), crc32c(bytes.subarray(at + 6, at + 7)));
    if (crc !== unmask(stored)) throw new CorruptFileError(path, at, "record checksum mismatch");
    if ((type === FULL || type === FIRST) && inFragments) throw new CorruptFileError(path, at, "a new record inside a fragmented one");
    if ((type === MIDDLE || type === LAST) && !inFragments) throw new CorruptFileError(path, at, "a record fragment without its first part");
    inFragments = type === FIRST || type === MIDDLE;
    at = end;
  }
}

interface BlockHandle {
  readonly offset: number;
  readonly size: number;
}

/** readVarint reads a LevelDB varint (up to 64 bits, kept exact to 2^53) at `at`. */
function readVarint(bytes: Uint8Array, at: number, limit: number): { value: number; next: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = at; i < limit && i < at + 10; i++) {
    const b = bytes[i] as number;
    value += (b & 0x7f) * scale;
    if (value > Number.MAX_SAFE_INTEGER) return undefined;
    if ((b & 0x80) === 0) return { value, next: i + 1 };
    scale *= 128;
  }
  return undefined;
}

/** checkTableFile verifies a table's footer, its index and metaindex blocks and every data block they point at. */
export function checkTableFile(path: string, bytes: Uint8Array): void {
  if (bytes.length < TABLE_FOOTER_BYTES) throw new CorruptFileError(path, 0, "shorter than a table footer");
  const footerAt = bytes.length - TABLE_FOOTER_BYTES;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getBigUint64(bytes.length - 8, true) !== TABLE_MAGIC) throw new CorruptFileError(path, bytes.length - 8, "bad table magic number");
  const handles: BlockHandle[] = [];
  let at = footerAt;
  for (let i = 0; i < 2; i++) {
    const offset = readVarint(bytes, at, footerAt + 40);
    const size = offset && readVarint(bytes, offset.next, footerAt + 40);
    if (!offset || !size) throw new CorruptFileError(path, at, "unreadable block handle in the footer");
    handles.push({ offset: offset.value, size: size.value });
    at = size.next;
  }
  const [metaindex, index] = handles as [BlockHandle, BlockHandle];
  // The two handle blocks are checked as they are parsed; the blocks they name only need their checksums.
  for (const handle of [...blockHandles(path, bytes, metaindex, footerAt), ...blockHandles(path, bytes, index, footerAt)]) {
    checkBlock(path, bytes, handle, footerAt);
  }
}

/**
 * checkBlock checks one block's checksum (over the stored, possibly compressed, bytes) and its
 * compression type, and returns the stored contents and type. Data blocks need no more: a block
 * whose checksum holds is the block LevelDB wrote.
 */
function checkBlock(path: string, bytes: Uint8Array, handle: BlockHandle, limit: number): { contents: Uint8Array; compressed: boolean } {
  if (handle.offset + handle.size + BLOCK_TRAILER_BYTES > limit) throw new CorruptFileError(path, handle.offset, "block runs past the table's data");
  const contents = bytes.subarray(handle.offset, handle.offset + handle.size);
  const trailer = handle.offset + handle.size;
  const type = bytes[trailer] as number;
  const stored = new DataView(bytes.buffer, bytes.byteOffset + trailer + 1, 4).getUint32(0, true);
  if (crc32c(bytes.subarray(trailer, trailer + 1), crc32c(contents)) !== unmask(stored)) throw new CorruptFileError(path, handle.offset, "block checksum mismatch");
  if (type !== 0 && type !== 1) throw new CorruptFileError(path, trailer, `unknown block compression ${type}`);
  return { contents, compressed: type === 1 };
}

/** blockHandles reads a block whose entries' values are block handles (an index or metaindex block). */
function blockHandles(path: string, bytes: Uint8Array, handle: BlockHandle, limit: number): BlockHandle[] {
  const stored = checkBlock(path, bytes, handle, limit);
  const block = stored.compressed ? snappyDecompress(stored.contents) : stored.contents;
  if (block === undefined) throw new CorruptFileError(path, handle.offset, "block does not decompress");
  if (block.length < 4) throw new CorruptFileError(path, handle.offset, "block too short for its restart count");
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const restarts = view.getUint32(block.length - 4, true);
  const entriesEnd = block.length - 4 - 4 * restarts;
  if (restarts === 0 || entriesEnd < 0) throw new CorruptFileError(path, handle.offset, "bad restart count");
  const out: BlockHandle[] = [];
  let at = 0;
  while (at < entriesEnd) {
    const shared = readVarint(block, at, entriesEnd);
    const unshared = shared && readVarint(block, shared.next, entriesEnd);
    const valueLength = unshared && readVarint(block, unshared.next, entriesEnd);
    if (!shared || !unshared || !valueLength) throw new CorruptFileError(path, handle.offset, "unreadable block entry");
    const valueAt = valueLength.next + unshared.value;
    const valueEnd = valueAt + valueLength.value;
    if (valueEnd > entriesEnd) throw new CorruptFileError(path, handle.offset, "block entry runs past its block");
    const offset = readVarint(block, valueAt, valueEnd);
    const size = offset && readVarint(block, offset.next, valueEnd);
    if (!offset || !size) throw new CorruptFileError(path, handle.offset, "unreadable block handle");
    out.push({ offset: offset.value, size: size.value });
    at = valueEnd;
  }
  return out;
}

/** snappyDecompress decodes a raw snappy block (format_description.txt of google/snappy); undefined when malformed. */
export function snappyDecompress(input: Uint8Array): Uint8Array | undefined {
  const header = readVarint(input, 0, input.length);
  if (header === undefined || header.value > 64 * 1024 * 1024) return undefined;
  const out = new Uint8Array(header.value);
  let o = 0;
  let i = header.next;
  while (i < input.length) {
    const tag = input[i++] as number;
    const kind = tag & 3;
    if (kind === 0) {
      let len = (tag >>> 2) + 1;
      if (len > 60) {
        const extra = len - 60;
        if (i + extra > input.length) return undefined;
        len = 0;
        for (let k = 0; k < extra; k++) len += (input[i + k] as number) * 2 ** (8 * k);
        len += 1;
        i += extra;
      }
      if (i + len > input.length || o + len > out.length) return undefined;
      out.set(input.subarray(i, i + len), o);
      i += len;
      o += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      if (i + 1 > input.length) return undefined;
      len = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | (input[i] as number);
      i += 1;
    } else if (kind === 2) {
      if (i + 2 > input.length) return undefined;
      len = (tag >>> 2) + 1;
      offset = (input[i] as number) | ((input[i + 1] as number) << 8);
      i += 2;
    } else {
      if (i + 4 > input.length) return undefined;
      len = (tag >>> 2) + 1;
      offset = new DataView(input.buffer, input.byteOffset + i, 4).getUint32(0, true);
      i += 4;
    }
    if (offset === 0 || offset > o || o + len > out.length) return undefined;
    for (let k = 0; k < len; k++, o++) out[o] = out[o - offset] as number;
  }
  return o === out.length ? out : undefined;
}
