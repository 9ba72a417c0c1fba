import { type Client, type Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { MessageType, nodeId } from "../../../src/raft/types.js";
import { METADATA_NODE_ID } from "../../../src/transport/index.js";
import { identityMetadata } from "../../../src/transport/identity.js";
import { peerMethods } from "../../../src/transport/proto.js";
import { snapshotChunks } from "../../../src/transport/snapshot-chunks.js";
import { encodeMessage, type WireSnapshotChunk } from "../../../src/transport/wire.js";
import { CLUSTER, connect, message, rawClient as rawClientOf, rawStream, snapshot, startNode, type TestNode, waitFor } from "./helpers.js";

const nodes: TestNode[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(nodes.splice(0).map((n) => n.transport.close()));
});

const rawClient = (node: TestNode) => rawClientOf(node, clients);

/** rawSnapshot sends chunks through InstallSnapshot and resolves with the call's error, or null. */
function rawSnapshot(client: Client, metadata: Metadata, chunks: WireSnapshotChunk[]): Promise<ServiceError | null> {
  const { installSnapshot } = peerMethods();
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest(installSnapshot.path, installSnapshot.requestSerialize, installSnapshot.responseDeserialize, metadata, { deadline: Date.now() + 3000 }, (error) => resolve(error));
    for (const chunk of chunks) call.write(chunk);
    call.end();
  });
}

const fromN1 = identityMetadata({ clusterId: CLUSTER, nodeId: nodeId("n1"), targetId: nodeId("n2") });

