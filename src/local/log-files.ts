/**
 * RotatingLogFile writes a supervised process's stdout or stderr to `<path>`, rotating it to
 * `<path>.1` (and `.1` to `.2`, ...) before it would pass bytesMax, and keeping filesKept rotated
 * files: a process that logs without end costs at most (filesKept + 1) × bytesMax of disk.
 * Writes are synchronous and small (a pipe's chunk, 64 KiB at most), so a crash loses nothing the
 * process wrote before it died, and the order of rotation and writes needs no bookkeeping.
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/** LOG_FILE_BYTES_MAX: 10 MiB per file, as Docker's json-file driver is usually set (max-size=10m). */
export const LOG_FILE_BYTES_MAX = 10 * 1024 * 1024;
/** LOG_FILES_KEPT: 5 rotated files besides the current one (logrotate's `rotate 5`), 60 MiB per stream at most. */
export const LOG_FILES_KEPT = 5;

/** LogFileLimits override the bounds (tests use small ones). */
export interface LogFileLimits {
  readonly bytesMax?: number;
  readonly filesKept?: number;
}

/** RotatingLogFile: see the module comment. */
export class RotatingLogFile {
  readonly bytesMax: number;
  readonly filesKept: number;
  private fd: number | undefined;
  /** size: bytes in the current file. Invariant: size <= bytesMax. */
  private size = 0;

  constructor(
    readonly path: string,
    limits: LogFileLimits = {},
  ) {
    this.bytesMax = limits.bytesMax ?? LOG_FILE_BYTES_MAX;
    this.filesKept = limits.filesKept ?? LOG_FILES_KEPT;
    if (!Number.isInteger(this.bytesMax) || this.bytesMax < 1) throw new RangeError(`bytesMax: must be a whole number >= 1, got ${this.bytesMax}`);
    if (!Number.isInteger(this.filesKept) || this.filesKept < 0) throw new RangeError(`filesKept: must be a whole number >= 0, got ${this.filesKept}`);
    mkdirSync(dirname(path), { recursive: true });
  }

  /** write appends data, rotating first whenever the current file would pass bytesMax. */
  write(data: Uint8Array | string): void {
    let buf = typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    while (buf.length > 0) {
      const fd = this.open();
      if (this.size >= this.bytesMax) {
        this.rotate();
        continue;
      }
      const n = Math.min(buf.length, this.bytesMax - this.size);
      let off = 0;
      while (off < n) off += writeSync(fd, buf, off, n - off);
      this.size += n;
      buf = buf.subarray(n);
    }
  }

  /** close closes the current file (a later write opens it again). */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private open(): number {
    if (this.fd === undefined) {
      this.fd = openSync(this.path, "a");
      this.size = fstatSync(this.fd).size;
    }
    return this.fd;
  }

  /** rotate shifts path.(k) to path.(k+1), dropping the oldest, and starts an empty current file. */
  private rotate(): void {
    this.close();
    if (this.filesKept === 0) rmSync(this.path, { force: true });
    else {
      rmSync(`${this.path}.${this.filesKept}`, { force: true });
      for (let k = this.filesKept - 1; k >= 1; k--) if (existsSync(`${this.path}.${k}`)) renameSync(`${this.path}.${k}`, `${this.path}.${k + 1}`);
      renameSync(this.path, `${this.path}.1`);
    }
    this.fd = openSync(this.path, "a");
    this.size = 0;
  }
}
