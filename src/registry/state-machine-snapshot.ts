/**
 * The registry's snapshot format: UTF-8 JSON with a version field, records as positional arrays
 * (a 100,000-instance registry would otherwise repeat every field name 100,000 times) under a
 * column header, so the columns come from the field tables (fields.ts) and a new field needs no
 * format change: a column the reader does not know is refused (a newer writer's field would be
 * lost), a column the writer did not have reads as its default. Services sort by name, instances
 * by (service, id), keys by key and sessions in LRU order, so the same state always gives the
 * same bytes. The watch history is not part of it.
 *
 * Version 4:
 *   { version: 4, applied, clusterTime,
 *     serviceColumns: ["name", ...CONFIG_FIELDS, "createIndex", "modIndex", "master", "epoch", "masterSince"],
 *     services: [[...]],
 *     instanceColumns: [...INSTANCE_FIELDS], instances: [[...]],
 *     kv:        [[key, value, createIndex, modIndex, version]],
 *     sessions:  [[client, maxSeq, lastAt, [[seq, result]...]]],
 *     acl:       { bootstrapIndex, tokens: [[accessor, secretHash, name, rules, createIndex]] } }
 *   "acl" is there only when access control holds a token or was bootstrapped (acl.ts).
 *
 * Version 3 (still read) had no headers: its fixed columns are V3_SERVICE_COLUMNS and
 * V3_INSTANCE_COLUMNS, and no masters (every service reads as NO_MASTER; a master-slave service
 * then chooses one with its next health change). Version 2 is version 3 without clusterTime (times
 * were leader wall clocks); the cluster time is taken as the largest time it holds, so time goes on
 * from there and no recorded time lies in the future.
 */
import { type AclState, type AclToken, validateAclToken } from "./acl.js";
import { decodeAclRule } from "./codec.js";
import { MalformedSnapshotError, NotSliceableSnapshotError, RowStructureError, SnapshotVersionError, ValidationError } from "./errors.js";
import { CONFIG_FIELDS, type FieldDef, INSTANCE_FIELDS, readField } from "./fields.js";
import { compactInstanceFrom, instanceFrom, type StringPool } from "./records.js";
import { InstanceRowReader as BinaryRowReader, InstanceRowWriter as BinaryRowWriter } from "./snapshot-instance-rows.js";
import { resultPairs, type SessionRecord } from "./state-machine-sessions.js";
import type { CommandResult, Instance, KvEntry, MasterState, Service, ServiceConfig } from "./types.js";

/**
 * REGISTRY_SNAPSHOT_VERSION is the format snapshot() writes; bump it when the layout (not a column)
 * changes. Format 5 is format 4 with the instances in binary (snapshot-instance-rows.ts): the bytes
 * SNAPSHOT_BINARY_MAGIC, a JSON head (version to instanceColumns), the instance rows, and a JSON
 * tail (kv, sessions, acl). A reader older than format 5 refuses it, so a node writes format 4 while
 * any member has not said it reads 5 (formatFor; README: Upgrades).
 */
export const REGISTRY_SNAPSHOT_VERSION = 5;

/** SNAPSHOT_VERSION_JSON is the last all-JSON format; decodeSnapshot still reads it, and tests write it to build older snapshots. */
export const SNAPSHOT_VERSION_JSON = 4;

/** SNAPSHOT_BINARY_MAGIC opens a format-5 snapshot: a JSON one opens with "{", so the first byte tells them apart. */
export const SNAPSHOT_BINARY_MAGIC: Uint8Array = Uint8Array.of(0x00, 0x52, 0x4d, 0x53);

/** SnapshotFormat is a format the writer writes. */
export type SnapshotFormat = typeof REGISTRY_SNAPSHOT_VERSION | typeof SNAPSHOT_VERSION_JSON;

/**
 * SNAPSHOT_READ_MAX_UNSAID is the newest format a member reads that does not say what it reads:
 * builds began to say it (on every peer call) with format 5, and the builds before read up to 4.
 */
export const SNAPSHOT_READ_MAX_UNSAID = SNAPSHOT_VERSION_JSON;

/**
 * formatFor is the format to write for members that read up to readMax (undefined: no other member
 * to heed): this build's newest, or format 4 for a member that reads less. Format 4 is the oldest
 * this build writes; a member that cannot read even that refused it before this build too.
 */
export function formatFor(readMax: number | undefined): SnapshotFormat {
  return readMax === undefined || readMax >= REGISTRY_SNAPSHOT_VERSION ? REGISTRY_SNAPSHOT_VERSION : SNAPSHOT_VERSION_JSON;
}

/**
 * snapshotFormatOf is the format a reader must read to install data: 5 for the binary format, 4 for
 * any JSON one (every build that says what it reads reads them all; a build that does not is taken
 * to read up to 4, and formats 1-3 are older than any build still able to join).
 */
