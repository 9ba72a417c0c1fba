/**
 * releaseBuffers gives the memory of large byte arrays back at once, where dropping them would
 * leave it to the collector: an ArrayBuffer's memory goes only when V8 collects its object, and one
 * that lived long enough to reach the old generation (a snapshot's chunks, written over a second or
 * more) waits for the next full collection, which a quiet node may not run for minutes. A
 * 100,000-instance registry's snapshot is ~27 MiB of chunks: at rest, every node held them as
 * "external" memory until then (README "Benchmarks").
 *
 * How: each buffer is transferred to a MessagePort whose other end is closed at once. The transfer
 * detaches the buffer (every view on it now has length 0) and moves its memory into the message;
 * closing the channel drops the message and frees the memory, with no collection (on a later turn
 * of the event loop, when the ports' handles close).
 *
 * Only for buffers nothing else uses: every view on the same ArrayBuffer becomes empty. Buffers
 * smaller than RELEASE_BYTES_MIN are left alone (not worth it, and Node's Buffer pool, shared by
 * small Buffers of the whole process, is one of them). A buffer that cannot be transferred is left
 * to the collector: one already detached is refused with an error; one marked untransferable (the
 * Buffer pool) Node 20 copies into the message instead, so it stays whole and is not counted.
 */
import { MessageChannel } from "node:worker_threads";

/** RELEASE_BYTES_MIN: smaller ArrayBuffers are left to the collector (Node's Buffer pool is 8 KiB). */
export const RELEASE_BYTES_MIN = 64 * 1024;

/** releaseBuffers detaches and frees the ArrayBuffers under `views` (see the file); it returns the bytes freed. */
export function releaseBuffers(views: readonly Uint8Array[]): number {
  const seen = new Set<ArrayBuffer>();
  for (const v of views) {
    const b = v.buffer;
    if (b instanceof ArrayBuffer && b.byteLength >= RELEASE_BYTES_MIN) seen.add(b);
  }
  if (seen.size === 0) return 0;
  const { port1, port2 } = new MessageChannel();
  let freed = 0;
  try {
    for (const b of seen) {
      const bytes = b.byteLength;
      try {
        // One message per buffer: one that cannot go does not keep the others.
        port1.postMessage(null, [b]);
        // Transferred means detached; an untransferable one is copied and keeps its length.
        if (b.byteLength === 0) freed += bytes;
      } catch {
        // untransferable or detached: left to the collector
      }
    }
  } finally {
    // The receiving end first: its queue (and the memory in it) goes with it.
    port2.close();
    port1.close();
  }
  return freed;
}
