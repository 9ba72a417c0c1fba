import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { NodeId } from "../../../src/raft/index.js";
import { SnapshotStore } from "../../../src/storage/snapshot-store.js";
import { CRC_SLICE_BYTES, decodeSnapshotFile, decodeSnapshotFileSliced, encodeSnapshotHeader, encodeSnapshotHeaderSliced } from "../../../src/storage/snapshot-codec.js";

describe("snapshot file CRC a slice at a time", () => {
  it("storage: the sliced header equals the one-go header at, below and past a slice boundary, and the file reads back", async () => {
    for (const length of [0, 1, CRC_SLICE_BYTES - 1, CRC_SLICE_BYTES, CRC_SLICE_BYTES + 1, 2 * CRC_SLICE_BYTES + 7]) {
      const data = new Uint8Array(length);
      for (let i = 0; i < length; i++) data[i] = (i * 31 + 7) & 255;
      const snapshot = { meta: { index: 5, term: 2, conf: { voters: ["n1" as NodeId], learners: [] } }, data };
      const sliced = await encodeSnapshotHeaderSliced(snapshot);
      expect(Buffer.from(sliced).toString("hex")).toBe(Buffer.from(encodeSnapshotHeader(snapshot)).toString("hex"));
      const file = Buffer.concat([sliced, data]);
      expect(decodeSnapshotFile(file).ok).toBe(true);
      // Compared by parts: vitest's deep equality walks a typed array element by element (~30 s here for these sizes).
      const one = decodeSnapshotFile(file);
      const sliced2 = await decodeSnapshotFileSliced(file);
      expect(one.ok && sliced2.ok).toBe(true);
      if (one.ok && sliced2.ok) {
        expect(sliced2.value.meta).toEqual(one.value.meta);
        expect(Buffer.from(sliced2.value.data).equals(Buffer.from(one.value.data))).toBe(true);
      }
      if (length > 0) {
        file[file.length - 1]! ^= 1;
        expect(decodeSnapshotFile(file).ok).toBe(false);
        // The sliced read finds the same damage, in the last slice too.
        expect(await decodeSnapshotFileSliced(file)).toEqual({ ok: false, reason: "checksum mismatch" });
      }
    }
  });

  it("storage: a snapshot stored as chunks makes the same file as the joined bytes, for chunks across slice boundaries and empty ones", async () => {
    const dir = mkdtempSync(join(tmpdir(), "raftmesh-chunked-snap-"));
    const silentLog = { info() {}, warn() {}, error() {} };
    try {
      const sizes = [0, 3, CRC_SLICE_BYTES - 2, 0, 5, CRC_SLICE_BYTES + 9, 1, 2 * CRC_SLICE_BYTES];
      let seed = 1;
      const chunks = sizes.map((n) => {
        const c = new Uint8Array(n);
        for (let i = 0; i < n; i++) c[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
        return c;
      });
      const data = Buffer.concat(chunks);
      const conf = { voters: ["n1" as NodeId], learners: [] };
      const whole = await SnapshotStore.open(join(dir, "whole"), silentLog);
      const chunked = await SnapshotStore.open(join(dir, "chunked"), silentLog);
      await whole.save({ meta: { index: 9, term: 3, conf }, data });
      await chunked.save({ meta: { index: 9, term: 3, conf }, chunks });
      const [a] = readdirSync(whole.dir);
      const [b] = readdirSync(chunked.dir);
      expect(b).toBe(a);
      expect(readFileSync(join(chunked.dir, b as string)).equals(readFileSync(join(whole.dir, a as string)))).toBe(true);
      const back = await chunked.load({ index: 9, term: 3 });
      expect(back !== undefined && Buffer.from(back.data).equals(data)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
