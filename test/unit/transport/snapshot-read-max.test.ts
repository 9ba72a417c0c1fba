/**
 * What snapshot format a peer reads travels with every peer call it makes
 * (METADATA_SNAPSHOT_READ_MAX), so a leader never sends a member a snapshot it would refuse: real
 * transports on loopback, and the claim's parsing.
 */
import { type Client, type Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { MessageType, nodeId } from "../../../src/raft/types.js";
import { identityMetadata, METADATA_SNAPSHOT_READ_MAX, readIdentity, readSnapshotReadMax, SNAPSHOT_READ_MAX_LIMIT } from "../../../src/transport/identity.js";
import { peerMethods } from "../../../src/transport/proto.js";
import { encodeMessage } from "../../../src/transport/wire.js";
import { CLUSTER, connect, message, openStream, rawClient as rawClientOf, startNode, type TestNode, waitFor } from "./helpers.js";

const nodes: TestNode[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(nodes.splice(0).map((n) => n.transport.close()));
});

const rawClient = (node: TestNode) => rawClientOf(node, clients);

const heartbeat = (from: string, to: string, term = 1) => message(MessageType.Heartbeat, from, to, { term });

/** sendAndWait sends one heartbeat from a to b and waits until b has it. */
async function sendAndWait(a: TestNode, b: TestNode, term = 1): Promise<void> {
  const before = b.received.length;
  a.transport.send([heartbeat(a.id, b.id, term)]);
  await waitFor(() => b.received.length > before, 3000, `${b.id} to receive from ${a.id}`);
}

/** claimingPair starts n1 (which says it reads 5) and n2, connected, after one heartbeat has carried n1's claim to n2; n1 is left to the test to close. */
async function claimingPair(): Promise<{ a: TestNode; b: TestNode }> {
  const a = await startNode("n1", { snapshotReadMax: 5 });
  const b = await startNode("n2");
  nodes.push(b);
  connect([a, b]);
  await sendAndWait(a, b);
  expect(b.transport.peerSnapshotReadMax(a.id)).toBe(5);
  return { a, b };
}

describe("snapshot format a peer reads", () => {
  it("transport: each node's claim reaches the peers it calls; a node that claims nothing (a build before the claim) reads as undefined", async () => {
    const a = await startNode("n1", { snapshotReadMax: 5 });
    const b = await startNode("n2");
    nodes.push(a, b);
    connect([a, b]);
    expect(b.transport.peerSnapshotReadMax(a.id), "before any call").toBeUndefined();
    await sendAndWait(a, b);
    await sendAndWait(b, a);
    expect(b.transport.peerSnapshotReadMax(a.id)).toBe(5);
    expect(a.transport.peerSnapshotReadMax(b.id)).toBeUndefined();
    expect(b.transport.peerSnapshotReadMaxLastSaid(a.id), "open: the same").toBe(5);
    expect(a.transport.peerSnapshotReadMaxLastSaid(b.id)).toBeUndefined();
  });

  it("transport: a peer restarted on a build that claims nothing no longer counts as reading the newer format", async () => {
    const { a, b } = await claimingPair();
    const port = a.port;
    await a.transport.close();
    const older = await startNode("n1", { port });
    nodes.push(older);
    connect([older, b]);
    await sendAndWait(older, b, 2);
    expect(b.transport.peerSnapshotReadMax(a.id)).toBeUndefined();
    expect(b.transport.peerSnapshotReadMaxLastSaid(a.id), "what it said last, on the older build").toBeUndefined();
  });

  it("transport: a malformed claim counts as none and the call is still accepted", async () => {
    const b = await startNode("n2");
    nodes.push(b);
    b.transport.setPeers(new Map([[nodeId("n1"), "127.0.0.1:1"]]));
    const client = rawClient(b);
    for (const [i, claim] of ["5", "abc", "1001", "0"].entries()) {
      const md: Metadata = identityMetadata({ clusterId: CLUSTER, nodeId: nodeId("n1"), targetId: nodeId("n2") });
      md.set(METADATA_SNAPSHOT_READ_MAX, claim);
      const before = b.received.length;
      const stream = openStream(client, md);
      stream.call.write({ messages: [encodeMessage(heartbeat("n1", "n2", i + 1))] });
      await waitFor(() => b.received.length === before + 1, 3000, `the heartbeat with claim ${claim}`);
      expect(b.transport.peerSnapshotReadMax(nodeId("n1")), `claim ${claim}`).toBe(claim === "5" ? 5 : undefined);
      stream.call.end();
      expect((await stream.ended)?.code ?? status.OK, `claim ${claim}`).toBe(status.OK);
    }
  });

  it("transport: a claim lasts while the peer's Raft stream is open; a probe or another peer-port call without it leaves it, the stream's end clears it", async () => {
    const { a, b } = await claimingPair();
    // A unary peer-port call from n1 that says nothing (a probe here; forwarded lease renewals are alike).
    const { probe } = peerMethods();
    const probed = await new Promise<ServiceError | null>((resolve) =>
      rawClient(b).makeUnaryRequest(probe.path, probe.requestSerialize, probe.responseDeserialize, { session: "s" }, identityMetadata({ clusterId: CLUSTER, nodeId: a.id, targetId: b.id }), { deadline: Date.now() + 3000 }, (error) => resolve(error)),
    );
    expect(probed?.code, "the probe went through the identity check").toBe(status.UNAVAILABLE);
    expect(b.transport.peerSnapshotReadMax(a.id), "after a call without the claim").toBe(5);
    await a.transport.close();
    await waitFor(() => b.transport.peerSnapshotReadMax(a.id) === undefined, 3000, "the claim to go with the stream");
    expect(b.transport.peerSnapshotReadMaxLastSaid(a.id), "what it said last outlives the stream").toBe(5);
  });

  it("transport: the claim's parsing: a decimal integer in [1, SNAPSHOT_READ_MAX_LIMIT], anything else none", () => {
    for (const ok of ["1", "5", "42", String(SNAPSHOT_READ_MAX_LIMIT)]) expect(readSnapshotReadMax(ok), ok).toBe(Number(ok));
    for (const bad of [undefined, "", "0", "-5", "05", "5.0", " 5", "5 ", "1e1", "0x5", String(SNAPSHOT_READ_MAX_LIMIT + 1), "99999", Buffer.from("5")]) {
      expect(readSnapshotReadMax(bad), String(bad)).toBeUndefined();
    }
    const md = identityMetadata({ clusterId: CLUSTER, nodeId: nodeId("n1"), targetId: nodeId("n2"), snapshotReadMax: 7 });
    expect(md.get(METADATA_SNAPSHOT_READ_MAX)).toEqual(["7"]);
    expect(readIdentity(md)).toEqual({ clusterId: CLUSTER, nodeId: "n1", targetId: "n2", snapshotReadMax: 7 });
    const none = identityMetadata({ clusterId: CLUSTER, nodeId: nodeId("n1"), targetId: nodeId("n2") });
    expect(none.get(METADATA_SNAPSHOT_READ_MAX)).toEqual([]);
    expect(readIdentity(none)).toEqual({ clusterId: CLUSTER, nodeId: "n1", targetId: "n2" });
  });
});
