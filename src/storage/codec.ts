import assert from "node:assert/strict";
import { type Entry, EntryKind, type HardState, type NodeId } from "../raft/types.js";
import { ByteReader, ByteReadError, ByteWriter } from "./bytes.js";
import { crc32c } from "./crc32c.js";

/**
 * Binary records for LevelDB values. Every record is `version u8 | fields | crc32c u32`, the CRC
 * covering everything before it, so a torn or bit-flipped value is told apart from a good one.
 * Records are asserted right before encoding and right after decoding: a record that passes its
 * CRC yet breaks an invariant was written wrong, which is a bug, and crashes.
 */

/** ENTRY_DATA_BYTES_MAX bounds one entry's data: 64 MiB matches the core's uncommitted-bytes limit, so no valid entry is larger. */
export const ENTRY_DATA_BYTES_MAX = 64 * 1024 * 1024;

/** NODE_ID_BYTES_MAX bounds a node id in UTF-8; ids are short names like "n1", and the vote field stores one in a u16-prefixed slot. */
export const NODE_ID_BYTES_MAX = 256;

/** JSON_RECORD_BYTES_MAX bounds metadata records, which hold a few ids and a configuration of at most a few hundred members. */
export const JSON_RECORD_BYTES_MAX = 1024 * 1024;

const ENTRY_VERSION = 1;
const HARD_STATE_VERSION = 1;
const JSON_VERSION = 1;
const CRC_BYTES = 4;
/** version, kind, term, index, data length. */
const ENTRY_HEADER_BYTES = 1 + 1 + 8 + 8 + 4;
/** version, term, commit, vote length. */
const HARD_STATE_HEADER_BYTES = 1 + 8 + 8 + 2;

/** Decoded is the outcome of reading a record back: a value, or why the bytes are not one. */
export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

const ENTRY_KINDS: readonly number[] = Object.values(EntryKind);
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** assertEntry crashes on an entry no valid log can hold. */
export function assertEntry(entry: Entry): void {
  assert(Number.isSafeInteger(entry.index) && entry.index >= 1, `entry index ${entry.index} invalid`);
  assert(Number.isSafeInteger(entry.term) && entry.term >= 1, `entry ${entry.index} term ${entry.term} invalid`);
  assert(ENTRY_KINDS.includes(entry.kind), `entry ${entry.index} kind ${entry.kind} invalid`);
  assert(entry.data instanceof Uint8Array, `entry ${entry.index} data is not bytes`);
  assert(entry.data.length <= ENTRY_DATA_BYTES_MAX, `entry ${entry.index} data ${entry.data.length} bytes too large`);
}

/** assertHardState crashes on a hard state no valid node can hold. */
export function assertHardState(state: HardState): void {
  assert(Number.isSafeInteger(state.term) && state.term >= 0, `hard state term ${state.term} invalid`);
  assert(Number.isSafeInteger(state.commit) && state.commit >= 0, `hard state commit ${state.commit} invalid`);
  assert(typeof state.vote === "string", "hard state vote is not a string");
  assert(utf8.encode(state.vote).length <= NODE_ID_BYTES_MAX, "hard state vote too long");
}

function sealed(writer: ByteWriter): Uint8Array {
  const body = writer.bytes.subarray(0, writer.position);
  writer.u32(crc32c(body));
  return writer.finish();
}

/** checked verifies the trailing CRC and the version byte, then runs read over the fields. */
function checked<T>(bytes: Uint8Array, version: number, read: (reader: ByteReader) => T): Decoded<T> {
  if (bytes.length < 1 + CRC_BYTES) return { ok: false, reason: `record of ${bytes.length} bytes is too short` };
  const body = bytes.subarray(0, bytes.length - CRC_BYTES);
  const stored = new DataView(bytes.buffer, bytes.byteOffset + body.length, CRC_BYTES).getUint32(0);
  if (crc32c(body) !== stored) return { ok: false, reason: "checksum mismatch" };
  const reader = new ByteReader(body);
  try {
    const found = reader.u8();
    if (found !== version) return { ok: false, reason: `record version ${found}, expected ${version}` };
    const value = read(reader);
    if (reader.remaining !== 0) return { ok: false, reason: `${reader.remaining} trailing bytes` };
    return { ok: true, value };
  } catch (error) {
    if (error instanceof ByteReadError) return { ok: false, reason: error.message };
    throw error;
  }
}

