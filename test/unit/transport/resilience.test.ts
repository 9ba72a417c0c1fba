import { Metadata, Server, ServerCredentials, type ServerReadableStream, status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { MessageType, type NodeId, nodeId } from "../../../src/raft/types.js";
import { peerMethods } from "../../../src/transport/proto.js";
import { connect, entry, freePort, message, snapshot, startNode, type TestNode, waitFor } from "./helpers.js";

const nodes: TestNode[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) s.forceShutdown();
  await Promise.all(nodes.splice(0).map((n) => n.transport.close()));
});

const heartbeat = (term: number) => message(MessageType.Heartbeat, "n1", "n2", { term });

/**
 * stalledPeer is a raw server that never answers: its Stream accepts (sends headers) and then never
 * reads, or with accept false never even accepts; its InstallSnapshot never replies.
 */
async function stalledPeer(accept = true): Promise<number> {
  const server = new Server();
  servers.push(server);
  server.addService(peerMethods().service, {
    Stream: (call: ServerReadableStream<unknown, unknown>) => {
      if (accept) call.sendMetadata(new Metadata());
      call.pause();
    },
    InstallSnapshot: (call: ServerReadableStream<unknown, unknown>) => {
      call.on("data", () => {});
    },
  });
  return new Promise((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, port) => (e ? reject(e) : resolve(port))));
}

