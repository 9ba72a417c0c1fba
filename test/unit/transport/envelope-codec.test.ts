/**
 * The hand-written codec of the peer stream's frames against @grpc/proto-loader's, which nodes of
 * older builds use: each reads what the other writes, to the same WireEnvelope, for any envelope;
 * unknown fields are skipped; malformed bytes are a WireFormatError, never another exception.
 */
import fc from "fast-check";
import { loadSync, type MethodDefinition } from "@grpc/proto-loader";
import { describe, expect, it } from "vitest";
import { findProtoDir } from "../../../src/common/proto-dir.js";
import { WireFormatError } from "../../../src/transport/errors.js";
import { decodeEnvelope, encodeEnvelope } from "../../../src/transport/envelope-codec.js";
import { PEER_PROTO_OPTIONS, RAFT_PROTO_FILE } from "../../../src/transport/proto.js";
import type { WireEnvelope, WireMessage } from "../../../src/transport/wire.js";

/** protoLoader is the Stream method as proto-loader makes it (what nodes of older builds use). */
const protoLoader = (() => {
  const def = loadSync(RAFT_PROTO_FILE, { includeDirs: [findProtoDir(import.meta.url, RAFT_PROTO_FILE)], ...PEER_PROTO_OPTIONS });
  return (def["raftmesh.raft.v1.RaftPeer"] as Record<string, MethodDefinition<WireEnvelope, object>>).Stream as MethodDefinition<WireEnvelope, object>;
})();

const u64 = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 2 ** 32 + 5 }), fc.maxSafeInteger().map(Math.abs));
const bytes = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));
const text = fc.oneof(fc.constant(""), fc.string({ maxLength: 20 }), fc.string({ unit: "grapheme", maxLength: 8 }));
const entry = fc.record({ term: u64, index: u64, kind: fc.integer({ min: 0, max: 1 }), data: bytes });
const meta = fc.record({ index: u64, term: u64, voters: fc.array(text, { maxLength: 5 }), learners: fc.array(text, { maxLength: 3 }), dataBytes: u64 });
const message: fc.Arbitrary<WireMessage> = fc
  .record({
    type: fc.integer({ min: 0, max: 12 }),
    from: text,
    to: text,
    term: u64,
    logTerm: u64,
    index: u64,
    entries: fc.array(entry, { maxLength: 6 }),
    commit: u64,
    reject: fc.boolean(),
    rejectHint: u64,
    snapshot: fc.option(meta, { nil: null }),
    context: fc.option(bytes, { nil: undefined }),
    readReject: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
  })
  .map((m) => {
    const out: WireMessage = { ...m };
    if (m.context === undefined) delete out.context;
    if (m.readReject === undefined) delete out.readReject;
    return out;
  });
const envelope = fc.record({ messages: fc.array(message, { maxLength: 5 }) });

