import { describe, expect, it } from "vitest";
import { EntryKind, NO_NODE, nodeId } from "../../../src/raft/types.js";
import {
  decodeEntry,
  decodeHardState,
  decodeJsonRecord,
  ENTRY_DATA_BYTES_MAX,
  encodeEntry,
  encodeHardState,
  encodeJsonRecord,
} from "../../../src/storage/codec.js";
import { crc32c, crc32cBytewise } from "../../../src/storage/crc32c.js";
import { entryIndexOfKey, entryKey, HARD_STATE_KEY, META_KEY, SNAPSHOT_META_KEY } from "../../../src/storage/keys.js";
import { decodeSnapshotFile, encodeSnapshotHeader } from "../../../src/storage/snapshot-codec.js";
import { entry, snapshot } from "./helpers.js";

describe("storage codec", () => {
  it("storage: crc32c matches the published check value", () => {
    // The CRC-32C check value from the catalogue of parametrised CRC algorithms (RFC 3720 uses the same polynomial).
    expect(crc32c(new TextEncoder().encode("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
  });

  it("storage: crc32c eight bytes a step equals the byte-at-a-time form on every length, offset and continuation", () => {
    // Data at odd offsets of a shared buffer too: the step reads bytes, never aligned words.
    const pool = new Uint8Array(4096 + 16);
    let seed = 7;
    for (let i = 0; i < pool.length; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      pool[i] = seed >>> 16;
    }
    for (let length = 0; length <= 80; length++) {
      for (let offset = 0; offset < 9; offset++) {
        const bytes = pool.subarray(offset, offset + length);
        expect(crc32c(bytes)).toBe(crc32cBytewise(bytes));
        expect(crc32c(bytes, 0xdeadbeef)).toBe(crc32cBytewise(bytes, 0xdeadbeef));
      }
    }
    for (let run = 0; run < 200; run++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const start = seed % 512;
      const length = (seed >>> 9) % 3000;
      const bytes = pool.subarray(start, start + length);
      const cut = length === 0 ? 0 : (seed >>> 3) % length;
      expect(crc32c(bytes)).toBe(crc32cBytewise(bytes));
      expect(crc32c(bytes.subarray(cut), crc32c(bytes.subarray(0, cut)))).toBe(crc32cBytewise(bytes));
    }
    expect(crc32cBytewise(new TextEncoder().encode("123456789"))).toBe(0xe3069283);
  });

  it("storage: crc32c can be continued over pieces", () => {
    const bytes = new TextEncoder().encode("hello, raft log");
    expect(crc32c(bytes.subarray(5), crc32c(bytes.subarray(0, 5)))).toBe(crc32c(bytes));
  });

  it("storage: an entry survives encode and decode", () => {
    const original = { index: 2 ** 40 + 7, term: 2 ** 33, kind: EntryKind.ConfChange, data: new Uint8Array([0, 1, 255]) };
    const decoded = decodeEntry(encodeEntry(original));
    expect(decoded).toEqual({ ok: true, value: original });
  });

  it("storage: an empty no-op entry survives encode and decode", () => {
    const noop = { index: 1, term: 1, kind: EntryKind.Normal, data: new Uint8Array() };
    expect(decodeEntry(encodeEntry(noop))).toEqual({ ok: true, value: noop });
  });

  it("storage: every single flipped bit in an entry record is detected", () => {
    const bytes = encodeEntry(entry(5, 3));
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const damaged = bytes.slice();
      damaged[bit >> 3]! ^= 1 << (bit & 7);
      expect(decodeEntry(damaged).ok).toBe(false);
    }
  });

  it("storage: a truncated entry record is detected at every length", () => {
    const bytes = encodeEntry(entry(5, 3));
    for (let length = 0; length < bytes.length; length++) {
      expect(decodeEntry(bytes.subarray(0, length)).ok).toBe(false);
    }
  });

  it("storage: an invalid entry is refused before it is written", () => {
    expect(() => encodeEntry({ ...entry(1, 1), index: 0 })).toThrow();
    expect(() => encodeEntry({ ...entry(1, 1), term: 0 })).toThrow();
    expect(() => encodeEntry({ ...entry(1, 1), kind: 9 as EntryKind })).toThrow();
    expect(() => encodeEntry({ ...entry(1, 1), data: new Uint8Array(ENTRY_DATA_BYTES_MAX + 1) })).toThrow();
  });

  it("storage: hard state survives encode and decode, with and without a vote", () => {
    for (const state of [
      { term: 7, vote: nodeId("n3"), commit: 42 },
      { term: 0, vote: NO_NODE, commit: 0 },
    ]) {
      expect(decodeHardState(encodeHardState(state))).toEqual({ ok: true, value: state });
    }
    const bytes = encodeHardState({ term: 7, vote: nodeId("n3"), commit: 42 });
    bytes[3]! ^= 0x10;
    expect(decodeHardState(bytes).ok).toBe(false);
  });

  it("storage: JSON records carry a checksum", () => {
    const bytes = encodeJsonRecord({ clusterId: "c", nodeId: "n1", formatVersion: 1 });
    expect(decodeJsonRecord(bytes)).toEqual({ ok: true, value: { clusterId: "c", nodeId: "n1", formatVersion: 1 } });
    bytes[8]! ^= 1;
    expect(decodeJsonRecord(bytes).ok).toBe(false);
  });

  it("storage: entry keys sort by index and never collide with the single-key records", () => {
    const indexes = [0, 1, 2, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER];
    const keys = indexes.map(entryKey);
    const sorted = [...keys].sort(Buffer.compare);
    expect(sorted.map((key) => entryIndexOfKey(key))).toEqual(indexes);
    for (const single of [HARD_STATE_KEY, META_KEY, SNAPSHOT_META_KEY]) {
      expect(entryIndexOfKey(single)).toBeUndefined();
      expect(Buffer.compare(single, keys.at(-1)!)).toBeGreaterThan(0);
    }
  });

  it("storage: a snapshot file survives encode and decode and detects damage", () => {
    const snap = snapshot(100, 4);
    const file = Buffer.concat([encodeSnapshotHeader(snap), snap.data]);
    const decoded = decodeSnapshotFile(file);
    expect(decoded.ok && decoded.value.meta).toEqual(snap.meta);
    expect(decoded.ok && Buffer.from(decoded.value.data).equals(Buffer.from(snap.data))).toBe(true);
    const damaged = Buffer.from(file);
    damaged[damaged.length - 1]! ^= 1;
    expect(decodeSnapshotFile(damaged).ok).toBe(false);
    expect(decodeSnapshotFile(file.subarray(0, file.length - 1)).ok).toBe(false);
  });
});