export function snapshotFormatOf(data: Uint8Array): SnapshotFormat {
  return isBinarySnapshot(data) ? REGISTRY_SNAPSHOT_VERSION : SNAPSHOT_VERSION_JSON;
}

/** isBinarySnapshot tells a format-5 snapshot by its opening bytes. */
export function isBinarySnapshot(data: Uint8Array): boolean {
  if (data.length < SNAPSHOT_BINARY_MAGIC.length) return false;
  for (let k = 0; k < SNAPSHOT_BINARY_MAGIC.length; k++) if (data[k] !== SNAPSHOT_BINARY_MAGIC[k]) return false;
  return true;
}

/** SNAPSHOT_VERSION_NO_HEADERS is the last format with fixed columns; decodeSnapshot still reads it. */
const SNAPSHOT_VERSION_NO_HEADERS = 3;
/** SNAPSHOT_VERSION_NO_CLUSTER_TIME is the last format without clusterTime; decodeSnapshot still reads it. */
const SNAPSHOT_VERSION_NO_CLUSTER_TIME = 2;

/** V3_SERVICE_COLUMNS and V3_INSTANCE_COLUMNS are the fixed columns of versions 2 and 3 (frozen: never edit). */
const V3_SERVICE_COLUMNS = ["name", "policy", "mode", "retries", "retryBudgetPercent", "perTryTimeoutMs", "fallback", "createIndex", "modIndex"] as const;
const V3_INSTANCE_COLUMNS = [
  "service",
  "id",
  "address",
  "port",
  "tags",
  "metadata",
  "weight",
  "priority",
  "zone",
  "ttlMs",
  "deregisterCriticalAfterMs",
  "health",
  "note",
  "healthSince",
  "createIndex",
  "modIndex",
] as const;

/** SERVICE_META_COLUMNS follow the config columns in a service row. */
const SERVICE_META_COLUMNS = ["createIndex", "modIndex", "master", "epoch", "masterSince"] as const;

/** SnapshotService is one service with its master and its instances in id order. */
export interface SnapshotService {
  readonly service: Service;
  readonly master: MasterState;
  readonly instances: readonly Instance[];
}

/** SnapshotState is everything a snapshot holds, in its canonical order. */
export interface SnapshotState {
  readonly applied: number;
  /** clusterTime is the machine's cluster time (ms). */
  readonly clusterTime: number;
  /** services in name order, each with its master and its instances in id order. */
  readonly services: readonly SnapshotService[];
  /** kv in key order. */
  readonly kv: readonly KvEntry[];
  /** sessions in LRU order (least recently used first). */
  readonly sessions: readonly (readonly [string, SessionRecord])[];
  /** acl: the access-control tokens in accessor order and the bootstrap index (acl.ts); absent: NO_ACL. */
  readonly acl?: AclState;
}

/** NO_ACL is the access-control state of a cluster that never bootstrapped it. */
export const NO_ACL: AclState = { bootstrapIndex: 0, tokens: [] };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** serviceColumns is the header of a version-4 service row. */
function serviceColumns(): string[] {
  return ["name", ...CONFIG_FIELDS.map((f) => f.name), ...SERVICE_META_COLUMNS];
}

/**
 * SNAPSHOT_SLICE_ROWS is how many rows (services, instances, keys or sessions; a service's sort
 * counts as its instances) one step of a SnapshotWriter encodes. Measured with 100,000 instances
 * (test/bench/registry/snapshot-stall.ts, 2-core machine): 2,000 rows made steps of ~12 ms on
 * average and 85 ms at the longest (CPU); 500 rows, ~300 steps, the longest 27–31 ms (the rest of
 * it is garbage collection), the whole snapshot 1.6–1.9 s instead of 1.2 s, which nothing waits on.
 */
export const SNAPSHOT_SLICE_ROWS = 500;

/**
 * SNAPSHOT_CHUNK_BYTES is the size of the buffers a SnapshotWriter encodes rows straight into. Each
 * row's text goes into the current buffer (TextEncoder.encodeInto), so no text longer than a row is
 * ever built: joining a step's rows into one string first made a string of up to a megabyte per
 * step, allocated in V8's large-object space (old generation), 27 MB of it per 100,000-instance
 * snapshot, which brought on the mark-compacts that stalled the loop during snapshots. The first
 * buffer is SNAPSHOT_FIRST_CHUNK_BYTES and each next one twice the last, up to this size, so a
 * small registry's snapshot stays small; the large ones are all this size, above glibc's mmap
 * threshold: each is its own mapping, given back whole when freed.
 */
export const SNAPSHOT_CHUNK_BYTES = 1 << 20;
/** SNAPSHOT_FIRST_CHUNK_BYTES is the first buffer's size (see SNAPSHOT_CHUNK_BYTES). */
export const SNAPSHOT_FIRST_CHUNK_BYTES = 1 << 14;

