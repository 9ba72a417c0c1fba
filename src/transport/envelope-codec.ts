/**
 * The peer stream's frames (raftmesh.raft.v1.Envelope, proto/raftmesh/raft/v1/raft.proto) encoded
 * and decoded by hand, in the same protobuf wire format, so a node of this build and one of an
 * older build (which used @grpc/proto-loader for it) read each other's frames.
 *
 * Why by hand: every heartbeat, append and response crossed protobufjs four times (fromObject and
 * encode on the sender, decode and toObject on the receiver), each building a full copy of the
 * message as objects. An idle leader allocated ~660 KiB/s on that path (README "Benchmarks"), which
 * kept V8's memory reducer from shrinking its heap. Here the sender sizes the frame, writes it into
 * one buffer, and the receiver reads it straight into the WireEnvelope shape proto-loader gave
 * (longs as Number, bytes as Buffer views, defaults filled in, `context` absent when not sent,
 * `snapshot` null when not sent); wire.ts's decodeMessage checks it as before.
 *
 * The decoder is stricter than protobufjs: a known field with the wrong wire type, a length past the
 * end, a varint longer than 10 bytes or a group is a WireFormatError (protobufjs read such input as
 * something else). Unknown fields are skipped, as protobuf requires (a newer peer may add some). A
 * field that appears twice keeps the last value (repeated fields add up), as protobufjs did.
 */
import { WireFormatError } from "./errors.js";
import type { WireEntry, WireEnvelope, WireMessage, WireSnapshotMeta } from "./wire.js";

/** Wire types of the protobuf encoding. */
const VARINT = 0;
const FIXED64 = 1;
const LENGTH = 2;
const FIXED32 = 5;

/** VARINT_BYTES_MAX: a 64-bit varint takes at most 10 bytes. */
const VARINT_BYTES_MAX = 10;
/** TWO_32 splits a Number into the 32-bit halves a varint is written from. */
const TWO_32 = 2 ** 32;

// ---------------------------------------------------------------------------------------------
// Encoding: sizes first (so the frame is one allocation), then the bytes.

function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 4;
  let rest = Math.floor(v / 0x10000000);
  while (rest > 0) {
    n++;
    rest = Math.floor(rest / 128);
  }
  return n;
}

/** tagged sizes: a field's key (field numbers here are below 16: one byte) plus its value. */
const uintField = (v: number): number => (v === 0 ? 0 : 1 + varintSize(v));
const bytesField = (len: number): number => 1 + varintSize(len) + len;

function entrySize(e: WireEntry): number {
  return uintField(e.term) + uintField(e.index) + uintField(e.kind) + (e.data.length === 0 ? 0 : bytesField(e.data.length));
}

function metaSize(m: WireSnapshotMeta): number {
  let n = uintField(m.index) + uintField(m.term) + uintField(m.dataBytes);
  for (const v of m.voters) n += bytesField(Buffer.byteLength(v));
  for (const l of m.learners) n += bytesField(Buffer.byteLength(l));
  return n;
}

/** Sizes is what encoding one message needs to know again: its own size and its parts'. */
interface Sizes {
  readonly message: number;
  readonly entries: number[];
  readonly snapshot: number;
}

function messageSizes(m: WireMessage): Sizes {
  let n = uintField(m.type);
  if (m.from.length > 0) n += bytesField(Buffer.byteLength(m.from));
  if (m.to.length > 0) n += bytesField(Buffer.byteLength(m.to));
  n += uintField(m.term) + uintField(m.logTerm) + uintField(m.index);
  const entries: number[] = [];
  for (const e of m.entries) {
    const s = entrySize(e);
    entries.push(s);
    n += bytesField(s);
  }
  n += uintField(m.commit) + (m.reject ? 2 : 0) + uintField(m.rejectHint);
  const snapshot = m.snapshot ? metaSize(m.snapshot) : -1;
  if (m.snapshot) n += bytesField(snapshot);
  // proto3 `optional`: present, even when empty, whenever it is set.
  if (m.context !== undefined) n += bytesField(m.context.length);
  n += uintField(m.readReject ?? 0);
  return { message: n, entries, snapshot };
}

/** Writer puts bytes into a frame sized beforehand. */
class Writer {
  at = 0;
  constructor(readonly buf: Buffer) {}

