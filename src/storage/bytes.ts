import assert from "node:assert/strict";
import { ByteReadError } from "./errors.js";

/**
 * Fixed-width big-endian reading and writing for the storage codecs. 64-bit fields hold JavaScript
 * numbers, so they are limited to Number.MAX_SAFE_INTEGER: an index or term past 2^53 would take
 * millennia at any write rate this system reaches, and a larger stored value means corruption.
 */

const TWO_POW_32 = 0x1_0000_0000;

/** ByteWriter fills a buffer whose size the caller computed up front; finish() asserts it was filled exactly. */
export class ByteWriter {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private offset = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  u8(value: number): void {
    this.view.setUint8(this.offset, value);
    this.offset += 1;
  }

  u16(value: number): void {
    this.view.setUint16(this.offset, value);
    this.offset += 2;
  }

  u32(value: number): void {
    this.view.setUint32(this.offset, value);
    this.offset += 4;
  }

  u64(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, `u64 field out of range: ${value}`);
    this.view.setUint32(this.offset, Math.floor(value / TWO_POW_32));
    this.view.setUint32(this.offset + 4, value >>> 0);
    this.offset += 8;
  }

  raw(value: Uint8Array): void {
    this.bytes.set(value, this.offset);
    this.offset += value.length;
  }

  /** position is how many bytes have been written so far. */
  get position(): number {
    return this.offset;
  }

  finish(): Uint8Array {
    assert.equal(this.offset, this.bytes.length, "record size computed wrongly");
    return this.bytes;
  }
}

/** ByteReadError lives in errors.ts; codecs import it from here too. */
export { ByteReadError };

/** ByteReader reads fields in order and throws ByteReadError instead of reading past the end. */
export class ByteReader {
  private readonly view: DataView;
  private offset = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(count: number): void {
    if (this.offset + count > this.bytes.length) {
      throw new ByteReadError(`record truncated: need ${count} bytes at offset ${this.offset} of ${this.bytes.length}`);
    }
  }

  u8(): number {
    this.need(1);
    const value = this.view.getUint8(this.offset);
    this.offset += 1;
    return value;
  }

  u16(): number {
    this.need(2);
    const value = this.view.getUint16(this.offset);
    this.offset += 2;
    return value;
  }

  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.offset);
    this.offset += 4;
    return value;
  }

  u64(): number {
    this.need(8);
    const value = this.view.getUint32(this.offset) * TWO_POW_32 + this.view.getUint32(this.offset + 4);
    if (!Number.isSafeInteger(value)) throw new ByteReadError(`u64 field too large at offset ${this.offset}`);
    this.offset += 8;
    return value;
  }

  /**
   * raw returns a copy as a plain Uint8Array, so that a decoded value never pins the buffer it was
   * read from (LevelDB hands out Buffers, whose slice() would not copy).
   */
  raw(count: number): Uint8Array {
    this.need(count);
    const value = new Uint8Array(this.bytes.subarray(this.offset, this.offset + count));
    this.offset += count;
    return value;
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }
}