describe("transport resilience", () => {
  it("transport: messages to a peer that is down are dropped and counted, then it reconnects within the backoff bound", async () => {
    const port = await freePort();
    const a = await startNode("n1", { limits: { backlogMessagesMax: 4, reconnectBackoffMsMin: 10, reconnectBackoffMsMax: 100 } });
    nodes.push(a);
    const unreachable: NodeId[] = [];
    a.transport.onUnreachable((peer) => unreachable.push(peer));
    a.transport.setPeers(new Map([[nodeId("n2"), `127.0.0.1:${port}`]]));
    await waitFor(() => unreachable.length > 0, 2000, "unreachable report");
    await new Promise((resolve) => setTimeout(resolve, 400));
    a.transport.send(Array.from({ length: 20 }, (_, i) => heartbeat(i)));
    const down = a.transport.stats().peers[0]!;
    expect(down).toMatchObject({ id: "n2", connected: false, sent: 0 });
    expect(down.queued).toBeLessThanOrEqual(4);
    expect(down.dropped).toBeGreaterThanOrEqual(16);
    expect(down.droppedDisconnected).toBe(down.dropped);
    // Backoff doubles from 10 ms to a 100 ms ceiling, each wait at least half the ceiling: a few
    // quick tries, then about one every 50-100 ms, never a busy loop.
    expect(down.reconnects).toBeGreaterThanOrEqual(3);
    expect(down.reconnects).toBeLessThanOrEqual(20);
    expect(unreachable.every((p) => p === "n2")).toBe(true);

    const b = await startNode("n2", { port });
    nodes.push(b);
    b.transport.setPeers(new Map([[nodeId("n1"), a.address]]));
    const upMs = Date.now();
    await waitFor(() => a.transport.stats().peers[0]!.connected, 2000, "reconnect");
    expect(Date.now() - upMs).toBeLessThan(1000);
    a.transport.send([heartbeat(99)]);
    await waitFor(() => b.received.some((m) => m.term === 99), 2000, "message after reconnect");
    // The backlog kept while down went out first, in order.
    expect(b.received.map((m) => m.term)).toEqual([...b.received.map((m) => m.term)].sort((x, y) => x - y));
  });

  it("transport: a broken stream is logged, reported unreachable, and redialled", async () => {
    const a = await startNode("n1");
    const b = await startNode("n2");
    nodes.push(a);
    connect([a, b]);
    const unreachable: NodeId[] = [];
    a.transport.onUnreachable((peer) => unreachable.push(peer));
    a.transport.send([heartbeat(1)]);
    await waitFor(() => b.received.length === 1);
    await b.transport.close();
    await waitFor(() => unreachable.includes(nodeId("n2")), 2000, "unreachable");
    expect(a.logger.lines.some((l) => l.level === "warn" && l.message === "peer stream broke" && l.fields.peer === "n2")).toBe(true);
    await waitFor(() => a.transport.stats().peers[0]!.reconnects > 0, 2000, "redial");
  });

  it("transport: a full queue drops new messages instead of growing", async () => {
    const port = await stalledPeer();
    const a = await startNode("n1", { limits: { queueMessagesMax: 8, backlogMessagesMax: 8 } });
    nodes.push(a);
    a.transport.setPeers(new Map([[nodeId("n2"), `127.0.0.1:${port}`]]));
    await waitFor(() => a.transport.stats().peers[0]!.connected, 2000, "stalled peer accepts");
    const total = 300;
    let queuedMax = 0;
    for (let i = 0; i < total; i++) {
      a.transport.send([message(MessageType.App, "n1", "n2", { term: 1, index: i, entries: [entry(i + 1, 1, 64 * 1024)] })]);
      await new Promise((resolve) => setImmediate(resolve));
      queuedMax = Math.max(queuedMax, a.transport.stats().peers[0]!.queued);
    }
    const s = a.transport.stats().peers[0]!;
    expect(queuedMax).toBeLessThanOrEqual(8);
    expect(s.dropped).toBeGreaterThan(0);
    expect(s.droppedDisconnected).toBe(0);
    expect(s.sent + s.dropped + s.queued).toBe(total);
  });

  it("transport: a peer that never accepts the stream is given up on after the accept timeout", async () => {
    const port = await stalledPeer(false);
    const a = await startNode("n1", { limits: { streamAcceptTimeoutMs: 100 } });
    nodes.push(a);
    a.transport.setPeers(new Map([[nodeId("n2"), `127.0.0.1:${port}`]]));
    a.transport.send([heartbeat(1)]);
    await waitFor(() => a.transport.stats().peers[0]!.reconnects >= 2, 2000, "redials after accept timeouts");
    expect(a.transport.stats().peers[0]).toMatchObject({ connected: false, sent: 0 });
  });

  it("transport: a snapshot the peer never acknowledges fails at its deadline; one to a down peer fails at once", async () => {
    const port = await stalledPeer();
    const down = await freePort();
    const a = await startNode("n1", { limits: { snapshotDeadlineMs: 200 } });
    nodes.push(a);
    a.transport.setPeers(new Map([[nodeId("n2"), `127.0.0.1:${port}`], [nodeId("n3"), `127.0.0.1:${down}`]]));
    const reports: { peer: string; ok: boolean; error?: Error }[] = [];
    a.transport.onSnapshot((r) => reports.push(r));
    const startMs = Date.now();
    a.transport.send([
      message(MessageType.Snap, "n1", "n2", { term: 3, snapshot: snapshot(100_000) }),
      message(MessageType.Snap, "n1", "n3", { term: 3, snapshot: snapshot(100) }),
    ]);
    await waitFor(() => reports.length === 2, 2000, "two snapshot reports");
    expect(Date.now() - startMs).toBeLessThan(1000);
    expect(reports.find((r) => r.peer === "n2")).toMatchObject({ ok: false, error: { code: status.DEADLINE_EXCEEDED } });
    expect(reports.find((r) => r.peer === "n3")).toMatchObject({ ok: false, error: { code: status.UNAVAILABLE } });
    expect(a.transport.stats().peers.map((p) => p.snapshotsFailed)).toEqual([1, 1]);
  });

  it("transport: the byte bound drops a message that would not fit", async () => {
    const port = await freePort();
    const a = await startNode("n1", { limits: { queueBytesMax: 100 * 1024 } });
    nodes.push(a);
    a.transport.setPeers(new Map([[nodeId("n2"), `127.0.0.1:${port}`]]));
    const big = (i: number) => message(MessageType.App, "n1", "n2", { term: 1, index: i, entries: [entry(i + 1, 1, 60 * 1024)] });
    a.transport.send([big(0), big(1), big(2)]);
    const s = a.transport.stats().peers[0]!;
    expect(s.queued).toBe(1);
    expect(s.queuedBytes).toBeLessThanOrEqual(100 * 1024);
    expect(s.dropped).toBe(2);
  });

  it("transport: removing a peer closes its client and refuses its calls; adding it back reconnects", async () => {
    const a = await startNode("n1");
    const b = await startNode("n2");
    nodes.push(a, b);
    connect([a, b]);
    a.transport.send([heartbeat(1)]);
    await waitFor(() => b.received.length === 1);
    b.transport.setPeers(new Map());
    await waitFor(() => a.transport.stats().peers[0]!.refusals > 0, 2000, "refusal after removal");
    expect(b.transport.stats().peers).toEqual([]);
    connect([a, b]);
    await waitFor(() => a.transport.stats().peers[0]!.connected, 3000, "reconnect after re-adding");
    a.transport.send([heartbeat(2)]);
    await waitFor(() => b.received.some((m) => m.term === 2), 2000, "delivery after re-adding");
  });

  it("transport: close() stops everything and leaves no open handles", async () => {
    const before = countHandles();
    const a = await startNode("n1");
    const b = await startNode("n2");
    const port = await freePort();
    connect([a, b]);
    a.transport.setPeers(new Map([[nodeId("n2"), b.address], [nodeId("n3"), `127.0.0.1:${port}`]]));
    a.transport.send([heartbeat(1), message(MessageType.Heartbeat, "n1", "n3")]);
    await waitFor(() => b.received.length === 1);
    expect(countHandles()).toBeGreaterThan(before);
    await Promise.all([a.transport.close(), b.transport.close()]);
    await waitFor(() => countHandles() <= before, 2000, `handles back to ${before}: ${process.getActiveResourcesInfo().join(",")}`);
    a.transport.send([heartbeat(2)]);
    expect(a.transport.stats().sent).toBe(1);
    b.transport.setPeers(new Map([[nodeId("n1"), a.address]]));
    expect(b.transport.stats().peers).toEqual([]);
  });
});

/** countHandles counts sockets, servers and timers that would keep the process alive. */
function countHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap" || r === "TCPServerWrap" || r === "Timeout").length;
}
