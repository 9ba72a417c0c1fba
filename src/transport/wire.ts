/**
 * The decoded shapes of raft.proto as @grpc/proto-loader produces them (keepCase false, longs as
 * Number, bytes as Buffer, defaults on, enums as numbers), and the conversion between the core's
 * Message and its wire form. Decoding validates everything a peer could get wrong, because a frame
 * comes from another process: a bad frame is a WireFormatError, never a crash.
 */
import assert from "node:assert/strict";
import { type Entry, EntryKind, type Message, MessageType, nodeId, ReadRejectReason } from "../raft/types.js";
import { WireFormatError } from "./errors.js";

/** WireEntry is raftmesh.raft.v1.Entry. */
export interface WireEntry {
  term: number;
  index: number;
  kind: number;
  data: Uint8Array;
}

/** WireSnapshotMeta is raftmesh.raft.v1.SnapshotMeta; the data travels in SnapshotChunk.data. */
export interface WireSnapshotMeta {
  index: number;
  term: number;
  voters: string[];
  learners: string[];
  dataBytes: number;
}

/** WireMessage is raftmesh.raft.v1.Message. `context` is absent, not empty, when the core had none. */
export interface WireMessage {
  type: number;
  from: string;
  to: string;
  term: number;
  logTerm: number;
  index: number;
  entries: WireEntry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  snapshot: WireSnapshotMeta | null;
  context?: Uint8Array;
  /** readReject is a WIRE_READ_REJECT number; 0 or absent when unset (always absent from older peers). */
  readReject?: number;
}

/** WireEnvelope is raftmesh.raft.v1.Envelope: one frame of the Stream call, a batch delivered in order. */
export interface WireEnvelope {
  messages: WireMessage[];
}

/** WireSnapshotChunk is raftmesh.raft.v1.SnapshotChunk: header on the first chunk, sha256 on the last. */
export interface WireSnapshotChunk {
  header: WireMessage | null;
  data: Uint8Array;
  sha256: Uint8Array;
}

/** WireAck is raftmesh.raft.v1.StreamAck and SnapshotAck, both empty. */
export type WireAck = Record<string, never>;

/** WIRE_MESSAGE_TYPE maps the core's network message types to the proto enum; Hup is local and has no number. */
export const WIRE_MESSAGE_TYPE = {
  [MessageType.App]: 1,
  [MessageType.AppResp]: 2,
  [MessageType.Vote]: 3,
  [MessageType.VoteResp]: 4,
  [MessageType.PreVote]: 5,
  [MessageType.PreVoteResp]: 6,
  [MessageType.Snap]: 7,
  [MessageType.Heartbeat]: 8,
  [MessageType.HeartbeatResp]: 9,
  [MessageType.ReadIndex]: 10,
  [MessageType.ReadIndexResp]: 11,
  [MessageType.TimeoutNow]: 12,
} as const satisfies Record<Exclude<MessageType, typeof MessageType.Hup>, number>;

/** WIRE_READ_REJECT maps the core's read rejection reasons to the proto enum (0 is "unset"). */
export const WIRE_READ_REJECT = {
  [ReadRejectReason.NotLeader]: 1,
  [ReadRejectReason.Limit]: 2,
  [ReadRejectReason.Expired]: 3,
} as const satisfies Record<ReadRejectReason, number>;

const CORE_READ_REJECT = new Map<number, ReadRejectReason>(
  Object.entries(WIRE_READ_REJECT).map(([core, wire]) => [wire, core as ReadRejectReason]),
);

const CORE_MESSAGE_TYPE = new Map<number, MessageType>(
  Object.entries(WIRE_MESSAGE_TYPE).map(([core, wire]) => [wire, core as MessageType]),
);

/** MESSAGE_OVERHEAD_BYTES is a generous bound on what a message costs beyond its ids, entry data and context. */
const MESSAGE_OVERHEAD_BYTES = 96;
/** ENTRY_WIRE_OVERHEAD_BYTES is a generous bound on an entry's tags, varints and length prefix. */
const ENTRY_WIRE_OVERHEAD_BYTES = 40;

/** isNetworkMessage tells whether a message type may cross the network (everything but Hup). */
export function isNetworkMessage(m: Message): boolean {
  return m.type in WIRE_MESSAGE_TYPE;
}

/** wireMessageBytes estimates, from above, the encoded size of a message without its snapshot data. */
export function wireMessageBytes(m: Message): number {
  let bytes = MESSAGE_OVERHEAD_BYTES + m.from.length + m.to.length + (m.context?.length ?? 0);
  for (const e of m.entries) bytes += ENTRY_WIRE_OVERHEAD_BYTES + e.data.length;
  return bytes;
}

