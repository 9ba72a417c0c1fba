/**
 * The chunked transfer coding (RFC 9112 §7.1), walked incrementally: the proxy forwards chunked
 * bodies as received and only needs to know where one ends (so the connection can carry the next
 * message) and, for an HTTP/1.0 client, which bytes are payload. Strict: a bad chunk size, a bare
 * LF or an over-long size line or trailer section is an error, never a guess (request smuggling).
 *
 * Pure: no I/O.
 */

const CR = 13;
const LF = 10;

/** CHUNK_SIZE_DIGITS_MAX: 12 hex digits are 2^48 bytes (256 TiB) per chunk, far beyond any body, and exact as a number. */
export const CHUNK_SIZE_DIGITS_MAX = 12;

/**
 * CHUNK_LINE_BYTES_MAX bounds a chunk-size line with its extensions, and TRAILER_BYTES_MAX the
 * trailer section: both are metadata a peer could otherwise stream forever. 4 KiB of extensions
 * and 16 KiB of trailers (the head limit) are far above honest use.
 */
export const CHUNK_LINE_BYTES_MAX = 4 * 1024;
export const TRAILER_BYTES_MAX = 16 * 1024;

enum S {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  Trailer,
  TrailerLf,
  FinalLf,
  Done,
  Error,
}

/** hexValue is a hex digit's value, or -1. */
function hexValue(b: number): number {
  if (b >= 48 && b <= 57) return b - 48;
  const l = b | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/** ChunkedReader follows one chunked body; reset() readies it for the next. */
export class ChunkedReader {
  private s = S.Size;
  private remaining = 0;
  private digits = 0;
  private lineBytes = 0;
  private trailerBytes = 0;

  get done(): boolean {
    return this.s === S.Done;
  }

  get failed(): boolean {
    return this.s === S.Error;
  }

  reset(): void {
    this.s = S.Size;
    this.remaining = 0;
    this.digits = 0;
    this.lineBytes = 0;
    this.trailerBytes = 0;
  }

  /**
   * scan walks buf[from, to) and returns the offset where the body ended (done) or `to` when it
   * needs more; on a framing error `failed` is set and the return value is meaningless. onData,
   * when given, is called with each run of payload bytes.
   */
  scan(buf: Buffer, from: number, to: number, onData?: (start: number, end: number) => void): number {
    let i = from;
    while (i < to) {
      switch (this.s) {
        case S.Data: {
          const n = Math.min(this.remaining, to - i);
          if (onData) onData(i, i + n);
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.s = S.DataCr;
          continue;
        }
        case S.Size: {
          const b = buf[i]!;
          const v = hexValue(b);
          if (v !== -1) {
            if (++this.digits > CHUNK_SIZE_DIGITS_MAX) return this.fail();
            this.remaining = this.remaining * 16 + v;
          } else if (this.digits === 0) return this.fail();
          else if (b === CR) this.s = S.SizeLf;
          else if (b === 59 || b === 32 || b === 9) this.s = S.Ext;
          else return this.fail();
          if (++this.lineBytes > CHUNK_LINE_BYTES_MAX) return this.fail();
          i++;
          continue;
        }
        case S.Ext: {
          const b = buf[i]!;
          if (b === CR) this.s = S.SizeLf;
          else if (b === LF || (b < 32 && b !== 9) || b === 127) return this.fail();
          if (++this.lineBytes > CHUNK_LINE_BYTES_MAX) return this.fail();
          i++;
          continue;
        }
        case S.SizeLf:
          if (buf[i] !== LF) return this.fail();
          i++;
          this.digits = 0;
          this.lineBytes = 0;
          this.s = this.remaining === 0 ? S.TrailerStart : S.Data;
          continue;
        case S.DataCr:
          if (buf[i] !== CR) return this.fail();
          i++;
          this.s = S.DataLf;
          continue;
        case S.DataLf:
          if (buf[i] !== LF) return this.fail();
          i++;
          this.s = S.Size;
          continue;
        case S.TrailerStart:
          if (buf[i] === CR) {
            i++;
            this.s = S.FinalLf;
            continue;
          }
          this.s = S.Trailer;
          continue;
        case S.Trailer: {
          const b = buf[i]!;
          if (b === CR) this.s = S.TrailerLf;
          else if (b === LF || (b < 32 && b !== 9) || b === 127) return this.fail();
          if (++this.trailerBytes > TRAILER_BYTES_MAX) return this.fail();
          i++;
          continue;
        }
        case S.TrailerLf:
          if (buf[i] !== LF) return this.fail();
          i++;
          this.s = S.TrailerStart;
          continue;
        case S.FinalLf:
          if (buf[i] !== LF) return this.fail();
          i++;
          this.s = S.Done;
          return i;
        default:
          return i;
      }
    }
    return i;
  }

  private fail(): number {
    this.s = S.Error;
    return -1;
  }
}

/** chunkPrefix is the size line of a chunk of n bytes (n > 0), for bodies the proxy frames itself. */
export function chunkPrefix(n: number): string {
  return `${n.toString(16)}\r\n`;
}

/** LAST_CHUNK ends a body the proxy framed itself (no trailers). */
export const LAST_CHUNK = Buffer.from("0\r\n\r\n");