/**
 * SnapshotWriter encodes a state in format REGISTRY_SNAPSHOT_VERSION a slice at a time (the
 * node's SnapshotJob). It reads only the state it was given: records are never changed once a view
 * holds them (every change replaces the object; the session table copies a viewed record before
 * it changes it), so a view of arrays of them, taken at an index, stays the state at that index
 * while the machine moves on. In format 4 its bytes equal JSON.stringify of the whole document.
 * Instances may come in any order in the view: the writer sorts each service's list by id.
 */
export class SnapshotWriter {
  private readonly steps: Generator<void, void, void>;
  private readonly chunks: Uint8Array[] = [];
  /** chunk is the buffer being filled (allocated at the first row), used its bytes written so far. */
  private chunk: Uint8Array | undefined;
  private used = 0;
  private done = false;

  constructor(
    private readonly s: SnapshotState,
    private readonly sliceRows = SNAPSHOT_SLICE_ROWS,
    private readonly chunkBytes = SNAPSHOT_CHUNK_BYTES,
    private readonly format: SnapshotFormat = REGISTRY_SNAPSHOT_VERSION,
  ) {
    // encodeInto writes a character whole or not at all: a buffer must hold the longest (4 bytes).
    if (!(chunkBytes >= 4)) throw new RangeError(`chunkBytes ${chunkBytes} is below 4`);
    this.steps = this.write();
  }

  /** step encodes up to sliceRows rows; undefined while work remains, then the snapshot's chunks. */
  step(): readonly Uint8Array[] | undefined {
    if (!this.done && this.steps.next().done !== true) return undefined;
    if (!this.done && this.chunk !== undefined && this.used > 0) this.chunks.push(this.chunk.subarray(0, this.used));
    this.done = true;
    this.chunk = undefined;
    return this.chunks;
  }

  /** current is the buffer being filled, a new one when none is (sizes: see SNAPSHOT_CHUNK_BYTES). */
  private current(): Uint8Array {
    this.chunk ??= new Uint8Array(Math.min(this.chunkBytes, SNAPSHOT_FIRST_CHUNK_BYTES * 2 ** this.chunks.length));
    return this.chunk;
  }

  /** put encodes text at the end of the current buffer, going on in a new one when it fills (never splitting a character). */
  private put(text: string): void {
    let rest = text;
    for (;;) {
      const { read, written } = encoder.encodeInto(rest, this.current().subarray(this.used));
      this.used += written;
      if (read === rest.length) return;
      rest = rest.slice(read);
      this.chunks.push(this.current().subarray(0, this.used));
      this.chunk = undefined;
      this.used = 0;
    }
  }

  /** putBytes copies bytes to the end of the current buffer, going on in new ones as they fill. */
  private putBytes(bytes: Uint8Array): void {
    let from = 0;
    while (from < bytes.length) {
      const chunk = this.current();
      const n = Math.min(bytes.length - from, chunk.length - this.used);
      chunk.set(bytes.subarray(from, from + n), this.used);
      this.used += n;
      from += n;
      if (this.used === chunk.length) {
        this.chunks.push(chunk);
        this.chunk = undefined;
        this.used = 0;
      }
    }
  }

  private *write(): Generator<void, void, void> {
    const s = this.s;
    let budget = this.sliceRows;
    // Spends n rows of the slice; the caller yields when it says so.
    const spend = (n: number): boolean => {
      budget -= n;
      if (budget > 0) return false;
      budget = this.sliceRows;
      return true;
    };
    const binary = this.format === REGISTRY_SNAPSHOT_VERSION;
    if (binary) this.putBytes(SNAPSHOT_BINARY_MAGIC);
    this.put(`{"version":${this.format},"applied":${JSON.stringify(s.applied)},"clusterTime":${JSON.stringify(s.clusterTime)}`);
    this.put(`,"serviceColumns":${JSON.stringify(serviceColumns())},"services":[`);
    let first = true;
    for (const { service: v, master } of s.services) {
      const c = v.config;
      const row = [v.name, ...CONFIG_FIELDS.map((f) => c[f.name]), v.createIndex, v.modIndex, master.master, master.epoch, master.since];
      this.put((first ? "" : ",") + JSON.stringify(row));
      first = false;
      if (spend(1)) yield;
    }
    // Format 5 closes the JSON head after the header and writes the rows in binary; format 4
    // writes them as a JSON member of the same document.
    const instanceColumns = JSON.stringify(INSTANCE_FIELDS.map((f) => f.name));
    this.put(binary ? `],"instanceColumns":${instanceColumns}}` : `],"instanceColumns":${instanceColumns},"instances":[`);
    const rows = binary ? new BinaryRowWriter(INSTANCE_FIELDS) : undefined;
    if (rows) this.putBytes(rows.count(s.services.reduce((n, v) => n + v.instances.length, 0)));
    first = true;
    for (const { instances } of s.services) {
      const list = [...instances].sort(byId);
      if (spend(list.length >> 2)) yield;
      for (const i of list) {
        if (rows) this.putBytes(rows.row(i));
        else this.put((first ? "" : ",") + JSON.stringify(INSTANCE_FIELDS.map((f) => i[f.name])));
        first = false;
        if (spend(1)) yield;
      }
    }
    this.put(binary ? '{"kv":[' : '],"kv":[');
    first = true;
    for (const e of s.kv) {
      this.put((first ? "" : ",") + JSON.stringify([e.key, e.value, e.createIndex, e.modIndex, e.version]));
      first = false;
      if (spend(1)) yield;
    }
    this.put('],"sessions":[');
    first = true;
    for (const [client, r] of s.sessions) {
      this.put((first ? "" : ",") + JSON.stringify([client, r.maxSeq, r.lastAt, resultPairs(r)]));
      first = false;
      if (spend(1)) yield;
    }
    // Written only once access control holds something, so the snapshot of a cluster without it
    // keeps its bytes. A reader older than "acl" would drop it: run one version across a cluster.
    const acl = s.acl ?? NO_ACL;
    this.put(acl.bootstrapIndex === 0 && acl.tokens.length === 0 ? "]}" : `],"acl":${JSON.stringify(aclDocument(acl))}}`);
  }
}

