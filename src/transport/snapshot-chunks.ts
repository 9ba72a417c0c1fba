/**
 * Cutting a snapshot into InstallSnapshot chunks, and putting it back together with every check a
 * receiver needs: shape (header first, hash last), size against the header and the limit, SHA-256.
 */
import { createHash } from "node:crypto";
import { SnapshotIntegrityError } from "./errors.js";
import { SNAPSHOT_CHUNK_BYTES_MAX } from "./limits.js";
import type { WireMessage, WireSnapshotChunk } from "./wire.js";

/** SHA256_BYTES is the length of a SHA-256 digest. */
const SHA256_BYTES = 32;

/**
 * snapshotChunks cuts data into chunks of at most chunkBytesMax bytes. The first carries header,
 * the last carries the SHA-256 of all of data; an empty snapshot is one chunk carrying both.
 * Chunks are views of data, not copies.
 */
export function snapshotChunks(header: WireMessage, data: Uint8Array, chunkBytesMax: number): WireSnapshotChunk[] {
  const chunks: WireSnapshotChunk[] = [];
  const empty = new Uint8Array(0);
  for (let offset = 0; offset < data.length || chunks.length === 0; offset += chunkBytesMax) {
    chunks.push({ header: chunks.length === 0 ? header : null, data: data.subarray(offset, offset + chunkBytesMax), sha256: empty });
  }
  chunks[chunks.length - 1]!.sha256 = createHash("sha256").update(data).digest();
  return chunks;
}

/** AssembledSnapshot is a checked snapshot: its header and its whole data. */
export interface AssembledSnapshot {
  readonly header: WireMessage;
  readonly data: Uint8Array;
}

/**
 * SnapshotAssembler takes the chunks of one InstallSnapshot call in order. add() and finish()
 * throw SnapshotIntegrityError at the first chunk that breaks the rules, so a bad stream is
 * refused as early as possible and never reaches Raft.
 */
export class SnapshotAssembler {
  private header: WireMessage | undefined;
  private data: Uint8Array | undefined;
  private received = 0;
  private expectedSha256: Uint8Array | undefined;
  private readonly hash = createHash("sha256");

  /** bytesMax bounds the data a header may announce; the buffer is allocated once, at the announced size. */
  constructor(private readonly bytesMax: number) {}

  /** add checks and takes the next chunk. */
  add(chunk: WireSnapshotChunk): void {
    if (this.expectedSha256) throw new SnapshotIntegrityError("chunk after the chunk that carried the hash");
    if (!this.header) this.start(chunk.header);
    else if (chunk.header) throw new SnapshotIntegrityError("header repeated after the first chunk");
    if (chunk.data.length > SNAPSHOT_CHUNK_BYTES_MAX) throw new SnapshotIntegrityError(`chunk of ${chunk.data.length} bytes exceeds ${SNAPSHOT_CHUNK_BYTES_MAX}`);
    const data = this.data!;
    if (this.received + chunk.data.length > data.length) throw new SnapshotIntegrityError(`more data than the ${data.length} bytes the header announced`);
    data.set(chunk.data, this.received);
    this.received += chunk.data.length;
    this.hash.update(chunk.data);
    if (chunk.sha256.length > 0) {
      if (chunk.sha256.length !== SHA256_BYTES) throw new SnapshotIntegrityError(`hash of ${chunk.sha256.length} bytes is not a SHA-256`);
      this.expectedSha256 = chunk.sha256;
    }
  }

  /** finish checks that the stream was complete and the hash matches, and returns the snapshot. */
  finish(): AssembledSnapshot {
    if (!this.header || !this.data) throw new SnapshotIntegrityError("stream ended before the header");
    if (!this.expectedSha256) throw new SnapshotIntegrityError("stream ended before the chunk that carries the hash");
    if (this.received !== this.data.length) throw new SnapshotIntegrityError(`received ${this.received} of ${this.data.length} bytes`);
    const actual = this.hash.digest();
    if (!actual.equals(this.expectedSha256)) {
      throw new SnapshotIntegrityError(`SHA-256 mismatch: expected ${Buffer.from(this.expectedSha256).toString("hex")}, got ${actual.toString("hex")}`);
    }
    return { header: this.header, data: this.data };
  }

  private start(header: WireMessage | null): void {
    if (!header) throw new SnapshotIntegrityError("first chunk has no header");
    if (!header.snapshot) throw new SnapshotIntegrityError("header has no snapshot metadata");
    const bytes = header.snapshot.dataBytes;
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > this.bytesMax) {
      throw new SnapshotIntegrityError(`announced size ${bytes} bytes exceeds the limit of ${this.bytesMax}`);
    }
    this.header = header;
    this.data = new Uint8Array(bytes);
  }
}
