import assert from "node:assert/strict";
import type { Snapshot } from "../raft/types.js";
import { ByteReader, ByteReadError, ByteWriter } from "./bytes.js";
import { type Decoded, decodeUtf8, JSON_RECORD_BYTES_MAX, parseJson } from "./codec.js";
import { crc32c } from "./crc32c.js";
import { parseSnapshotMeta, snapshotMetaJson } from "./meta.js";

/**
 * Snapshot file layout:
 *
 *   magic "RMSNAP" | version u8 | meta JSON length u32 | meta JSON | data length u64 | crc32c u32 | data
 *
 * The CRC covers every byte of the file except itself (header before it, then the data), so a
 * file cut short or damaged anywhere is rejected as a whole.
 */

/** SNAPSHOT_DATA_BYTES_MAX bounds a snapshot's data: it is read whole into memory, and fs.readFile refuses files over 2 GiB, so 1 GiB leaves headroom. */
export const SNAPSHOT_DATA_BYTES_MAX = 1024 * 1024 * 1024;

const MAGIC = Buffer.from("RMSNAP");
const SNAPSHOT_VERSION = 1;
const utf8 = new TextEncoder();

/** encodeSnapshotHeader returns the bytes that precede snapshot.data in its file, CRC included. */
export function encodeSnapshotHeader(snapshot: Snapshot): Uint8Array {
  assert(snapshot.meta.index >= 1, `snapshot index ${snapshot.meta.index} invalid`);
  assert(snapshot.meta.term >= 1, `snapshot term ${snapshot.meta.term} invalid`);
  assert(snapshot.data.length <= SNAPSHOT_DATA_BYTES_MAX, `snapshot data ${snapshot.data.length} bytes too large`);
  const meta = utf8.encode(JSON.stringify(snapshotMetaJson(snapshot.meta)));
  assert(meta.length <= JSON_RECORD_BYTES_MAX, "snapshot metadata too large");
  const writer = new ByteWriter(MAGIC.length + 1 + 4 + meta.length + 8 + 4);
  writer.raw(MAGIC);
  writer.u8(SNAPSHOT_VERSION);
  writer.u32(meta.length);
  writer.raw(meta);
  writer.u64(snapshot.data.length);
  const crc = crc32c(snapshot.data, crc32c(writer.bytes.subarray(0, writer.position)));
  writer.u32(crc);
  return writer.finish();
}

/** decodeSnapshotFile reads a whole snapshot file; the returned data is a view into bytes, not a copy. */
export function decodeSnapshotFile(bytes: Uint8Array): Decoded<Snapshot> {
  try {
    const reader = new ByteReader(bytes);
    if (!Buffer.from(reader.raw(MAGIC.length)).equals(MAGIC)) return { ok: false, reason: "bad magic" };
    const version = reader.u8();
    if (version !== SNAPSHOT_VERSION) return { ok: false, reason: `version ${version}` };
    const metaLength = reader.u32();
    if (metaLength > JSON_RECORD_BYTES_MAX) return { ok: false, reason: `meta length ${metaLength} over limit` };
    const metaBytes = reader.raw(metaLength);
    const dataLength = reader.u64();
    if (dataLength > SNAPSHOT_DATA_BYTES_MAX) return { ok: false, reason: `data length ${dataLength} over limit` };
    const headerLength = bytes.length - reader.remaining;
    const stored = reader.u32();
    if (reader.remaining !== dataLength) {
      return { ok: false, reason: `file holds ${reader.remaining} data bytes, header says ${dataLength}` };
    }
    // A plain Uint8Array view (not a Buffer) over the file's bytes: no copy of a possibly large payload.
    const data = new Uint8Array(bytes.buffer, bytes.byteOffset + headerLength + 4, dataLength);
    if (crc32c(data, crc32c(bytes.subarray(0, headerLength))) !== stored) {
      return { ok: false, reason: "checksum mismatch" };
    }
    const meta = parseSnapshotMeta(parseJson(decodeUtf8(metaBytes)));
    if (meta === undefined) return { ok: false, reason: "metadata has the wrong shape" };
    return { ok: true, value: { meta, data } };
  } catch (error) {
    if (error instanceof ByteReadError) return { ok: false, reason: error.message };
    throw error;
  }
}