/** aclDocument is the "acl" member of a snapshot: tokens as rows [accessor, secretHash, name, rules, createIndex]. */
function aclDocument(acl: AclState): { bootstrapIndex: number; tokens: unknown[][] } {
  return { bootstrapIndex: acl.bootstrapIndex, tokens: acl.tokens.map((t) => [t.accessor, t.secretHash, t.name, t.rules, t.createIndex]) };
}

/** decodeAcl reads the "acl" member, checking every token as apply() would have. */
function decodeAcl(v: unknown): AclState {
  if (typeof v !== "object" || v === null) throw new MalformedSnapshotError("acl is not an object");
  const o = v as Record<string, unknown>;
  const tokens = rows(o.tokens, "acl tokens", 5).map((t): AclToken => {
    if (!Array.isArray(t[3])) throw new MalformedSnapshotError("acl token rules are not a list");
    const token: AclToken = {
      accessor: str(t[0], "acl token accessor"),
      secretHash: str(t[1], "acl token secretHash"),
      name: str(t[2], "acl token name"),
      rules: (t[3] as unknown[]).map((r) => {
        try {
          return decodeAclRule(r);
        } catch (err) {
          throw new MalformedSnapshotError(`acl token rule: ${(err as Error).message}`);
        }
      }),
      createIndex: int(t[4], "acl token createIndex"),
    };
    try {
      validateAclToken(token);
    } catch (err) {
      if (err instanceof ValidationError) throw new MalformedSnapshotError(`acl token ${err.message}`);
      throw err;
    }
    return token;
  });
  return { bootstrapIndex: int(o.bootstrapIndex, "acl bootstrapIndex"), tokens };
}

function byId(a: Instance, b: Instance): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** encodeSnapshot writes a state at once, in format REGISTRY_SNAPSHOT_VERSION unless told. */
export function encodeSnapshot(s: SnapshotState, format: SnapshotFormat = REGISTRY_SNAPSHOT_VERSION): Uint8Array {
  const w = new SnapshotWriter(s, Number.POSITIVE_INFINITY, SNAPSHOT_CHUNK_BYTES, format);
  for (;;) {
    const chunks = w.step();
    if (chunks !== undefined) return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }
}

const malformed = (reason: string) => new MalformedSnapshotError(reason);

