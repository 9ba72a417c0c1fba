/**
 * What snapshot format a peer reads travels with every peer call it makes
 * (METADATA_SNAPSHOT_READ_MAX), so a leader never sends a member a snapshot it would refuse: real
 * transports on loopback, and the claim's parsing.
 */
import { Client, credentials, type Metadata, status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { MessageType, nodeId } from "../../../src/raft/types.js";
import { identityMetadata, METADATA_SNAPSHOT_READ_MAX, readIdentity, readSnapshotReadMax, SNAPSHOT_READ_MAX_LIMIT } from "../../../src/transport/identity.js";
import { encodeMessage } from "../../../src/transport/wire.js";
import { CLUSTER, connect, message, rawStream, startNode, type TestNode, waitFor } from "./helpers.js";

const nodes: TestNode[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(nodes.splice(0).map((n) => n.transport.close()));
});

const heartbeat = (from: string, to: string, term = 1) => message(MessageType.Heartbeat, from, to, { term });

/** sendAndWait sends one heartbeat from a to b and waits until b has it. */
async function sendAndWait(a: TestNode, b: TestNode, term = 1): Promise<void> {
  const before = b.received.length;
  a.transport.send([heartbeat(a.id, b.id, term)]);
  await waitFor(() => b.received.length > before, 3000, `${b.id} to receive from ${a.id}`);
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
  });

  it("transport: a peer restarted on a build that claims nothing no longer counts as reading the newer format", async () => {
    const a = await startNode("n1", { snapshotReadMax: 5 });
    const b = await startNode("n2");
    nodes.push(b);
    connect([a, b]);
    await sendAndWait(a, b);
    expect(b.transport.peerSnapshotReadMax(a.id)).toBe(5);
    const port = a.port;
    await a.transport.close();
    const older = await startNode("n1", { port });
    nodes.push(older);
    connect([older, b]);
    await sendAndWait(older, b, 2);
    expect(b.transport.peerSnapshotReadMax(a.id)).toBeUndefined();
  });

  it("transport: a malformed claim counts as none and the call is still accepted", async () => {
    const b = await startNode("n2");
    nodes.push(b);
    b.transport.setPeers(new Map([[nodeId("n1"), "127.0.0.1:1"]]));
    const client = new Client(b.address, credentials.createInsecure());
    clients.push(client);
    for (const [i, claim] of ["5", "abc", "1001", "0"].entries()) {
      const md: Metadata = identityMetadata({ clusterId: CLUSTER, nodeId: nodeId("n1"), targetId: nodeId("n2") });
      md.set(METADATA_SNAPSHOT_READ_MAX, claim);
      const before = b.received.length;
      const error = await rawStream(client, md, [{ messages: [encodeMessage(heartbeat("n1", "n2", i + 1))] }]);
      expect(error?.code ?? status.OK, `claim ${claim}`).toBe(status.OK);
      expect(b.received.length).toBe(before + 1);
      expect(b.transport.peerSnapshotReadMax(nodeId("n1")), `claim ${claim}`).toBe(claim === "5" ? 5 : undefined);
    }
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
