/**
 * The at-most-once table (Raft dissertation §6.3), extended to a window so that one client may
 * have several writes in flight: per client, the results of its most recent sequence numbers, so
 * a retry gets the first answer instead of applying again.
 */
import { createHash, type Hash } from "node:crypto";
import type { CommandResult, RegistryCommand } from "./types.js";
import { base64Bytes } from "./validate.js";

/**
 * StoredResult is a result as the table keeps it: with the digest of the request that produced it
 * (requestDigest), so a seq reused for another request is told apart from a retry. Results stored
 * by builds before the digest have none: their seqs answer every request as a retry, as they did.
 */
export type StoredResult = CommandResult & { readonly digest?: string };

/** SessionRecord is what the table keeps per client. */
export interface SessionRecord {
  /** maxSeq is the highest sequence number that ran. */
  readonly maxSeq: number;
  /** lastAt is the cluster time of the client's last write. */
  readonly lastAt: number;
  /**
   * seqs are the seqs that ran within the window, ascending; results[k] is the stored answer of
   * seqs[k]. Two arrays, not one of [seq, result] pairs: a pair is an array of its own, ~64 bytes
   * per remembered result (~6 MB at 100,000 of them, on every node).
   */
  readonly seqs: readonly number[];
  readonly results: readonly StoredResult[];
}

/** resultPairs is a record's results as [seq, result] pairs, ascending (the snapshot's rows hold them so). */
export function resultPairs(r: SessionRecord): [number, StoredResult][] {
  return r.seqs.map((seq, k) => [seq, r.results[k] as StoredResult]);
}

/** SessionAnswer says what to do with a sessioned command. */
export type SessionAnswer =
  | { readonly kind: "new" }
  | { readonly kind: "duplicate"; readonly result: CommandResult }
  | { readonly kind: "reused" }
  | { readonly kind: "stale"; readonly maxSeq: number };

/**
 * compact keeps what a retry needs to hear (success, index, counts) and drops bulky payloads
 * (previous values, transaction reads), so the table's memory stays bounded by counts alone.
 */
function compact(r: CommandResult, digest: string): StoredResult {
  return copyWithout(r, r.ok ? DROPPED_FROM_STORED : NONE, digest) as StoredResult;
}

/** answerOf is a stored result without its digest: what a retry hears. */
function answerOf(r: StoredResult): CommandResult {
  if (r.digest === undefined) return r;
  return copyWithout(r, DIGEST, undefined) as CommandResult;
}

const DROPPED_FROM_STORED: ReadonlySet<string> = new Set(["prev", "gets"]);
const DIGEST: ReadonlySet<string> = new Set(["digest"]);
const NONE: ReadonlySet<string> = new Set();

/**
 * copyWithout copies r's own fields in their order, except `dropped`, then adds `digest` when
 * given. Key by key on purpose: V8 gave each rest/spread copy of a result (`{ ...rest, digest }`)
 * a hidden class of its own once the copying site had seen several result shapes, ~190 bytes per
 * stored result; properties added one at a time share V8's transition tree instead.
 */
function copyWithout(r: object, dropped: ReadonlySet<string>, digest: string | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) if (!dropped.has(k)) out[k] = v;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** DIGEST_CHARS: a digest is 22 base64 characters (132 bits); DIGEST_HASH_BYTES of the hash (136 bits) encode them. */
const DIGEST_CHARS = 22;
const DIGEST_HASH_BYTES = 17;

/**
 * requestDigest identifies a command's request (sha256 of its JSON, first 132 bits). The command
 * is the one decoded from the log, so every node computes the same digest for the same entry.
 * A failover's `positions` are left out: the leader attaches them (the replication positions it
 * heard that differ from the recorded ones) when it proposes, so a re-send of the same seq carries
 * other positions — none, once the first send recorded them — and would otherwise be refused as a
 * reused seq although the failover ran. A failover without positions digests as it always did.
 */
export function requestDigest(cmd: RegistryCommand): string {
  if (cmd.op === "failover" && cmd.positions !== undefined) {
    const { positions: _leaderAttached, ...request } = cmd;
    return requestDigest(request);
  }
  // The first 22 base64 characters of the hash, as before: the base64 of its first 17 bytes, copied
  // into a string of their own rather than slice()d, since V8 keeps a slice of 13+ characters as a
  // view that holds its parent alive (~60 bytes more per remembered result, 6 MB for 100,000).
  const hash = createHash("sha256");
  if (!hashKvPutJson(hash, cmd)) hash.update(JSON.stringify(cmd));
  const b64 = hash.digest().toString("base64", 0, DIGEST_HASH_BYTES);
  return Buffer.from(b64, "latin1").toString("latin1", 0, DIGEST_CHARS);
}

/**
 * hashKvPutJson feeds the hash the bytes JSON.stringify(cmd) would give for a kv.put of exactly
 * {op, key, value} (the shape decodeCommand builds) whose value is base64, and says whether it did.
 * Base64 has nothing JSON escapes and is ASCII, so the value goes in as it is: JSON.stringify copied
 * and scanned a 500 KB value again and hashing that copy cost 3 ms more per node (the value is
 * the whole entry there). Any other command, or a value that is not base64, is not fed (false).
 */
function hashKvPutJson(hash: Hash, cmd: RegistryCommand): boolean {
  if (cmd.op !== "kv.put" || typeof cmd.key !== "string" || typeof cmd.value !== "string") return false;
  const fields = Object.keys(cmd);
  if (fields.length !== 3 || fields[0] !== "op" || fields[1] !== "key" || fields[2] !== "value" || base64Bytes(cmd.value) < 0) return false;
  hash.update(`{"op":"kv.put","key":${JSON.stringify(cmd.key)},"value":"`);
  hash.update(cmd.value, "latin1");
  hash.update('"}');
  return true;
}