  varint(v: number): void {
    const buf = this.buf;
    let lo = v >>> 0;
    let hi = Math.floor(v / TWO_32);
    while (hi > 0 || lo > 0x7f) {
      buf[this.at++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    buf[this.at++] = lo;
  }

  key(field: number, wireType: number): void {
    this.buf[this.at++] = (field << 3) | wireType;
  }

  uint(field: number, v: number): void {
    if (v === 0) return;
    this.key(field, VARINT);
    this.varint(v);
  }

  bytes(field: number, b: Uint8Array): void {
    this.key(field, LENGTH);
    this.varint(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  string(field: number, s: string): void {
    this.key(field, LENGTH);
    const len = Buffer.byteLength(s);
    this.varint(len);
    this.at += this.buf.write(s, this.at, len, "utf8");
  }
}

function writeMessage(w: Writer, m: WireMessage, sizes: Sizes): void {
  w.uint(1, m.type);
  if (m.from.length > 0) w.string(2, m.from);
  if (m.to.length > 0) w.string(3, m.to);
  w.uint(4, m.term);
  w.uint(5, m.logTerm);
  w.uint(6, m.index);
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i] as WireEntry;
    w.key(7, LENGTH);
    w.varint(sizes.entries[i] as number);
    w.uint(1, e.term);
    w.uint(2, e.index);
    w.uint(3, e.kind);
    if (e.data.length > 0) w.bytes(4, e.data);
  }
  w.uint(8, m.commit);
  if (m.reject) {
    w.key(9, VARINT);
    w.varint(1);
  }
  w.uint(10, m.rejectHint);
  if (m.snapshot) {
    const s = m.snapshot;
    w.key(11, LENGTH);
    w.varint(sizes.snapshot);
    w.uint(1, s.index);
    w.uint(2, s.term);
    for (const v of s.voters) w.string(3, v);
    for (const l of s.learners) w.string(4, l);
    w.uint(5, s.dataBytes);
  }
  if (m.context !== undefined) w.bytes(12, m.context);
  w.uint(13, m.readReject ?? 0);
}

/** encodeEnvelope is an Envelope's protobuf bytes (the Stream call's request serializer). */
export function encodeEnvelope(e: WireEnvelope): Buffer {
  const sizes = e.messages.map(messageSizes);
  let total = 0;
  for (const s of sizes) total += bytesField(s.message);
  const w = new Writer(Buffer.allocUnsafe(total));
  for (let i = 0; i < e.messages.length; i++) {
    const s = sizes[i] as Sizes;
    w.key(1, LENGTH);
    w.varint(s.message);
    writeMessage(w, e.messages[i] as WireMessage, s);
  }
  if (w.at !== total) throw new Error(`envelope encoder wrote ${w.at} bytes of ${total}: a bug`);
  return w.buf;
}

// ---------------------------------------------------------------------------------------------
// Decoding.

/** Reader walks one message's bytes: [at, end) of buf. */
class Reader {
  constructor(
    readonly buf: Buffer,
    public at: number,
    readonly end: number,
  ) {}

  varint(): number {
    const buf = this.buf;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      if (this.at >= this.end) throw new WireFormatError("varint runs past the end of its message");
      const b = buf[this.at++] as number;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new WireFormatError(`varint longer than ${VARINT_BYTES_MAX} bytes`);
  }

  /** length reads a length prefix and returns the end of what it covers. */
  length(): number {
    const len = this.varint();
    const end = this.at + len;
    if (len > this.end - this.at) throw new WireFormatError(`length ${len} runs past the end of its message`);
    return end;
  }

  bytes(): Buffer {
    const end = this.length();
    const out = this.buf.subarray(this.at, end);
    this.at = end;
    return out;
  }

  string(): string {
    const end = this.length();
    const out = this.buf.toString("utf8", this.at, end);
    this.at = end;
    return out;
  }

  skip(wireType: number): void {
    if (wireType === VARINT) this.varint();
    else if (wireType === FIXED64) this.advance(8);
    else if (wireType === LENGTH) this.at = this.length();
    else if (wireType === FIXED32) this.advance(4);
    else throw new WireFormatError(`wire type ${wireType} (groups or invalid) is not read here`);
  }

  private advance(n: number): void {
    if (n > this.end - this.at) throw new WireFormatError("fixed-width field runs past the end of its message");
    this.at += n;
  }
}

/** expect checks a known field's wire type. */
function expect(field: number, wireType: number, want: number, what: string): void {
  if (wireType !== want) throw new WireFormatError(`${what} field ${field} has wire type ${wireType}, not ${want}`);
}

/** int32 is a varint read as the int32 protobufjs gives enums (a 64-bit value keeps its low 32 bits). */
function int32(v: number): number {
  return (v % TWO_32) | 0;
}

/** key reads a field's key (its number << 3 | its wire type); field numbers end at 2^29 - 1. */
function key(r: Reader): number {
  const k = r.varint();
  if (k > 0xffffffff) throw new WireFormatError(`field key ${k} is past the largest field number`);
  return k;
}

/** uint reads a known varint field, whose key is k. */
function uint(r: Reader, k: number, what: string): number {
  expect(k >>> 3, k & 7, VARINT, what);
  return r.varint();
}

/** delimited checks that a known field, whose key is k, is length-delimited. */
function delimited(k: number, what: string): void {
  expect(k >>> 3, k & 7, LENGTH, what);
}

function readEntry(r: Reader): WireEntry {
  const e: WireEntry = { term: 0, index: 0, kind: 0, data: EMPTY };
  while (r.at < r.end) {
    const k = key(r);
    switch (k >>> 3) {
      case 1:
        e.term = uint(r, k, "Entry");
        break;
      case 2:
        e.index = uint(r, k, "Entry");
        break;
      case 3:
        e.kind = int32(uint(r, k, "Entry"));
        break;
      case 4:
        delimited(k, "Entry");
        e.data = r.bytes();
        break;
      default:
        r.skip(k & 7);
    }
  }
  return e;
}

function readMeta(r: Reader): WireSnapshotMeta {
  const m: WireSnapshotMeta = { index: 0, term: 0, voters: [], learners: [], dataBytes: 0 };
  while (r.at < r.end) {
    const k = key(r);
    switch (k >>> 3) {
      case 1:
        m.index = uint(r, k, "SnapshotMeta");
        break;
      case 2:
        m.term = uint(r, k, "SnapshotMeta");
        break;
      case 3:
        delimited(k, "SnapshotMeta");
        m.voters.push(r.string());
        break;
      case 4:
        delimited(k, "SnapshotMeta");
        m.learners.push(r.string());
        break;
      case 5:
        m.dataBytes = uint(r, k, "SnapshotMeta");
        break;
      default:
        r.skip(k & 7);
    }
  }
  return m;
}

/** sub runs read over the length-delimited field at r and moves r past it. */
function sub<T>(r: Reader, read: (inner: Reader) => T): T {
  const end = r.length();
  const out = read(new Reader(r.buf, r.at, end));
  r.at = end;
  return out;
}

function readMessage(r: Reader): WireMessage {
  const m: WireMessage = { type: 0, from: "", to: "", term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, snapshot: null, readReject: 0 };
  while (r.at < r.end) {
    const k = key(r);
    switch (k >>> 3) {
      case 1:
        m.type = int32(uint(r, k, "Message"));
        break;
      case 2:
        delimited(k, "Message");
        m.from = r.string();
        break;
      case 3:
        delimited(k, "Message");
        m.to = r.string();
        break;
      case 4:
        m.term = uint(r, k, "Message");
        break;
      case 5:
        m.logTerm = uint(r, k, "Message");
        break;
      case 6:
        m.index = uint(r, k, "Message");
        break;
      case 7:
        delimited(k, "Message");
        m.entries.push(sub(r, readEntry));
        break;
      case 8:
        m.commit = uint(r, k, "Message");
        break;
      case 9:
        m.reject = uint(r, k, "Message") !== 0;
        break;
      case 10:
        m.rejectHint = uint(r, k, "Message");
        break;
      case 11:
        delimited(k, "Message");
        m.snapshot = sub(r, readMeta);
        break;
      case 12:
        delimited(k, "Message");
        m.context = r.bytes();
        break;
      case 13:
        m.readReject = int32(uint(r, k, "Message"));
        break;
      default:
        r.skip(k & 7);
    }
  }
  return m;
}

/** decodeEnvelope reads an Envelope's protobuf bytes (the Stream call's request deserializer); malformed input is a WireFormatError. */
export function decodeEnvelope(buf: Buffer): WireEnvelope {
  const r = new Reader(buf, 0, buf.length);
  const messages: WireMessage[] = [];
  while (r.at < r.end) {
    const k = key(r);
    if (k >>> 3 === 1) {
      delimited(k, "Envelope");
      messages.push(sub(r, readMessage));
    } else r.skip(k & 7);
  }
  return { messages };
}

const EMPTY: Buffer = Buffer.alloc(0);
