/**
 * Instance rows in binary, for snapshot format 5 (state-machine-snapshot.ts). Instances are most of
 * a snapshot (20 of 28 MB with 100,000 of them), and as JSON they were most of a restore: parsing
 * the text alone took ~60 % of a learner's restore on the project's 2-core machine. In binary a
 * value is read where it lies, and a string that repeats (a service name, a zone, a tag, a metadata
 * key or value) is written once and referred to after, so the reader makes one JS string of it.
 *
 * A row holds the values of the snapshot's instance columns in header order, each by its field's
 * type (fields.ts INSTANCE_FIELDS):
 *   string   a string reference (below)
 *   int, number  uvarint(v + 1) for an integer 0 ≤ v < 2^53 - 1; otherwise uvarint(0) and a float64 (LE)
 *   bool     one byte, 0 or 1
 *   strings  uvarint(count), then count string references
 *   strmap   uvarint(count), then count pairs of string references (key, value), keys ascending
 * A string reference is uvarint(r): r = 0 a literal the reader does not keep, r = 1 a literal the
 * reader appends to its table, r = 2 a literal holding the string as JSON text (a string that is not
 * well-formed UTF-16, a lone surrogate, has no UTF-8 form; JSON escapes it), r ≥ 3 the table's entry
 * r - 3. A literal is uvarint(byte length) then its UTF-8 bytes. uvarint is LEB128, at most UVARINT_BYTES_MAX bytes, up to 2^53 - 1.
 * The reader checks structure only (bounds, references, UTF-8); the values' meaning is checked by
 * the same readField as a JSON row's.
 */
import { RowStructureError } from "./errors.js";
import { type FieldDef, type FieldType, sortedKeys } from "./fields.js";
import type { Instance } from "./types.js";

/**
 * STRING_TABLE_MAX bounds the strings a writer keeps for reference (and so a reader's table): the
 * repeated values of a registry are far fewer, and past the bound strings are written in full.
 */
export const STRING_TABLE_MAX = 65_536;
/** TABLED_CHARS_MAX: longer strings are rarely repeated (notes); they are written in full, never kept. */
export const TABLED_CHARS_MAX = 64;
/** UVARINT_BYTES_MAX: 8 bytes of 7 bits hold every safe integer (53 bits). */
export const UVARINT_BYTES_MAX = 8;
/** ROW_SCRATCH_BYTES is a writer's first row buffer; it grows to the largest row. */
const ROW_SCRATCH_BYTES = 4_096;

/** UNTABLED_FIELDS are never repeated from one instance to the next, so the writer does not keep them. */
const UNTABLED_FIELDS: ReadonlySet<string> = new Set(["id", "address"]);

const REF_LITERAL = 0;
const REF_LITERAL_KEPT = 1;
const REF_LITERAL_JSON = 2;
const REF_TABLE = 3;
const NUMBER_AS_FLOAT = 0;

const encoder = new TextEncoder();
const fatalDecoder = new TextDecoder("utf-8", { fatal: true });

/** InstanceRowWriter encodes instances, one row at a time, every column of INSTANCE_FIELDS in order. */
export class InstanceRowWriter {
  private buf = new Uint8Array(ROW_SCRATCH_BYTES);
  private n = 0;
  private readonly table = new Map<string, number>();

  constructor(private readonly fields: readonly FieldDef<Instance>[]) {}

  /** count is the row count that opens the block. */
  count(rows: number): Uint8Array {
    this.n = 0;
    this.uvarint(rows);
    return this.buf.subarray(0, this.n);
  }

  /** row is one instance's row; the bytes are valid until the next call. */
  row(i: Instance): Uint8Array {
    this.n = 0;
    for (const f of this.fields) this.value(f.type, i[f.name], !UNTABLED_FIELDS.has(f.name));
    return this.buf.subarray(0, this.n);
  }

