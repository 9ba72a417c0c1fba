import { describe, expect, it } from "vitest";
import { EntryKind, type Message, MessageType, ReadRejectReason } from "../../../src/raft/types.js";
import { WireFormatError } from "../../../src/transport/index.js";
import { peerMethods } from "../../../src/transport/proto.js";
import { decodeMessage, encodeMessage, WIRE_MESSAGE_TYPE, type WireMessage, wireMessageBytes } from "../../../src/transport/wire.js";
import { entry, message, snapshot } from "./helpers.js";

/** throughBytes serializes an envelope with the real proto codec and parses it back, as a peer would. */
function throughBytes(wire: WireMessage): WireMessage {
  const { stream } = peerMethods();
  const decoded = stream.requestDeserialize(stream.requestSerialize({ messages: [wire] }));
  return decoded.messages[0]!;
}

function roundTrip(m: Message): Message {
  const wire = throughBytes(encodeMessage(m));
  return decodeMessage(wire, m.snapshot?.data);
}

const networkTypes = Object.keys(WIRE_MESSAGE_TYPE) as (keyof typeof WIRE_MESSAGE_TYPE)[];

describe("transport wire", () => {
  it("transport: every network message type survives a round trip through bytes with all fields zero", () => {
    expect(networkTypes).toHaveLength(Object.values(MessageType).length - 1);
    for (const type of networkTypes) {
      const m = message(type, "n1", "n2", type === MessageType.Snap ? { snapshot: snapshot(0) } : {});
      expect(roundTrip(m), type).toEqual(m);
    }
  });

  it("transport: every network message type survives a round trip with every field set", () => {
    for (const type of networkTypes) {
      const m = message(type, "n1", "n2", {
        term: 2 ** 40,
        logTerm: 7,
        index: Number.MAX_SAFE_INTEGER,
        commit: 12,
        reject: true,
        rejectHint: 9,
        entries: [entry(13, 7), { term: 7, index: 14, kind: EntryKind.ConfChange, data: new Uint8Array([1, 2]) }, { term: 7, index: 15, kind: EntryKind.Normal, data: new Uint8Array(0) }],
        context: new Uint8Array([0xde, 0xad]),
        ...(type === MessageType.Snap ? { snapshot: snapshot(1000) } : {}),
      });
      expect(roundTrip(m), type).toEqual(m);
    }
  });

  it("transport: an absent context stays absent and an empty one stays empty", () => {
    const none = roundTrip(message(MessageType.Heartbeat, "n1", "n2"));
    expect("context" in none).toBe(false);
    const empty = roundTrip(message(MessageType.Heartbeat, "n1", "n2", { context: new Uint8Array(0) }));
    expect(empty.context).toEqual(new Uint8Array(0));
  });

  it("transport: a rejected ReadIndexResp carries its reason; an older peer's (no reason) still decodes", () => {
    for (const reason of Object.values(ReadRejectReason)) {
      const m = message(MessageType.ReadIndexResp, "n1", "n2", { reject: true, context: new Uint8Array([7]), readReject: reason });
      expect(roundTrip(m), reason).toEqual(m);
    }
    // What an older peer sends: no field 13 at all. It decodes, rejected, with no reason (NotLeader to the core).
    const { readReject: _, ...old } = encodeMessage(message(MessageType.ReadIndexResp, "n1", "n2", { reject: true, context: new Uint8Array([7]) }));
    const fromOld = decodeMessage(throughBytes(old));
    expect(fromOld.reject).toBe(true);
    expect("readReject" in fromOld).toBe(false);
    // A reason this build does not know (a newer peer's) is left out rather than failing the frame.
    const newer = { ...encodeMessage(message(MessageType.ReadIndexResp, "n1", "n2", { reject: true })), readReject: 99 };
    expect("readReject" in decodeMessage(newer)).toBe(false);
    // The reason means nothing on other messages or without reject.
    const accepted = { ...encodeMessage(message(MessageType.ReadIndexResp, "n1", "n2", { index: 5 })), readReject: 2 };
    expect("readReject" in decodeMessage(accepted)).toBe(false);
  });

  it("transport: decoded bytes are plain Uint8Arrays, not Buffers", () => {
    const m = roundTrip(message(MessageType.App, "n1", "n2", { entries: [entry(1, 1)], context: new Uint8Array([1]) }));
    expect(Object.getPrototypeOf(m.entries[0]!.data)).toBe(Uint8Array.prototype);
    expect(Object.getPrototypeOf(m.context)).toBe(Uint8Array.prototype);
  });

  it("transport: encoding a local message or a Snap without snapshot asserts", () => {
    expect(() => encodeMessage(message(MessageType.Hup, "n1", "n2"))).toThrow(/local/);
    expect(() => encodeMessage(message(MessageType.Snap, "n1", "n2"))).toThrow(/disagree/);
    expect(() => encodeMessage(message(MessageType.App, "n1", "n2", { snapshot: snapshot(1) }))).toThrow(/disagree/);
  });

  it("transport: decoding refuses what a faulty peer could send", () => {
    const good = encodeMessage(message(MessageType.App, "n1", "n2", { entries: [entry(1, 1)] }));
    const bad: [string, WireMessage, Uint8Array?][] = [
      ["unknown type", { ...good, type: 0 }],
      ["type out of range", { ...good, type: 99 }],
      ["missing from", { ...good, from: "" }],
      ["unsafe integer", { ...good, term: 2 ** 60 }],
      ["negative", { ...good, commit: -1 }],
      ["entry kind", { ...good, entries: [{ term: 1, index: 1, kind: 5, data: new Uint8Array(0) }] }],
      ["snapshot meta on App", { ...good, snapshot: { index: 1, term: 1, voters: [], learners: [], dataBytes: 0 } }],
      ["snapshot data without meta", good, new Uint8Array(1)],
    ];
    for (const [what, wire, data] of bad) expect(() => decodeMessage(wire, data), what).toThrow(WireFormatError);
    const snap = encodeMessage(message(MessageType.Snap, "n1", "n2", { snapshot: snapshot(10) }));
    expect(() => decodeMessage(snap)).toThrow(/outside InstallSnapshot/);
    expect(() => decodeMessage(snap, new Uint8Array(9))).toThrow(/header says 10/);
  });

  it("transport: wireMessageBytes bounds the real encoded size from above", () => {
    const { stream } = peerMethods();
    const cases = [
      message(MessageType.Heartbeat, "n1", "n2"),
      message(MessageType.App, "n1", "n2", { term: 2 ** 50, index: 2 ** 50, commit: 2 ** 50, logTerm: 2 ** 50, entries: Array.from({ length: 100 }, (_, i) => ({ ...entry(2 ** 50 + i, 2 ** 50), kind: EntryKind.ConfChange })) }),
      message(MessageType.ReadIndex, "n1", "n2", { context: new Uint8Array(5000) }),
    ];
    for (const m of cases) {
      expect(stream.requestSerialize({ messages: [encodeMessage(m)] }).length).toBeLessThanOrEqual(wireMessageBytes(m));
    }
  });
});
