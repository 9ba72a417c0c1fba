import { describe, expect, it } from "vitest";
import type { NodeId } from "../../../src/raft/index.js";
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
      expect(await decodeSnapshotFileSliced(file)).toEqual(decodeSnapshotFile(file));
      if (length > 0) {
        file[file.length - 1]! ^= 1;
        expect(decodeSnapshotFile(file).ok).toBe(false);
        // The sliced read finds the same damage, in the last slice too.
        expect(await decodeSnapshotFileSliced(file)).toEqual({ ok: false, reason: "checksum mismatch" });
      }
    }
  });
});