describe("transport: the peer stream's envelope codec", () => {
  it("transport: for any envelope, this codec and proto-loader's read each other's bytes to the same envelope", () => {
    fc.assert(
      fc.property(envelope, (e) => {
        const ours = encodeEnvelope(e);
        const theirs = protoLoader.requestSerialize(e);
        const expected = protoLoader.requestDeserialize(theirs);
        // An older node reads ours; we read an older node's; and our own round trip.
        expect(protoLoader.requestDeserialize(ours)).toEqual(expected);
        expect(decodeEnvelope(theirs)).toEqual(expected);
        expect(decodeEnvelope(ours)).toEqual(expected);
      }),
      { numRuns: 500, seed: 22 },
    );
  });

  it("transport: a heartbeat and an append decode to what the sender meant, context absent unless sent (even empty)", () => {
    const heartbeat: WireMessage = { type: 8, from: "n1", to: "n2", term: 7, logTerm: 0, index: 0, entries: [], commit: 41, reject: false, rejectHint: 0, snapshot: null };
    const append: WireMessage = { ...heartbeat, type: 1, logTerm: 7, index: 40, entries: [{ term: 7, index: 41, kind: 0, data: Buffer.from("put k v") }], context: Buffer.alloc(0) };
    const got = decodeEnvelope(encodeEnvelope({ messages: [heartbeat, append] }));
    expect(got.messages[0]).toEqual({ ...heartbeat, readReject: 0 });
    expect("context" in (got.messages[0] as WireMessage)).toBe(false);
    expect(got.messages[1]?.context).toEqual(Buffer.alloc(0));
    expect(Buffer.from(got.messages[1]?.entries[0]?.data ?? []).toString()).toBe("put k v");
    expect(decodeEnvelope(encodeEnvelope({ messages: [] }))).toEqual({ messages: [] });
  });

  it("transport: fields a newer peer adds (any wire type) are skipped", () => {
    const m: WireMessage = { type: 2, from: "n2", to: "n1", term: 3, logTerm: 0, index: 9, entries: [], commit: 0, reject: true, rejectHint: 8, snapshot: null };
    const body = Buffer.from(encodeEnvelope({ messages: [m] }).subarray(2)); // the message's own bytes (length < 128: a 2-byte prefix)
    const unknown = Buffer.from([
      (14 << 3) | 0, 0x96, 0x01, // field 14, varint 150
      (15 << 3) | 2, 3, 1, 2, 3, // field 15, 3 bytes
      0xa5, 0x01, 0, 0, 0, 0, // field 20 (a two-byte key), fixed32
      (13 << 3) | 0, 0, // read_reject again, 0 (the last value counts)
      (12 << 3) | 2, 0, // context, present and empty
    ]);
    const fixed64 = Buffer.from([(9 << 3) | 0, 1, 0xf1, 0x01, 1, 2, 3, 4, 5, 6, 7, 8]); // reject again; field 30 (a two-byte key), fixed64
    const withNew = Buffer.concat([body, unknown, fixed64]);
    const frame = Buffer.concat([Buffer.from([0x0a, withNew.length]), withNew]);
    expect(decodeEnvelope(frame)).toEqual(protoLoader.requestDeserialize(frame));
    expect(decodeEnvelope(frame).messages[0]).toEqual({ ...m, readReject: 0, context: Buffer.alloc(0) });
  });

  it("transport: malformed bytes (random, truncated, flipped) are a WireFormatError or an envelope, never another exception", () => {
    const flipped = fc.tuple(envelope, fc.nat(), fc.nat(255)).map(([e, at, flip]) => {
      const b = Buffer.from(encodeEnvelope(e));
      if (b.length > 0) b[at % b.length] = (b[at % b.length] as number) ^ flip;
      return b;
    });
    const truncated = fc.tuple(envelope, fc.nat()).map(([e, cut]) => {
      const b = encodeEnvelope(e);
      return b.subarray(0, b.length === 0 ? 0 : cut % b.length);
    });
    const random = fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a));
    let refused = 0;
    fc.assert(
      fc.property(fc.oneof(flipped, truncated, random), (b) => {
        try {
          const e = decodeEnvelope(b);
          expect(Array.isArray(e.messages)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(WireFormatError);
          refused++;
        }
      }),
      { numRuns: 2_000, seed: 23 },
    );
    // Most of such bytes are refused (a run where none were would mean nothing was checked).
    expect(refused).toBeGreaterThan(500);
  });

  it("transport: a group, a varint over 10 bytes, a length past the end and a known field of the wrong wire type are refused", () => {
    const refuse = (bytes: number[]) => expect(() => decodeEnvelope(Buffer.from(bytes))).toThrow(WireFormatError);
    refuse([(1 << 3) | 3]); // a group start
    refuse([(2 << 3) | 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]); // unknown field, 11-byte varint
    refuse([0x0a, 10, 1, 2]); // a message of 10 bytes with 2 there
    refuse([0x0a, 2, (1 << 3) | 2, 0]); // Message.type as bytes
    refuse([(1 << 3) | 0, 5]); // Envelope.messages as a varint
  });
});