/** decodeSnapshot reads a snapshot; an unknown version throws SnapshotVersionError, anything else unreadable MalformedSnapshotError. */
export function decodeSnapshot(data: Uint8Array): SnapshotState {
  if (isBinarySnapshot(data)) return decodeBinarySnapshot(data);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(decoder.decode(data)) as Record<string, unknown>;
  } catch (err) {
    throw new MalformedSnapshotError("not UTF-8 JSON", { cause: err });
  }
  if (typeof raw !== "object" || raw === null) throw new MalformedSnapshotError("not an object");
  const version = raw.version;
  if (version !== SNAPSHOT_VERSION_JSON && version !== SNAPSHOT_VERSION_NO_HEADERS && version !== SNAPSHOT_VERSION_NO_CLUSTER_TIME) {
    throw new SnapshotVersionError(version);
  }
  const headers = version === SNAPSHOT_VERSION_JSON;
  const applied = int(raw.applied, "applied");
  const services: { service: Service; master: MasterState; instances: Instance[] }[] = [];
  const byName = new Map<string, Instance[]>();
  const svcCols = headers ? columns(raw.serviceColumns, "serviceColumns", serviceColumns()) : [...V3_SERVICE_COLUMNS];
  for (const t of rows(raw.services, "services", svcCols.length)) services.push(readServiceRow(svcCols, t, byName));
  const instCols = headers ? columns(raw.instanceColumns, "instanceColumns", INSTANCE_FIELDS.map((f) => f.name)) : [...V3_INSTANCE_COLUMNS];
  const instRow = instanceRowReader(instCols, undefined);
  for (const t of rows(raw.instances, "instances", instCols.length)) readInstanceRow(instRow, t, byName);
  const kv = rows(raw.kv, "kv", KV_COLUMNS).map(readKvRow);
  const sessions = rows(raw.sessions, "sessions", SESSION_COLUMNS).map(readSessionRow);
  const clusterTime = version === SNAPSHOT_VERSION_NO_CLUSTER_TIME ? largestTime(services, sessions) : num(raw.clusterTime, "clusterTime");
  return raw.acl === undefined ? { applied, clusterTime, services, kv, sessions } : { applied, clusterTime, services, kv, sessions, acl: decodeAcl(raw.acl) };
}

/** KV_COLUMNS and SESSION_COLUMNS are the widths of a kv row and a session row. */
const KV_COLUMNS = 5;
const SESSION_COLUMNS = 4;

/** readServiceRow reads one service row and files an empty instance list under its name. */
function readServiceRow(svcCols: readonly string[], t: readonly unknown[], byName: Map<string, Instance[]>): { service: Service; master: MasterState; instances: Instance[] } {
  const o = byColumn(svcCols, t);
  const config = readRow(CONFIG_FIELDS, o, "service") as unknown as ServiceConfig;
  const service: Service = { name: str(o.name, "service name"), config, createIndex: int(o.createIndex, "service createIndex"), modIndex: int(o.modIndex, "service modIndex") };
  const master: MasterState =
    o.master === undefined ? { master: "", epoch: 0, since: 0 } : { master: str(o.master, "service master"), epoch: int(o.epoch, "service epoch"), since: num(o.masterSince, "service masterSince") };
  const instances: Instance[] = [];
  byName.set(service.name, instances);
  return { service, master, instances };
}

/**
 * InstanceRowReader reads instance rows under one header: for each field of INSTANCE_FIELDS, the
 * column that holds it (-1: a column the writer did not have, read as the field's default) and
 * the label its errors name. Worked out once per snapshot, not per row: a learner reads 100,000
 * rows, and naming the values of each by its header (an object per row) and building twenty labels
 * per row were a fifth of the read.
 */
interface InstanceRowReader {
  readonly at: readonly number[];
  readonly labels: readonly string[];
  /** values is one row's checked values, reused row after row (the record is built from it by position). */
  readonly values: unknown[];
  /** pool, when given, makes each record compact as it is read (records.ts), rather than in a second pass. */
  readonly pool: StringPool | undefined;
}

function instanceRowReader(instCols: readonly string[], pool: StringPool | undefined): InstanceRowReader {
  return {
    at: INSTANCE_FIELDS.map((f) => instCols.indexOf(f.name)),
    labels: INSTANCE_FIELDS.map((f) => `instance ${f.name}`),
    values: new Array<unknown>(INSTANCE_FIELDS.length),
    pool,
  };
}

/** readInstanceRow reads one instance row into its service's list. */
function readInstanceRow(r: InstanceRowReader, t: readonly unknown[], byName: Map<string, Instance[]>): void {
  const values = r.values;
  for (let k = 0; k < INSTANCE_FIELDS.length; k++) {
    const col = r.at[k]!;
    values[k] = readField(INSTANCE_FIELDS[k]!, col < 0 ? undefined : t[col], r.labels[k]!, malformed);
  }
  fileInstance(r, byName);
}

/** fileInstance builds the record of r's checked values and files it under its service. */
function fileInstance(r: InstanceRowReader, byName: Map<string, Instance[]>): void {
  const inst = r.pool ? compactInstanceFrom(r.values, r.pool) : instanceFrom(r.values);
  const list = byName.get(inst.service);
  if (!list) throw new MalformedSnapshotError(`instance ${inst.id} of unknown service ${inst.service}`);
  list.push(inst);
}

/**
 * readBinaryInstanceRow is readInstanceRow for a binary row, whose values the row reader made
 * fresh and of their column's type (a string, a number, a boolean, a list of strings, a map of
 * strings in key order): what remains to check is that an int is a safe integer and a number
 * finite. It keeps the lists and maps it is given, where readField copies JSON's.
 */
