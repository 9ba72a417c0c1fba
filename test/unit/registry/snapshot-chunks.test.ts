/**
 * SnapshotWriter encodes rows straight into fixed buffers (no joined text): whatever the buffer
 * size, the chunks are the same bytes as the whole snapshot, no chunk is empty, in the JSON format
 * no character is split across two chunks, and buffers grow from SNAPSHOT_FIRST_CHUNK_BYTES to the cap.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeSnapshot,
  REGISTRY_SNAPSHOT_VERSION,
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_FIRST_CHUNK_BYTES,
  SNAPSHOT_VERSION_JSON,
  SnapshotWriter,
} from "../../../src/registry/state-machine-snapshot.js";
import { Harness, jsonSnapshot, spec } from "./registry-harness.js";

function writeAll(w: SnapshotWriter): readonly Uint8Array[] {
  for (;;) {
    const chunks = w.step();
    if (chunks !== undefined) return chunks;
  }
}

/** MULTIBYTE holds characters of 1, 2, 3 and 4 UTF-8 bytes (the last a surrogate pair in JS). */
const MULTIBYTE = ["a", "é", "€", "😀"];

describe("snapshot chunks", () => {
  it("snapshot chunks property: any buffer size from 4 bytes gives the whole snapshot's bytes, no empty chunk; in format 4 characters never split", () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 300 }), fc.integer({ min: 1, max: 50 }), fc.array(fc.constantFrom(...MULTIBYTE), { minLength: 1, maxLength: 40 }), (chunkBytes, sliceRows, chars) => {
        const h = new Harness();
        const text = chars.join("");
        for (let i = 0; i < 12; i++) h.ok({ op: "instance.register", instance: spec(`i${i}`, { metadata: { note: text.repeat(1 + (i % 3)) }, tags: [text.slice(0, 8) || "t"] }) });
        const whole = h.sm.snapshot();
        const state = decodeSnapshot(whole);
        for (const format of [REGISTRY_SNAPSHOT_VERSION, SNAPSHOT_VERSION_JSON] as const) {
          const chunks = writeAll(new SnapshotWriter(state, sliceRows, chunkBytes, format));
          const expected = format === REGISTRY_SNAPSHOT_VERSION ? whole : jsonSnapshot(whole);
          expect(Buffer.from(Buffer.concat(chunks)).equals(Buffer.from(expected))).toBe(true);
          for (const c of chunks) {
            expect(c.length).toBeGreaterThan(0);
            expect(c.length).toBeLessThanOrEqual(chunkBytes);
            // A JSON chunk decodes alone: it starts and ends on a character's boundary (binary rows are split anywhere).
            if (format === SNAPSHOT_VERSION_JSON) expect(() => new TextDecoder("utf-8", { fatal: true }).decode(c)).not.toThrow();
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it("snapshot chunks: buffers start at SNAPSHOT_FIRST_CHUNK_BYTES and double up to SNAPSHOT_CHUNK_BYTES", () => {
    const h = new Harness();
    const pad = "x".repeat(500);
    for (let i = 0; i < 3_000; i++) h.ok({ op: "instance.register", instance: spec(`i${i}`, { metadata: { a: pad, b: pad, c: pad } }) });
    const chunks = writeAll(new SnapshotWriter(decodeSnapshot(h.sm.snapshot())));
    const sizes = chunks.map((c) => c.buffer.byteLength);
    expect(sizes[0]).toBe(SNAPSHOT_FIRST_CHUNK_BYTES);
    for (let k = 1; k < sizes.length; k++) expect(sizes[k]).toBe(Math.min(SNAPSHOT_CHUNK_BYTES, SNAPSHOT_FIRST_CHUNK_BYTES * 2 ** k));
    expect(sizes.at(-1)).toBe(SNAPSHOT_CHUNK_BYTES);
    // Every buffer but the last is filled to within a row's bytes of its end.
    for (const c of chunks.slice(0, -1)) expect(c.buffer.byteLength - c.length).toBeLessThan(2_000);
  });

  it("snapshot chunks: a buffer below 4 bytes (it could not hold a 4-byte character) is refused", () => {
    expect(() => new SnapshotWriter(decodeSnapshot(new Harness().sm.snapshot()), 10, 3)).toThrow(RangeError);
  });
});