  private value(type: FieldType, v: unknown, keep: boolean): void {
    switch (type) {
      case "string":
        this.string(v as string, keep);
        return;
      case "int":
      case "number":
        this.number(v as number);
        return;
      case "bool":
        this.room(1);
        this.buf[this.n++] = v === true ? 1 : 0;
        return;
      case "strings": {
        const list = v as readonly string[];
        this.uvarint(list.length);
        for (const s of list) this.string(s, true);
        return;
      }
      case "strmap": {
        const m = v as Readonly<Record<string, string>>;
        const keys = sortedKeys(m);
        this.uvarint(keys.length);
        for (const k of keys) {
          this.string(k, true);
          this.string(m[k] as string, true);
        }
        return;
      }
    }
  }

  private number(v: number): void {
    // v + 1 must itself be a safe integer, which the reader checks.
    if (Number.isSafeInteger(v) && v >= 0 && v < Number.MAX_SAFE_INTEGER) {
      this.uvarint(v + 1);
      return;
    }
    this.uvarint(NUMBER_AS_FLOAT);
    this.room(8);
    new DataView(this.buf.buffer, this.buf.byteOffset).setFloat64(this.n, v, true);
    this.n += 8;
  }

  private string(s: string, keep: boolean): void {
    const at = this.table.get(s);
    if (at !== undefined) {
      this.uvarint(REF_TABLE + at);
      return;
    }
    if (!isWellFormed(s)) {
      this.uvarint(REF_LITERAL_JSON);
      this.literal(JSON.stringify(s));
      return;
    }
    const kept = keep && s.length <= TABLED_CHARS_MAX && this.table.size < STRING_TABLE_MAX;
    if (kept) this.table.set(s, this.table.size);
    this.uvarint(kept ? REF_LITERAL_KEPT : REF_LITERAL);
    this.literal(s);
  }

  /** literal writes uvarint(byte length) and the UTF-8 bytes of s (well-formed). */
  private literal(s: string): void {
    // A UTF-16 code unit is at most 3 UTF-8 bytes; the length prefix goes before the bytes, so
    // leave room for its longest form and move the bytes back when it is shorter.
    this.room(UVARINT_BYTES_MAX + 3 * s.length);
    const start = this.n + UVARINT_BYTES_MAX;
    const { written } = encoder.encodeInto(s, this.buf.subarray(start));
    this.uvarint(written);
    this.buf.copyWithin(this.n, start, start + written);
    this.n += written;
  }

  private uvarint(v: number): void {
    this.room(UVARINT_BYTES_MAX);
    let x = v;
    while (x >= 0x80) {
      this.buf[this.n++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
    }
    this.buf[this.n++] = x;
  }

  private room(bytes: number): void {
    if (this.n + bytes <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.n + bytes));
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
  }
}

/**
 * InstanceRowReader reads rows from bytes at `p`, each into a list of values by column (what a
 * JSON row parses to), for the caller to check and build as it does a JSON row.
 */
export class InstanceRowReader {
  /** p is the position of the next byte to read. */
  p: number;
  private readonly table: string[] = [];
  private readonly view: DataView;

