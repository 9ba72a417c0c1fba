import { spawn } from "node:child_process";
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
    // Once per connection that ended (its stream to n2, and n2's to it): each names n1.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(new Set(ended)).toEqual(new Set([nodeId("n1")]));
    expect(ended.length).toBeLessThanOrEqual(2);
  });

  it("transport: when only this node streams to a peer, that stream breaking is reported, naming the peer", async () => {
    const a = await startNode("n1");
    const b = await startNode("n2");
    nodes.push(b);
    // n2 -> n1 only: n1 knows n2 (its server takes n2's stream) at an address where nothing
    // listens, so n1 never has a stream open to n2 and n2's server sees nothing end.
    a.transport.setPeers(new Map([[nodeId("n2"), "127.0.0.1:1"]]));
    b.transport.setPeers(new Map([[nodeId("n1"), a.address]]));
    const ended: NodeId[] = [];
    b.transport.onPeerDisconnected((peer) => ended.push(peer));
    b.transport.send([message(MessageType.Heartbeat, "n2", "n1", { term: 1 })]);
    await waitFor(() => a.received.length === 1, 3000, "first message");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(ended).toEqual([]);
    const closedMs = Date.now();
    await a.transport.close();
    await waitFor(() => ended.length > 0, 2000, "stream break report");
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

describe("transport: a peer process that dies", () => {
  it("transport: a SIGKILLed peer's stream end is reported within a second, long before any keepalive would notice", async () => {
    const b = await startNode("n2");
    nodes.push(b);
    b.transport.setPeers(new Map([[nodeId("n1"), "127.0.0.1:1"]]));
    const ended: { peer: NodeId; atMs: number }[] = [];
    b.transport.onPeerDisconnected((peer) => ended.push({ peer, atMs: Date.now() }));
    const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/transport-sender.ts", b.address], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => d.toString().includes("sending") && resolve());
        child.once("exit", (code) => reject(new Error(`sender exited early (${code})`)));
      });
      await waitFor(() => b.received.length > 0, 10_000, "a heartbeat from the child");
      expect(ended).toEqual([]);
      const killedMs = Date.now();
      child.kill("SIGKILL");
      await waitFor(() => ended.length > 0, 5_000, "stream end report");
      expect(ended[0]?.peer).toBe(nodeId("n1"));
      expect((ended[0]?.atMs ?? Number.POSITIVE_INFINITY) - killedMs).toBeLessThan(1000);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  }, 30_000);
});