describe("transport refusals", () => {
  it("transport: a node of another cluster is refused, with both cluster ids logged on both sides", async () => {
    const a = await startNode("n1", { clusterId: "alpha" });
    const b = await startNode("n2", { clusterId: "beta" });
    nodes.push(a, b);
    connect([a, b]);
    a.transport.send([message(MessageType.Heartbeat, "n1", "n2", { term: 1 })]);
    // Both nodes dial each other; look at n1 -> n2: n2 refuses as server, n1 hears it as client.
    const serverLine = () => b.logger.lines.find((l) => l.level === "error" && l.message === "refused peer call");
    const clientLine = () => a.logger.lines.find((l) => l.level === "error" && l.message === "peer refused connection");
    await waitFor(() => serverLine() !== undefined && clientLine() !== undefined);
    const expected = 'cluster id mismatch: node "n1" is in cluster "alpha" but node "n2" is in cluster "beta"';
    expect(serverLine()?.fields).toMatchObject({ remoteClusterId: "alpha", clusterId: "beta", err: { name: "ForeignClusterError", message: expected } });
    expect(clientLine()?.fields).toMatchObject({ peer: "n2", err: { name: "PeerRefusedError", code: status.PERMISSION_DENIED, details: expected } });
    expect(b.received).toEqual([]);
    expect(b.transport.stats().refused).toBeGreaterThan(0);
    await waitFor(() => a.transport.stats().peers[0]!.refusals > 0);
  });

  it("transport: an unknown node id is refused with PERMISSION_DENIED naming it", async () => {
    const b = await startNode("n2");
    nodes.push(b);
    b.transport.setPeers(new Map([[nodeId("n3"), "127.0.0.1:1"]]));
    const error = await rawStream(rawClient(b), fromN1, []);
    expect(error?.code).toBe(status.PERMISSION_DENIED);
    expect(error?.details).toBe(`node id "n1" is not a known peer of node "n2" in cluster "${CLUSTER}"`);
    expect(b.logger.lines.find((l) => l.level === "error")?.fields).toMatchObject({ remoteNodeId: "n1", err: { name: "UnknownPeerError" } });
  });

  it("transport: a call meant for another node, or without identity, is refused with FAILED_PRECONDITION", async () => {
    const b = await startNode("n2");
    nodes.push(b);
    b.transport.setPeers(new Map([[nodeId("n1"), "127.0.0.1:1"]]));
    const wrongTarget = identityMetadata({ clusterId: CLUSTER, nodeId: nodeId("n1"), targetId: nodeId("n3") });
    const error = await rawStream(rawClient(b), wrongTarget, []);
    expect(error?.code).toBe(status.FAILED_PRECONDITION);
    expect(error?.details).toBe('node "n1" dialled node "n3" but reached node "n2"');
    const partial = fromN1.clone();
    partial.remove(METADATA_NODE_ID);
    const missing = await rawStream(rawClient(b), partial, []);
    expect(missing?.code).toBe(status.FAILED_PRECONDITION);
    expect(missing?.details).toBe(`peer call is missing metadata "${METADATA_NODE_ID}"`);
  });

  it("transport: a message whose from or to disagrees with the call's identity ends the stream", async () => {
    const b = await startNode("n2");
    nodes.push(b);
    b.transport.setPeers(new Map([[nodeId("n1"), "127.0.0.1:1"], [nodeId("n3"), "127.0.0.1:1"]]));
    const good = encodeMessage(message(MessageType.Heartbeat, "n1", "n2", { term: 1 }));
    const spoofed = encodeMessage(message(MessageType.Heartbeat, "n3", "n2", { term: 1 }));
    const error = await rawStream(rawClient(b), fromN1, [{ messages: [good, spoofed, good] }]);
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(b.received).toHaveLength(1);
  });

  it("transport: a corrupted snapshot stream is refused and never handed to Raft", async () => {
    const b = await startNode("n2");
    nodes.push(b);
    b.transport.setPeers(new Map([[nodeId("n1"), "127.0.0.1:1"]]));
    const snap = snapshot(3 * 1024 * 1024 + 5);
    const header = encodeMessage(message(MessageType.Snap, "n1", "n2", { term: 3, snapshot: snap }));
    const chunks = snapshotChunks(header, snap.data, 1024 * 1024);
    const flipped = new Uint8Array(chunks[1]!.data);
    flipped[1000] = flipped[1000]! ^ 0xff;
    const corrupted = chunks.map((c, i) => (i === 1 ? { ...c, data: flipped } : c));
    const error = await rawSnapshot(rawClient(b), fromN1, corrupted);
    expect(error?.code).toBe(status.DATA_LOSS);
    expect(error?.details).toMatch(/SHA-256 mismatch/);
    const truncated = await rawSnapshot(rawClient(b), fromN1, chunks.slice(0, 2));
    expect(truncated?.details).toMatch(/before the chunk that carries the hash/);
    expect(b.received).toEqual([]);
    expect(b.transport.stats()).toMatchObject({ snapshotsReceived: 0, snapshotsRefused: 2 });
    // The same chunks, uncorrupted, are accepted: the refusals were about the data, nothing else.
    expect(await rawSnapshot(rawClient(b), fromN1, chunks)).toBeNull();
    expect(b.received).toHaveLength(1);
  });
  it("transport: a node refused as unknown connects at once when that peer opens its own stream to it, not after its backoff", async () => {
    // After a refusal the client waits the longest backoff: here 2.5-5 s, so a connection within
    // 1 s can only come from the peer's stream (a node joining a cluster is refused by every member
    // until they apply its addition, and then each member dials it).
    const joining = await startNode("n1", { limits: { reconnectBackoffMsMin: 50, reconnectBackoffMsMax: 5_000 } });
    const member = await startNode("n2");
    nodes.push(joining, member);
    joining.transport.setPeers(new Map([[nodeId("n2"), member.address]]));
    member.transport.setPeers(new Map([[nodeId("n3"), "127.0.0.1:1"]]));
    joining.transport.send([message(MessageType.Heartbeat, "n1", "n2", { term: 1 })]);
    await waitFor(() => joining.transport.stats().peers[0]!.refusals > 0, 3_000, "the member's refusal");
    const added = performance.now();
    member.transport.setPeers(new Map([[nodeId("n1"), joining.address]]));
    await waitFor(() => joining.transport.stats().peers[0]!.connected, 1_000, "the joining node's stream to the member");
    expect(performance.now() - added).toBeLessThan(1_000);
    joining.transport.send([message(MessageType.Heartbeat, "n1", "n2", { term: 1 })]);
    await waitFor(() => member.received.some((m) => m.from === "n1"), 1_000, "the joining node's message at the member");
  });
});