/**
 * encodeMessage converts a core message to its wire form. A snapshot becomes metadata only (the
 * data goes through InstallSnapshot). Sending a local message is a host bug, so it asserts.
 */
export function encodeMessage(m: Message): WireMessage {
  assert(isNetworkMessage(m), `message type "${m.type}" is local and never crosses the network`);
  assert((m.type === MessageType.Snap) === (m.snapshot !== undefined), `message type "${m.type}" and snapshot presence disagree`);
  const wire: WireMessage = {
    type: WIRE_MESSAGE_TYPE[m.type as keyof typeof WIRE_MESSAGE_TYPE],
    from: m.from,
    to: m.to,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.map((e) => ({ term: e.term, index: e.index, kind: e.kind, data: e.data })),
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
    snapshot: m.snapshot
      ? {
          index: m.snapshot.meta.index,
          term: m.snapshot.meta.term,
          voters: [...m.snapshot.meta.conf.voters],
          learners: [...m.snapshot.meta.conf.learners],
          dataBytes: m.snapshot.data.length,
        }
      : null,
  };
  if (m.context !== undefined) wire.context = m.context;
  if (m.readReject !== undefined) wire.readReject = WIRE_READ_REJECT[m.readReject];
  return wire;
}

/**
 * decodeMessage converts a wire message back to the core's form, checking every field. A message
 * with snapshot metadata needs `snapshotData`, whose length must match; one without must not get it.
 */
export function decodeMessage(w: WireMessage, snapshotData?: Uint8Array): Message {
  const type = CORE_MESSAGE_TYPE.get(w.type);
  if (type === undefined) throw new WireFormatError(`unknown message type ${w.type}`);
  if (!w.from || !w.to) throw new WireFormatError(`${type} message without from or to`);
  if ((type === MessageType.Snap) !== (w.snapshot !== null)) throw new WireFormatError(`${type} message and snapshot metadata disagree`);
  const base = {
    type,
    from: nodeId(w.from),
    to: nodeId(w.to),
    term: count(w.term, "term"),
    logTerm: count(w.logTerm, "logTerm"),
    index: count(w.index, "index"),
    entries: w.entries.map(decodeEntry),
    commit: count(w.commit, "commit"),
    reject: w.reject === true,
    rejectHint: count(w.rejectHint, "rejectHint"),
    ...(w.context !== undefined ? { context: view(w.context) } : {}),
    ...readRejectOf(w),
  };
  if (w.snapshot === null) {
    if (snapshotData !== undefined) throw new WireFormatError("snapshot data without snapshot metadata");
    return base;
  }
  const meta = w.snapshot;
  if (snapshotData === undefined) throw new WireFormatError("snapshot metadata outside InstallSnapshot");
  if (snapshotData.length !== meta.dataBytes) throw new WireFormatError(`snapshot data is ${snapshotData.length} bytes, header says ${meta.dataBytes}`);
  const conf = { voters: meta.voters.map(nodeId), learners: meta.learners.map(nodeId) };
  return { ...base, snapshot: { meta: { index: count(meta.index, "snapshot.index"), term: count(meta.term, "snapshot.term"), conf }, data: snapshotData } };
}

/**
 * readRejectOf reads the reason of a rejected ReadIndexResp. A reason this build does not know
 * (from a newer peer) is left out, which the core reads as the oldest meaning, NotLeader: the read
 * is still refused, only with a less precise answer to its caller.
 */
function readRejectOf(w: WireMessage): { readReject?: ReadRejectReason } {
  if (!w.reject || w.type !== WIRE_MESSAGE_TYPE[MessageType.ReadIndexResp]) return {};
  const reason = CORE_READ_REJECT.get(w.readReject ?? 0);
  return reason === undefined ? {} : { readReject: reason };
}

function decodeEntry(w: WireEntry): Entry {
  if (w.kind !== EntryKind.Normal && w.kind !== EntryKind.ConfChange) throw new WireFormatError(`unknown entry kind ${w.kind}`);
  return { term: count(w.term, "entry.term"), index: count(w.index, "entry.index"), kind: w.kind, data: view(w.data) };
}

/** count checks a uint64 that proto-loader turned into a Number: above 2^53 it would have lost precision. */
function count(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new WireFormatError(`${field} ${value} is not a safe non-negative integer`);
  return value;
}

/** view turns a decoded Buffer into a plain Uint8Array over the same memory, so callers never see Buffer-only behaviour. */
function view(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
