import { afterEach, describe, expect, it } from "vitest";
import { type Message, MessageType, nodeId } from "../../../src/raft/types.js";
import { connect, entry, message, snapshot, startNode, type TestNode, waitFor } from "./helpers.js";

const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.transport.close()));
});

async function pair(): Promise<[TestNode, TestNode]> {
  const a = await startNode("n1");
  const b = await startNode("n2");
  nodes.push(a, b);
  connect([a, b]);
  return [a, b];
}

/** everyType is one message of each network type, with the fields that type uses. */
function everyType(): Message[] {
  const ctx = new Uint8Array([7, 7, 7]);
  return [
    message(MessageType.App, "n1", "n2", { term: 5, logTerm: 4, index: 10, commit: 9, entries: [entry(11, 5), { ...entry(12, 5), kind: 1 }] }),
    message(MessageType.AppResp, "n1", "n2", { term: 5, index: 12 }),
    message(MessageType.AppResp, "n1", "n2", { term: 5, index: 12, reject: true, rejectHint: 8, logTerm: 3 }),
    message(MessageType.Vote, "n1", "n2", { term: 6, logTerm: 5, index: 12, context: new TextEncoder().encode("transfer") }),
    message(MessageType.VoteResp, "n1", "n2", { term: 6, reject: true }),
    message(MessageType.PreVote, "n1", "n2", { term: 7, logTerm: 5, index: 12 }),
    message(MessageType.PreVoteResp, "n1", "n2", { term: 7 }),
    message(MessageType.Heartbeat, "n1", "n2", { term: 6, commit: 12, context: ctx }),
    message(MessageType.Heartbeat, "n1", "n2", { term: 6, commit: 12, context: new Uint8Array(0) }),
    message(MessageType.HeartbeatResp, "n1", "n2", { term: 6, context: ctx }),
    message(MessageType.ReadIndex, "n1", "n2", { term: 6, context: ctx }),
    message(MessageType.ReadIndexResp, "n1", "n2", { term: 6, index: 12, context: ctx }),
    message(MessageType.TimeoutNow, "n1", "n2", { term: 6 }),
  ];
}

describe("transport delivery", () => {
  it("transport: messages of every type arrive intact and in order", async () => {
    const [a, b] = await pair();
    const sent: Message[] = [];
    for (let round = 0; round < 50; round++) {
      const batch = everyType().map((m) => ({ ...m, commit: round }));
      sent.push(...batch);
      a.transport.send(batch);
    }
    await waitFor(() => b.received.length === sent.length, 3000, "all messages");
    expect(b.received).toEqual(sent);
    expect(a.transport.stats()).toMatchObject({ sent: sent.length, dropped: 0 });
    expect(b.transport.stats()).toMatchObject({ received: sent.length, refused: 0 });
  });

  it("transport: both directions work at once over separate streams", async () => {
    const [a, b] = await pair();
    a.transport.send([message(MessageType.Heartbeat, "n1", "n2", { term: 1 })]);
    b.transport.send([message(MessageType.HeartbeatResp, "n2", "n1", { term: 1 })]);
    await waitFor(() => a.received.length === 1 && b.received.length === 1);
    expect(a.received[0]?.from).toBe(nodeId("n2"));
    expect(b.received[0]?.from).toBe(nodeId("n1"));
  });

  it("transport: a 5 MiB snapshot arrives in chunks, checked, and is reported sent", async () => {
    const [a, b] = await pair();
    const reports: unknown[] = [];
    a.transport.onSnapshot((r) => reports.push(r));
    const snap = snapshot(5 * 1024 * 1024 + 17);
    const m = message(MessageType.Snap, "n1", "n2", { term: 3, snapshot: snap });
    a.transport.send([m]);
    await waitFor(() => reports.length === 1, 4000, "snapshot report");
    expect(reports[0]).toEqual({ peer: nodeId("n2"), index: 100, term: 3, ok: true });
    expect(b.received).toHaveLength(1);
    const got = b.received[0]!;
    // Compare the 5 MiB of data as bytes: a deep toEqual over millions of elements takes seconds.
    expect(Buffer.compare(got.snapshot!.data, snap.data)).toBe(0);
    expect({ ...got, snapshot: { ...got.snapshot, data: undefined } }).toEqual({ ...m, snapshot: { ...snap, data: undefined } });
    expect(b.transport.stats()).toMatchObject({ snapshotsReceived: 1, snapshotsRefused: 0 });
    expect(a.transport.stats().peers[0]).toMatchObject({ snapshotsSent: 1, snapshotsFailed: 0 });
  });

  it("transport: a second snapshot to the same peer while one is in flight is reported failed", async () => {
    const [a] = await pair();
    const reports: { ok: boolean; index: number; error?: Error }[] = [];
    a.transport.onSnapshot((r) => reports.push(r));
    a.transport.send([
      message(MessageType.Snap, "n1", "n2", { term: 3, snapshot: snapshot(2 * 1024 * 1024, 100) }),
      message(MessageType.Snap, "n1", "n2", { term: 3, snapshot: snapshot(10, 101) }),
    ]);
    await waitFor(() => reports.length === 2, 4000, "two reports");
    expect(reports.find((r) => r.index === 101)).toMatchObject({ ok: false, error: { name: "SnapshotBusyError" } });
    expect(reports.find((r) => r.index === 100)).toMatchObject({ ok: true });
  });

  it("transport: messages to an unknown peer are dropped and counted", async () => {
    const [a] = await pair();
    a.transport.send([message(MessageType.Heartbeat, "n1", "n9"), message(MessageType.Heartbeat, "n1", "n1")]);
    expect(a.transport.stats().droppedUnknownPeer).toBe(2);
  });

  it("transport: a local message is a host bug and asserts", async () => {
    const [a] = await pair();
    expect(() => a.transport.send([message(MessageType.Hup, "n1", "n2")])).toThrow(/local/);
    expect(() => a.transport.send([message(MessageType.Heartbeat, "n3", "n2")])).toThrow(/handed to the transport/);
  });
});
