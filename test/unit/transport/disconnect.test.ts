import { afterEach, describe, expect, it } from "vitest";
import { MessageType, type NodeId, nodeId } from "../../../src/raft/types.js";
import { connect, message, startNode, type TestNode, waitFor } from "./helpers.js";

const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.transport.close()));
});

describe("transport: a peer's stream ending", () => {
  it("transport: when a peer's sending side goes away its stream's end is reported at once, naming the peer, and only then", async () => {
    const a = await startNode("n1");
    const b = await startNode("n2");
    nodes.push(a, b);
    connect([a, b]);
    const ended: NodeId[] = [];
    b.transport.onPeerDisconnected((peer) => ended.push(peer));
    a.transport.send([message(MessageType.Heartbeat, "n1", "n2", { term: 1 })]);
    await waitFor(() => b.received.length === 1, 3000, "first message");
    // An open, idle stream says nothing.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(ended).toEqual([]);
    const closedMs = Date.now();
    await a.transport.close();
    await waitFor(() => ended.length > 0, 2000, "stream end report");
    // Far below any keepalive timeout: the end was seen, not timed out.
    expect(Date.now() - closedMs).toBeLessThan(1000);
    expect(ended).toEqual([nodeId("n1")]);
  });

  it("transport: a transport that closes itself reports no peer's stream as ended", async () => {
    const a = await startNode("n1");
    const b = await startNode("n2");
    nodes.push(a);
    connect([a, b]);
    const ended: NodeId[] = [];
    b.transport.onPeerDisconnected((peer) => ended.push(peer));
    a.transport.send([message(MessageType.Heartbeat, "n1", "n2", { term: 1 })]);
    await waitFor(() => b.received.length === 1, 3000, "first message");
    await b.transport.close();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(ended).toEqual([]);
  });
});
