import { markAsUntransferable } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { RELEASE_BYTES_MIN, releaseBuffers } from "../../../src/common/release-buffers.js";

describe("releaseBuffers", () => {
  it("detaches large buffers (their memory leaves the process's array buffers within a loop turn or two, no collection) and counts the bytes", async () => {
    const chunks = Array.from({ length: 8 }, (_, i) => new Uint8Array(1 << 20).fill(i + 1));
    const before = process.memoryUsage().arrayBuffers;
    // Two views on one buffer are freed once.
    const freed = releaseBuffers([...chunks, (chunks[0] as Uint8Array).subarray(0, 10)]);
    expect(freed).toBe(8 << 20);
    for (const c of chunks) expect(c.byteLength).toBe(0);
    // The channel's handles close on a later turn of the loop, and the memory goes with them. The
    // process's other buffers come and go meanwhile (a few bytes were seen): 7 of the 8 MiB must go.
    const gone = () => before - process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 100 && gone() < 7 << 20; i++) await new Promise((r) => setTimeout(r, 10));
    expect(gone()).toBeGreaterThanOrEqual(7 << 20);
  });

  it("leaves small buffers (Node's shared Buffer pool among them) and ones it cannot transfer alone", () => {
    const pooled = Buffer.from("a small pooled buffer");
    const small = new Uint8Array(RELEASE_BYTES_MIN - 1).fill(7);
    const big = new Uint8Array(RELEASE_BYTES_MIN).fill(9);
    const detached = new Uint8Array(RELEASE_BYTES_MIN);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    expect(releaseBuffers([pooled, small, detached, big])).toBe(RELEASE_BYTES_MIN);
    expect(pooled.toString()).toBe("a small pooled buffer");
    expect(small[small.length - 1]).toBe(7);
    expect(big.byteLength).toBe(0);
    expect(releaseBuffers([])).toBe(0);
    // Node 20 copies an untransferable buffer into the message rather than refusing it: it stays whole and is not counted.
    const kept = new Uint8Array(RELEASE_BYTES_MIN).fill(5);
    markAsUntransferable(kept.buffer);
    expect(releaseBuffers([kept])).toBe(0);
    expect(kept.byteLength).toBe(RELEASE_BYTES_MIN);
    expect(kept[0]).toBe(5);
  });
});
