import assert from "node:assert/strict";
import type { Snapshot, SnapshotMeta } from "../raft/types.js";
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

/**
 * CRC_SLICE_BYTES is how much of a snapshot's data one turn of the event loop checksums: the
 * table-driven CRC runs at roughly 0.5–1 GB/s here, so 1 MiB holds the loop for 1–2 ms, while a
 * 20 MB snapshot in one go would hold it for 20–40 ms.
 */
export const CRC_SLICE_BYTES = 1024 * 1024;

/**
 * ChunkedSnapshot is a snapshot as the chunks a sliced snapshot job produced, whose bytes are the
 * chunks in order. The store writes them one after another and never joins them: joined, a
 * 100,000-instance registry's 27 MB was held twice, and the second copy was what started the full
 * collection that stalled the node during the file's write (test/bench/registry/snapshot-stall.ts).
 */
export interface ChunkedSnapshot {
  readonly meta: SnapshotMeta;
  readonly chunks: readonly Uint8Array[];
}

/** SnapshotToStore is what a store writes: a whole snapshot (one from the leader) or a local one in chunks. */
export type SnapshotToStore = Snapshot | ChunkedSnapshot;

/** snapshotChunks is a snapshot's bytes as chunks, in order. */
export function snapshotChunks(snapshot: SnapshotToStore): readonly Uint8Array[] {
  return "chunks" in snapshot ? snapshot.chunks : [snapshot.data];
}

/** snapshotByteLength is the length of a snapshot's bytes. */
export function snapshotByteLength(snapshot: SnapshotToStore): number {
  let n = 0;
  for (const c of snapshotChunks(snapshot)) n += c.length;
  return n;
}

/** crc32cSliced continues `previous` over the chunks in order, at most CRC_SLICE_BYTES per event-loop turn. */
async function crc32cSliced(chunks: readonly Uint8Array[], previous: number): Promise<number> {
  let crc = previous;
  let sinceYield = 0;
  for (const data of chunks) {
    for (let at = 0; at < data.length; ) {
      if (sinceYield >= CRC_SLICE_BYTES) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sinceYield = 0;
      }
      const end = Math.min(at + CRC_SLICE_BYTES - sinceYield, data.length);
      crc = crc32c(data.subarray(at, end), crc);
      sinceYield += end - at;
      at = end;
    }
  }
  return crc;
}

/** encodeSnapshotHeader returns the bytes that precede snapshot.data in its file, CRC included. */
export function encodeSnapshotHeader(snapshot: Snapshot): Uint8Array {
  const { writer, prefix } = headerWithoutCrc(snapshot.meta, snapshot.data.length);
  writer.u32(crc32c(snapshot.data, crc32c(prefix)));
  return writer.finish();
}

/** encodeSnapshotHeaderSliced is encodeSnapshotHeader with the data's CRC computed CRC_SLICE_BYTES per event-loop turn, over chunks too. */
export async function encodeSnapshotHeaderSliced(snapshot: SnapshotToStore): Promise<Uint8Array> {
  const { writer, prefix } = headerWithoutCrc(snapshot.meta, snapshotByteLength(snapshot));
  writer.u32(await crc32cSliced(snapshotChunks(snapshot), crc32c(prefix)));
  return writer.finish();
}

function headerWithoutCrc(snapshotMeta: SnapshotMeta, dataBytes: number): { writer: ByteWriter; prefix: Uint8Array } {
  assert(snapshotMeta.index >= 1, `snapshot index ${snapshotMeta.index} invalid`);
  assert(snapshotMeta.term >= 1, `snapshot term ${snapshotMeta.term} invalid`);
  assert(dataBytes <= SNAPSHOT_DATA_BYTES_MAX, `snapshot data ${dataBytes} bytes too large`);
  const meta = utf8.encode(JSON.stringify(snapshotMetaJson(snapshotMeta)));
  assert(meta.length <= JSON_RECORD_BYTES_MAX, "snapshot metadata too large");
  const writer = new ByteWriter(MAGIC.length + 1 + 4 + meta.length + 8 + 4);
  writer.raw(MAGIC);
  writer.u8(SNAPSHOT_VERSION);
  writer.u32(meta.length);
  writer.raw(meta);
  writer.u64(dataBytes);
  return { writer, prefix: writer.bytes.subarray(0, writer.position) };
}

/** SnapshotFileParts is a snapshot file taken apart, before its checksum is checked. */
interface SnapshotFileParts {
  /** header is every byte before the stored CRC. */
  readonly header: Uint8Array;
  readonly storedCrc: number;
  readonly metaBytes: Uint8Array;
  /** data is a plain Uint8Array view (not a Buffer) over the file's bytes: no copy of a possibly large payload. */
  readonly data: Uint8Array;
}

/** decodeSnapshotFile reads a whole snapshot file; the returned data is a view into bytes, not a copy. */
export function decodeSnapshotFile(bytes: Uint8Array): Decoded<Snapshot> {
  const parts = splitSnapshotFile(bytes);
  if (!parts.ok) return parts;
  const { header, storedCrc, data } = parts.value;
  if (crc32c(data, crc32c(header)) !== storedCrc) return { ok: false, reason: "checksum mismatch" };
  return withMeta(parts.value);
}

/**
 * decodeSnapshotFileSliced is decodeSnapshotFile with the data's CRC checked CRC_SLICE_BYTES per
 * event-loop turn: for a node that reads a snapshot back while it serves (to send it to a follower).
 */
export async function decodeSnapshotFileSliced(bytes: Uint8Array): Promise<Decoded<Snapshot>> {
  const parts = splitSnapshotFile(bytes);
  if (!parts.ok) return parts;
  const { header, storedCrc, data } = parts.value;
  if ((await crc32cSliced([data], crc32c(header))) !== storedCrc) return { ok: false, reason: "checksum mismatch" };
  return withMeta(parts.value);
}

function splitSnapshotFile(bytes: Uint8Array): Decoded<SnapshotFileParts> {
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
    const storedCrc = reader.u32();
    if (reader.remaining !== dataLength) {
      return { ok: false, reason: `file holds ${reader.remaining} data bytes, header says ${dataLength}` };
    }
    const data = new Uint8Array(bytes.buffer, bytes.byteOffset + headerLength + 4, dataLength);
    return { ok: true, value: { header: bytes.subarray(0, headerLength), storedCrc, metaBytes, data } };
  } catch (error) {
    if (error instanceof ByteReadError) return { ok: false, reason: error.message };
    throw error;
  }
}

function withMeta(parts: SnapshotFileParts): Decoded<Snapshot> {
  try {
    const meta = parseSnapshotMeta(parseJson(decodeUtf8(parts.metaBytes)));
    if (meta === undefined) return { ok: false, reason: "metadata has the wrong shape" };
    return { ok: true, value: { meta, data: parts.data } };
  } catch (error) {
    if (error instanceof ByteReadError) return { ok: false, reason: error.message };
    throw error;
  }
}