function readBinaryInstanceRow(r: InstanceRowReader, t: readonly unknown[], byName: Map<string, Instance[]>): void {
  const values = r.values;
  for (let k = 0; k < INSTANCE_FIELDS.length; k++) {
    const f = INSTANCE_FIELDS[k]!;
    const col = r.at[k]!;
    if (col < 0) {
      values[k] = readField(f, undefined, r.labels[k]!, malformed);
      continue;
    }
    const v = t[col];
    if (f.type === "int" ? !Number.isSafeInteger(v) : f.type === "number" && !Number.isFinite(v)) {
      throw new MalformedSnapshotError(`${r.labels[k]} is not ${f.type === "int" ? "an integer" : "a number"}`);
    }
    values[k] = v;
  }
  fileInstance(r, byName);
}

function readKvRow(t: readonly unknown[]): KvEntry {
  return { key: str(t[0], "kv key"), value: str(t[1], "kv value"), createIndex: int(t[2], "kv createIndex"), modIndex: int(t[3], "kv modIndex"), version: int(t[4], "kv version") };
}

function readSessionRow(t: readonly unknown[]): [string, SessionRecord] {
  const results = t[3];
  if (!Array.isArray(results) || !results.every((x) => Array.isArray(x) && x.length === 2 && typeof x[1] === "object" && x[1] !== null)) {
    throw new MalformedSnapshotError("session results are not [seq, result] pairs");
  }
  return [
    str(t[0], "session client"),
    {
      maxSeq: int(t[1], "session maxSeq"),
      lastAt: num(t[2], "session lastAt"),
      seqs: results.map((x) => int(x[0], "session result seq")),
      results: results.map((x) => x[1] as CommandResult),
    },
  ];
}

/**
 * SNAPSHOT_READ_SLICE_ROWS is how many rows one step of a SnapshotReader parses and checks (and
 * the registry's restore then makes compact): reading a row costs more than writing one, and
 * 2,000 rows measured 30-40 ms of CPU per step on the project's loaded 2-core machine
 * (test/bench/registry/snapshot-stall.ts). Steps follow each other at the next loop turn
 * (NODE_SCHEDULER.after(0)), so a smaller step costs little: 500 rows kept the loop's largest
 * delay at the median where 1,000 rows had it with a millisecond's wait between steps (18-19 ms),
 * and restored 100,000 instances in 0.70 s against 0.99 s.
 */
export const SNAPSHOT_READ_SLICE_ROWS = 500;

/** One instance, thrown and caught inside the reader: it never leaves this module. */
const notSliceable = new NotSliceableSnapshotError();

// The bytes the reader looks for between values; UTF-8 never uses them inside a multi-byte character.
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * stringEnd is the index past the string that opens at p: the first quote after it not escaped
 * (preceded by an even number of backslashes). Quotes are found by Buffer#indexOf, not byte by
 * byte in JavaScript: strings are most of a snapshot's bytes.
 */