/** NEW is the answer for a seq that has not run (one shared object: answers are read-only). */
const NEW: SessionAnswer = { kind: "new" };

/** LOADED is the generation of records a snapshot gave (load): never the current one, so they are copied before a change. */
const LOADED = -1;

/**
 * OwnedRecord is a SessionRecord as the table holds it: its arrays may be extended in place while
 * `generation` is the table's current one (no view handed out since it was made).
 */
interface OwnedRecord {
  maxSeq: number;
  lastAt: number;
  seqs: number[];
  results: StoredResult[];
  generation: number;
}

/**
 * SessionTable is bounded by `sessionsMax` clients, least recently used first out, remembers each
 * client's last `window` sequence numbers, and forgets clients idle for `idleMs` of cluster time
 * (never by a wall clock, so a leader whose clock is ahead cannot wipe the table). Map order is the LRU order: a touched client is moved to the end.
 *
 * Records are copied once per view, not once per write: `entries()` and `get()` hand out records
 * and start a new generation; a write to a record of an older generation (one a view may hold, a
 * sliced snapshot over many turns) makes a fresh one, and a write to a record of the current
 * generation extends its arrays in place. Copying the window's two arrays on every write was
 * ~5.5 KB allocated per write on every node (window 128, sampled on a leader under puts).
 */
export class SessionTable {
  private readonly records = new Map<string, OwnedRecord>();
  /** generation: records made in it are seen by no view yet. */
  private generation = 0;

  constructor(
    private readonly sessionsMax: number,
    private readonly idleMs: number,
    private readonly window: number,
  ) {}

  get size(): number {
    return this.records.size;
  }

  /** get is client's record as of now: a later write does not change the record returned. */
  get(client: string): SessionRecord | undefined {
    const r = this.records.get(client);
    if (r !== undefined) this.generation++;
    return r;
  }

  /**
   * lookup classifies (client, seq) for the request with `digest`: new, a retry of a seq that ran
   * (same request), a seq that ran for a different request (reused), or older than the window.
   */
  lookup(client: string, seq: number, digest: string): SessionAnswer {
    const rec = this.records.get(client);
    if (!rec) return NEW;
    if (seq <= rec.maxSeq - this.window) return { kind: "stale", maxSeq: rec.maxSeq };
    // The common case, a client's next write, is past every stored seq: no need to look.
    if (seq > rec.maxSeq) return NEW;
    const k = rec.seqs.indexOf(seq);
    if (k < 0) return NEW;
    const result = rec.results[k] as StoredResult;
    if (result.digest !== undefined && result.digest !== digest) return { kind: "reused" };
    return { kind: "duplicate", result: answerOf(result) };
  }

  /**
   * expire forgets clients idle for idleMs at cluster time `at`, oldest first. It stops at the
   * first client not idle: cluster time never goes backwards, so LRU order is also lastAt order.
   */
  expire(at: number): void {
    for (const [client, r] of this.records) {
      if (at - r.lastAt < this.idleMs) return;
      this.records.delete(client);
    }
  }

  /** record stores the result of a seq that ran, makes the client the most recently used, and evicts past the bounds. */
  record(client: string, seq: number, result: CommandResult, digest: string, at: number): void {
    const prev = this.records.get(client);
    const maxSeq = Math.max(prev?.maxSeq ?? 0, seq);
    const kept = compact(result, digest);
    let rec: OwnedRecord;
    if (prev !== undefined && seq > prev.maxSeq && prev.generation === this.generation) {
      // The common case on every write, on a record no view holds: seq is the newest, so it goes
      // last and only seqs now out of the window leave from the front, in place.
      rec = prev;
      let from = 0;
      while (from < rec.seqs.length && (rec.seqs[from] as number) <= maxSeq - this.window) from++;
      if (from > 0) {
        rec.seqs.splice(0, from);
        rec.results.splice(0, from);
      }
      rec.seqs.push(seq);
      rec.results.push(kept);
      rec.maxSeq = maxSeq;
      rec.lastAt = at;
    } else {
      // A new client, a record a view may hold, or a seq below the newest (rare: writes applied
      // out of their order): fresh arrays, filtered and sorted the plain way.
      const pairs = [...(prev ? resultPairs(prev) : []), [seq, kept] as [number, StoredResult]].filter(([s]) => s > maxSeq - this.window).sort((a, b) => a[0] - b[0]);
      rec = { maxSeq, lastAt: at, seqs: pairs.map(([s]) => s), results: pairs.map(([, r]) => r), generation: this.generation };
    }
    this.records.delete(client);
    this.records.set(client, rec);
    if (this.records.size > this.sessionsMax) {
      const oldest = this.records.keys().next().value as string;
      this.records.delete(oldest);
    }
  }

  /** entries lists the records in LRU order (least recently used first), as of now: later writes do not change them. */
  entries(): [string, SessionRecord][] {
    this.generation++;
    return [...this.records];
  }

  /**
   * load replaces the table with records in LRU order (a snapshot's). They count as seen by a view
   * (generation -1): the first write to each copies it, so the caller's arrays are never extended.
   */
  load(entries: readonly (readonly [string, SessionRecord])[]): void {
    this.records.clear();
    for (const [c, r] of entries) this.records.set(c, { maxSeq: r.maxSeq, lastAt: r.lastAt, seqs: r.seqs as number[], results: r.results as StoredResult[], generation: LOADED });
  }
}