  /** types: the type of each column of the snapshot's header, in its order. */
  constructor(
    private readonly bytes: Buffer,
    start: number,
    private readonly types: readonly FieldType[],
  ) {
    this.p = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  count(): number {
    return this.uvarint();
  }

  /** row reads one row's values into out (one per column). */
  row(out: unknown[]): void {
    const types = this.types;
    for (let c = 0; c < types.length; c++) out[c] = this.value(types[c] as FieldType);
  }

  private value(type: FieldType): unknown {
    switch (type) {
      case "string":
        return this.string();
      case "int":
      case "number":
        return this.number();
      case "bool": {
        const b = this.byte();
        if (b > 1) throw new RowStructureError(`byte ${this.p - 1}: a boolean is ${b}`);
        return b === 1;
      }
      case "strings": {
        const n = this.length();
        const list = new Array<string>(n);
        for (let k = 0; k < n; k++) list[k] = this.string();
        return list;
      }
      case "strmap": {
        const n = this.length();
        // No prototype: a key such as "__proto__" is a key like any other, as JSON.parse makes it.
        const m: Record<string, string> = Object.create(null);
        let last: string | undefined;
        for (let k = 0; k < n; k++) {
          const key = this.string();
          // Ascending, so no key twice, and the map is in the order a stored one is (copyRecord sorts).
          if (last !== undefined && !(key > last)) throw new RowStructureError(`byte ${this.p}: metadata key ${JSON.stringify(key)} not after ${JSON.stringify(last)}`);
          last = key;
          m[key] = this.string();
        }
        return m;
      }
    }
  }

  private number(): number {
    const u = this.uvarint();
    if (u !== NUMBER_AS_FLOAT) return u - 1;
    if (this.p + 8 > this.bytes.length) throw new RowStructureError(`byte ${this.p}: a number runs past the end`);
    const v = this.view.getFloat64(this.p, true);
    this.p += 8;
    return v;
  }

  private string(): string {
    const r = this.uvarint();
    if (r >= REF_TABLE) {
      const s = this.table[r - REF_TABLE];
      if (s === undefined) throw new RowStructureError(`byte ${this.p}: string reference ${r - REF_TABLE} past the table's ${this.table.length}`);
      return s;
    }
    const len = this.uvarint();
    const start = this.p;
    const end = start + len;
    if (end > this.bytes.length) throw new RowStructureError(`byte ${start}: a string of ${len} bytes runs past the end`);
    this.p = end;
    const s = utf8(this.bytes, start, end);
    if (r === REF_LITERAL_JSON) return jsonString(s, start);
    if (r === REF_LITERAL_KEPT) {
      if (this.table.length >= STRING_TABLE_MAX) throw new RowStructureError(`byte ${start}: the string table passes ${STRING_TABLE_MAX}`);
      this.table.push(s);
    }
    return s;
  }

  /** length is a count of items each taking at least a byte: more than the bytes left is malformed (and no huge allocation). */
  private length(): number {
    const n = this.uvarint();
    if (n > this.bytes.length - this.p) throw new RowStructureError(`byte ${this.p}: a count of ${n} exceeds the bytes left`);
    return n;
  }

  private byte(): number {
    const b = this.bytes[this.p];
    if (b === undefined) throw new RowStructureError(`byte ${this.p}: past the end`);
    this.p++;
    return b;
  }

  private uvarint(): number {
    let v = 0;
    let scale = 1;
    for (let k = 0; k < UVARINT_BYTES_MAX; k++) {
      const b = this.byte();
      v += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (v > Number.MAX_SAFE_INTEGER) throw new RowStructureError(`byte ${this.p}: a number past 2^53 - 1`);
        return v;
      }
      scale *= 0x80;
    }
    throw new RowStructureError(`byte ${this.p}: a number longer than ${UVARINT_BYTES_MAX} bytes`);
  }
}

/** isWellFormed is String.prototype.isWellFormed (Node 20 has it; TypeScript types it from lib ES2024, past this project's target). */
function isWellFormed(s: string): boolean {
  return (s as string & { isWellFormed(): boolean }).isWellFormed();
}

/** jsonString is the string a JSON string literal holds. */
function jsonString(text: string, at: number): string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RowStructureError(`byte ${at}: a JSON string literal that is not JSON`);
  }
  if (typeof v !== "string") throw new RowStructureError(`byte ${at}: a JSON string literal that holds no string`);
  return v;
}

/**
 * utf8 decodes bytes[start, end): ASCII (most of a registry's strings) by latin1, which is the same
 * for those bytes and cheaper; anything else by a fatal decoder, so bad UTF-8 is an error, not
 * U+FFFD.
 */
function utf8(bytes: Buffer, start: number, end: number): string {
  for (let k = start; k < end; k++) {
    if ((bytes[k] as number) >= 0x80) {
      try {
        return fatalDecoder.decode(bytes.subarray(start, end));
      } catch {
        throw new RowStructureError(`byte ${start}: a string is not UTF-8`);
      }
    }
  }
  return bytes.toString("latin1", start, end);
}