function stringEnd(b: Buffer, p: number): number {
  for (let from = p + 1; ; ) {
    const q = b.indexOf(QUOTE, from);
    if (q < 0) throw notSliceable;
    let backslashes = 0;
    while (b[q - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/** valueEnd is the index past the JSON value that starts at p (its well-formedness is JSON.parse's to check). */
function valueEnd(b: Buffer, p: number): number {
  const c = b[p];
  if (c === QUOTE) return stringEnd(b, p);
  if (c === LBRACKET || c === LBRACE) {
    let depth = 0;
    for (let i = p; i < b.length; i++) {
      const x = b[i];
      if (x === QUOTE) i = stringEnd(b, i) - 1;
      else if (x === LBRACKET || x === LBRACE) depth++;
      else if ((x === RBRACKET || x === RBRACE) && --depth === 0) return i + 1;
    }
    throw notSliceable;
  }
  let i = p;
  while (i < b.length && !isSpace(b[i]) && b[i] !== COMMA && b[i] !== RBRACKET && b[i] !== RBRACE) i++;
  if (i === p) throw notSliceable;
  return i;
}

/**
 * SnapshotReader decodes a snapshot a slice at a time (a learner installing a large snapshot): each
 * step parses and checks up to sliceRows rows, so the event loop is never held for the whole of
 * it. Its result equals decodeSnapshot's: bytes not laid out as SnapshotWriter writes them
 * (an older version, other key order), and any error on the way, are decoded by decodeSnapshot in
 * one step, so the error is decodeSnapshot's own. A format-5 snapshot has one layout, which
 * decodeSnapshot reads with this reader too: its error is thrown at once, not found a second time.
 */
export class SnapshotReader {
  private readonly steps: Generator<void, SnapshotState, void>;
  private result: SnapshotState | undefined;
  /** compact tells, once step() gave the state, whether its instance records are compact (read with a pool, not decoded whole after a fallback). */
  compact = false;
  private p = 0;
  /** bytes are the snapshot's bytes as a Buffer (no copy), for indexOf. */
  private readonly bytes: Buffer;
  /**
   * binary: a format-5 snapshot, which only this reader reads: an error is the caller's (as a
   * MalformedSnapshotError), with no JSON decode to fall back to.
   */
  private readonly binary: boolean;

  /**
   * pool, when given, makes each instance record compact as it is read (what the registry stores);
   * without it the records are as decodeSnapshot gives them.
   */
  constructor(
    private readonly data: Uint8Array,
    private readonly sliceRows = SNAPSHOT_READ_SLICE_ROWS,
    private readonly pool?: StringPool,
  ) {
    this.bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.binary = isBinarySnapshot(data);
    this.steps = this.read();
  }

  /** step reads up to sliceRows rows; undefined while work remains, then the state. */
  step(): SnapshotState | undefined {
    if (this.result !== undefined) return this.result;
    try {
      const r = this.steps.next();
      if (r.done !== true) return undefined;
      this.result = r.value;
      this.compact = this.pool !== undefined;
    } catch (err) {
      if (this.binary) throw malformedAt(err, this.p);
      this.result = decodeSnapshot(this.data);
    }
    return this.result;
  }

  private skipSpace(): void {
    const b = this.bytes;
    while (isSpace(b[this.p])) this.p++;
  }

  private expect(c: number): void {
    this.skipSpace();
    if (this.bytes[this.p] !== c) throw notSliceable;
    this.p++;
  }

  private value(): unknown {
    this.skipSpace();
    const start = this.p;
    this.p = valueEnd(this.bytes, start);
    return JSON.parse(decoder.decode(this.bytes.subarray(start, this.p)));
  }

  /** field reads `"name":` (after a comma unless first) and the value's start. */
  private field(name: string, first = false): void {
    if (!first) this.expect(COMMA);
    if (this.value() !== name) throw notSliceable;
    this.expect(COLON);
  }

  /** batches reads an array of rows, sliceRows at a time, each batch parsed by one JSON.parse. */
  private *batches(): Generator<unknown[], void, void> {
    const b = this.bytes;
    this.expect(LBRACKET);
    this.skipSpace();
    if (b[this.p] === RBRACKET) {
      this.p++;
      return;
    }
    for (;;) {
      const start = this.p;
      let n = 0;
      let more = true;
      while (n < this.sliceRows) {
        this.skipSpace();
        this.p = valueEnd(b, this.p);
        n++;
        this.skipSpace();
        if (b[this.p] === COMMA) {
          this.p++;
          continue;
        }
        if (b[this.p] !== RBRACKET) throw notSliceable;
        more = false;
        break;
      }
      // A full batch ends past a comma, the last one before the bracket.
      const end = more ? this.p - 1 : this.p;
      if (!more) this.p++;
      const rows = JSON.parse(`[${decoder.decode(b.subarray(start, end))}]`) as unknown[];
      if (rows.length !== n) throw notSliceable;
      yield rows;
      if (!more) return;
    }
  }

  /** binaryInstances reads format 5's instance rows, sliceRows per step, each checked as a JSON row is. */
  private *binaryInstances(instCols: readonly string[], instRow: InstanceRowReader, byName: Map<string, Instance[]>): Generator<void, void, void> {
    const types = instCols.map((c) => (INSTANCE_FIELDS.find((f) => f.name === c) as FieldDef<Instance>).type);
    const reader = new BinaryRowReader(this.bytes, this.p, types);
    const n = reader.count();
    const t = new Array<unknown>(instCols.length);
    let budget = this.sliceRows;
    for (let k = 0; k < n; k++) {
      reader.row(t);
      this.p = reader.p;
      readBinaryInstanceRow(instRow, t, byName);
      if (--budget > 0) continue;
      budget = this.sliceRows;
      yield;
    }
    this.p = reader.p;
    yield;
  }

  private *read(): Generator<void, SnapshotState, void> {
    const binary = this.binary;
    if (binary) this.p = SNAPSHOT_BINARY_MAGIC.length;
    this.expect(LBRACE);
    this.field("version", true);
    const version = this.value();
    if (version !== (binary ? REGISTRY_SNAPSHOT_VERSION : SNAPSHOT_VERSION_JSON)) throw binary ? new SnapshotVersionError(version) : notSliceable;
    this.field("applied");
    const applied = int(this.value(), "applied");
    this.field("clusterTime");
    const clusterTime = num(this.value(), "clusterTime");
    this.field("serviceColumns");
    const svcCols = columns(this.value(), "serviceColumns", serviceColumns());
    const services: { service: Service; master: MasterState; instances: Instance[] }[] = [];
    const byName = new Map<string, Instance[]>();
    this.field("services");
    for (const batch of this.batches()) {
      for (const t of rows(batch, "services", svcCols.length)) services.push(readServiceRow(svcCols, t, byName));
      yield;
    }
    this.field("instanceColumns");
    const instCols = columns(this.value(), "instanceColumns", INSTANCE_FIELDS.map((f) => f.name));
    const instRow = instanceRowReader(instCols, this.pool);
    if (binary) {
      this.expect(RBRACE);
      yield* this.binaryInstances(instCols, instRow, byName);
      this.expect(LBRACE);
      this.field("kv", true);
    } else {
      this.field("instances");
      for (const batch of this.batches()) {
        for (const t of rows(batch, "instances", instCols.length)) readInstanceRow(instRow, t, byName);
        yield;
      }
      this.field("kv");
    }
    const kv: KvEntry[] = [];
    for (const batch of this.batches()) {
      for (const t of rows(batch, "kv", KV_COLUMNS)) kv.push(readKvRow(t));
      yield;
    }
    const sessions: [string, SessionRecord][] = [];
    this.field("sessions");
    for (const batch of this.batches()) {
      for (const t of rows(batch, "sessions", SESSION_COLUMNS)) sessions.push(readSessionRow(t));
      yield;
    }
    // The access-control member, when there is one, is small (at most ACL_TOKENS_MAX tokens): read in one step.
    this.skipSpace();
    let acl: AclState | undefined;
    if (this.bytes[this.p] === COMMA) {
      this.field("acl");
      acl = decodeAcl(this.value());
    }
    this.expect(RBRACE);
    this.skipSpace();
    if (this.p !== this.bytes.length) throw notSliceable;
    return acl === undefined ? { applied, clusterTime, services, kv, sessions } : { applied, clusterTime, services, kv, sessions, acl };
  }
}

/** decodeBinarySnapshot reads a format-5 snapshot in one go; anything unreadable is a MalformedSnapshotError. */
function decodeBinarySnapshot(data: Uint8Array): SnapshotState {
  const reader = new SnapshotReader(data, Number.POSITIVE_INFINITY);
  for (;;) {
    const s = reader.step();
    if (s !== undefined) return s;
  }
}

/** malformedAt is the error a format-5 read gives for err, thrown with the reader at byte p. */
function malformedAt(err: unknown, p: number): Error {
  if (err instanceof MalformedSnapshotError || err instanceof SnapshotVersionError) return err;
  if (err instanceof RowStructureError) return new MalformedSnapshotError(err.message);
  if (err === notSliceable) return new MalformedSnapshotError(`not laid out as format ${REGISTRY_SNAPSHOT_VERSION} at byte ${p}`);
  return new MalformedSnapshotError(`unreadable at byte ${p}`, { cause: err });
}

/** columns checks a header: strings, each known (a column this code does not know would be lost), none twice. */
function columns(v: unknown, what: string, known: readonly string[]): string[] {
  if (!Array.isArray(v) || !v.every((c) => typeof c === "string")) throw new MalformedSnapshotError(`${what} is not a list of names`);
  const seen = new Set<string>();
  for (const c of v as string[]) {
    if (!known.includes(c)) throw new MalformedSnapshotError(`${what} holds unknown column ${JSON.stringify(c)}`);
    if (seen.has(c)) throw new MalformedSnapshotError(`${what} holds column ${JSON.stringify(c)} twice`);
    seen.add(c);
  }
  return v as string[];
}

/** byColumn names a row's values by its header. */
function byColumn(cols: readonly string[], t: readonly unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  cols.forEach((c, i) => {
    o[c] = t[i];
  });
  return o;
}

/** readRow reads a record's fields by the table; a column the writer did not have reads as its default. */
function readRow<T>(fields: readonly FieldDef<T>[], o: Record<string, unknown>, what: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) out[f.name] = readField(f, o[f.name], `${what} ${f.name}`, malformed);
  return out;
}

/** largestTime is the latest time a version-2 snapshot records (0 when it records none). */
function largestTime(services: readonly { readonly instances: readonly Instance[] }[], sessions: readonly (readonly [string, SessionRecord])[]): number {
  let t = 0;
  for (const { instances } of services) for (const i of instances) t = Math.max(t, i.healthSince);
  for (const [, r] of sessions) t = Math.max(t, r.lastAt);
  return t;
}

function rows(v: unknown, what: string, width: number): unknown[][] {
  if (!Array.isArray(v)) throw new MalformedSnapshotError(`${what} is not a list`);
  for (const t of v) if (!Array.isArray(t) || t.length !== width) throw new MalformedSnapshotError(`${what} holds a record that is not ${width} fields`);
  return v as unknown[][];
}

function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw new MalformedSnapshotError(`${what} is not a string`);
  return v;
}

function num(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw new MalformedSnapshotError(`${what} is not a number`);
  return v;
}

function int(v: unknown, what: string): number {
  if (!Number.isSafeInteger(v)) throw new MalformedSnapshotError(`${what} is not an integer`);
  return v as number;
}