/** encodeEntry encodes one log entry as a LevelDB value. */
export function encodeEntry(entry: Entry): Uint8Array {
  assertEntry(entry);
  const writer = new ByteWriter(ENTRY_HEADER_BYTES + entry.data.length + CRC_BYTES);
  writer.u8(ENTRY_VERSION);
  writer.u8(entry.kind);
  writer.u64(entry.term);
  writer.u64(entry.index);
  writer.u32(entry.data.length);
  writer.raw(entry.data);
  return sealed(writer);
}

/** decodeEntry reads a value written by encodeEntry; a CRC or framing failure is reported, not thrown. */
export function decodeEntry(bytes: Uint8Array): Decoded<Entry> {
  const decoded = checked(bytes, ENTRY_VERSION, (reader) => {
    const kind = reader.u8() as EntryKind;
    const term = reader.u64();
    const index = reader.u64();
    const length = reader.u32();
    if (length > ENTRY_DATA_BYTES_MAX) throw new ByteReadError(`data length ${length} over limit`);
    return { term, index, kind, data: reader.raw(length) };
  });
  if (decoded.ok) assertEntry(decoded.value);
  return decoded;
}

/** encodeHardState encodes the hard state as a LevelDB value. */
export function encodeHardState(state: HardState): Uint8Array {
  assertHardState(state);
  const vote = utf8.encode(state.vote);
  const writer = new ByteWriter(HARD_STATE_HEADER_BYTES + vote.length + CRC_BYTES);
  writer.u8(HARD_STATE_VERSION);
  writer.u64(state.term);
  writer.u64(state.commit);
  writer.u16(vote.length);
  writer.raw(vote);
  return sealed(writer);
}

/** decodeHardState reads a value written by encodeHardState. */
export function decodeHardState(bytes: Uint8Array): Decoded<HardState> {
  const decoded = checked(bytes, HARD_STATE_VERSION, (reader) => {
    const term = reader.u64();
    const commit = reader.u64();
    const length = reader.u16();
    if (length > NODE_ID_BYTES_MAX) throw new ByteReadError(`vote length ${length} over limit`);
    return { term, commit, vote: decodeUtf8(reader.raw(length)) as NodeId };
  });
  if (decoded.ok) assertHardState(decoded.value);
  return decoded;
}

/** decodeUtf8 decodes strict UTF-8 and reports bad bytes as a ByteReadError, i.e. as a bad record. */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    throw new ByteReadError("invalid UTF-8");
  }
}

/** encodeJsonRecord encodes a small JSON value (metadata) with a CRC. */
export function encodeJsonRecord(value: unknown): Uint8Array {
  const json = utf8.encode(JSON.stringify(value));
  assert(json.length <= JSON_RECORD_BYTES_MAX, `metadata record of ${json.length} bytes too large`);
  const writer = new ByteWriter(1 + 4 + json.length + CRC_BYTES);
  writer.u8(JSON_VERSION);
  writer.u32(json.length);
  writer.raw(json);
  return sealed(writer);
}

/** decodeJsonRecord reads a value written by encodeJsonRecord; the caller checks the shape. */
export function decodeJsonRecord(bytes: Uint8Array): Decoded<unknown> {
  return checked(bytes, JSON_VERSION, (reader) => {
    const length = reader.u32();
    if (length > JSON_RECORD_BYTES_MAX) throw new ByteReadError(`JSON length ${length} over limit`);
    return parseJson(decodeUtf8(reader.raw(length)));
  });
}

/** parseJson parses text and reports a syntax error as a ByteReadError, i.e. as a bad record. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ByteReadError("invalid JSON");
  }
}
