import { Client, credentials, type Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { clientApi } from "../../../src/common/proto.js";
import { MessageType, nodeId } from "../../../src/raft/types.js";
import { WrongPeerAddressError } from "../../../src/transport/errors.js";
import { GrpcTransport } from "../../../src/transport/index.js";
import { offHostPeerAddresses } from "../../../src/transport/transport.js";
import { hostOf, identityMetadata, isLoopbackHost, verifyPeerIdentity } from "../../../src/transport/identity.js";
import { encodeMessage, } from "../../../src/transport/wire.js";
import { CLUSTER, capturingLogger, message, startNode, type TestNode, waitFor , rawStream } from "./helpers.js";

const nodes: TestNode[] = [];
const clients: Client[] = [];
const extra: GrpcTransport[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all([...nodes.splice(0).map((n) => n.transport.close()), ...extra.splice(0).map((t) => t.close())]);
});

function rawClient(address: string): Client {
  const client = new Client(address, credentials.createInsecure());
  clients.push(client);
  return client;
}

const claimN1 = identityMetadata({ clusterId: CLUSTER, nodeId: nodeId("n1"), targetId: nodeId("n2") });

describe("transport: peer identity from the connection's address", () => {
  it("transport: hostOf reads IPv4, bracketed IPv6, bare IPv6 and host names", () => {
    expect(hostOf("10.0.0.1:7100")).toBe("10.0.0.1");
    expect(hostOf("[::1]:7100")).toBe("::1");
    expect(hostOf("fe80::1")).toBe("fe80::1");
    expect(hostOf("node-1.example:7100")).toBe("node-1.example");
    expect(isLoopbackHost("127.0.0.5")).toBe(true);
    expect(isLoopbackHost("::ffff:127.0.0.1")).toBe(true);
    expect(isLoopbackHost("10.0.0.1")).toBe(false);
  });

  it("transport: plaintext peer traffic is flagged when the bind address or any peer address is not loopback", () => {
    expect(offHostPeerAddresses("127.0.0.1:7100", ["127.0.0.2:7100", "localhost:7101", "[::1]:7102"])).toBeUndefined();
    expect(offHostPeerAddresses("0.0.0.0:7100", ["127.0.0.2:7100"])).toEqual(["0.0.0.0:7100"]);
    expect(offHostPeerAddresses("127.0.0.1:7100", ["10.0.0.2:7100", "h3.example:7100"])).toEqual(["10.0.0.2:7100", "h3.example:7100"]);
  });

  it("transport: verifyPeerIdentity accepts the member's own IP (also IPv4-mapped) and refuses any other; host names are not checked", () => {
    const book = new Map([
      [nodeId("n1"), "10.0.0.1:7100"],
      [nodeId("n2"), "node-2.example:7100"],
      [nodeId("n3"), "[fd00::3]:7100"],
    ]);
    const local = { addressOf: (id: string) => book.get(nodeId(id)) };
    const from = (peer: string) => ({ getPeer: () => peer });
    expect(verifyPeerIdentity(from("10.0.0.1:51234"), nodeId("n1"), local)).toBeUndefined();
    expect(verifyPeerIdentity(from("[::ffff:10.0.0.1]:51234"), nodeId("n1"), local)).toBeUndefined();
    const wrong = verifyPeerIdentity(from("10.0.0.9:51234"), nodeId("n1"), local);
    expect(wrong).toBeInstanceOf(WrongPeerAddressError);
    expect(wrong?.message).toBe('a call claiming node id "n1" comes from 10.0.0.9, but that member\'s peer address is on 10.0.0.1');
    expect(verifyPeerIdentity(from("10.9.9.9:1"), nodeId("n2"), local)).toBeUndefined();
    expect(verifyPeerIdentity(from("[FD00::3]:5"), nodeId("n3"), local)).toBeUndefined();
    expect(verifyPeerIdentity(from("[fd00::4]:5"), nodeId("n3"), local)).toBeInstanceOf(WrongPeerAddressError);
  });

  it("transport: a caller claiming a member whose peer address is another IP is refused with PERMISSION_DENIED, logged with its address", async () => {
    const b = await startNode("n2");
    nodes.push(b);
    // n1 lives on 127.0.0.2; this test's connection comes from 127.0.0.1.
    b.transport.setPeers(new Map([[nodeId("n1"), "127.0.0.2:7100"]]));
    const hb = { messages: [encodeMessage(message(MessageType.Heartbeat, "n1", "n2", { term: 1 }))] };
    const error = await rawStream(rawClient(b.address), claimN1, [hb]);
    expect(error?.code).toBe(status.PERMISSION_DENIED);
    expect(error?.details).toMatch(/^a call claiming node id "n1" comes from 127\.0\.0\.1, but that member's peer address is on 127\.0\.0\.2$/);
    expect(b.received).toEqual([]);
    expect(b.logger.lines.find((l) => l.message === "refused peer call")?.fields).toMatchObject({
      remoteNodeId: "n1",
      address: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      err: { name: "WrongPeerAddressError" },
    });
    // The same claim from the member's own address is taken.
    b.transport.setPeers(new Map([[nodeId("n1"), "127.0.0.1:7100"]]));
    expect(await rawStream(rawClient(b.address), claimN1, [hb])).toBeNull();
    expect(b.received).toHaveLength(1);
  });

  it("transport: a message the receiver calls impossible ends that peer's stream (INVALID_ARGUMENT), is counted and logged with the peer; later messages on it are not delivered", async () => {
    const logger = capturingLogger();
    const t = new GrpcTransport({ clusterId: CLUSTER, selfId: nodeId("n2"), peers: new Map([[nodeId("n1"), "127.0.0.1:7100"]]), logger });
    extra.push(t);
    const port = await t.listen("127.0.0.1:0");
    const seen: number[] = [];
    t.onMessage((m) => {
      seen.push(m.commit);
      return m.commit > 100 ? "commit beyond anything" : undefined;
    });
    const hb = (commit: number) => encodeMessage(message(MessageType.Heartbeat, "n1", "n2", { term: 1, commit }));
    const error = await rawStream(rawClient(`127.0.0.1:${port}`), claimN1, [{ messages: [hb(1), hb(500), hb(2)] }, { messages: [hb(3)] }]);
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toBe('node "n1" sent an impossible message, dropped with its stream: commit beyond anything');
    expect(seen).toEqual([1, 500]);
    expect(t.stats().impossible).toBe(1);
    const line = logger.lines.find((l) => l.message === "impossible peer message dropped; stream closed");
    expect(line?.level).toBe("error");
    expect(line?.fields).toMatchObject({ peer: "n1", type: MessageType.Heartbeat, address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    // The peer may reconnect: a new stream is accepted.
    expect(await rawStream(rawClient(`127.0.0.1:${port}`), claimN1, [{ messages: [hb(4)] }])).toBeNull();
    await waitFor(() => seen.includes(4));
  });

  it("transport: a service added to the peer port answers members only, after the same identity checks", async () => {
    const logger = capturingLogger();
    const t = new GrpcTransport({ clusterId: CLUSTER, selfId: nodeId("n2"), peers: new Map([[nodeId("n1"), "127.0.0.1:7100"]]), logger });
    extra.push(t);
    let impl: Record<string, unknown> | undefined;
    const Internal = clientApi().Internal;
    t.addPeerService(Internal.service, () => impl as never);
    const port = await t.listen("127.0.0.1:0");
    const client = new Internal(`127.0.0.1:${port}`, credentials.createInsecure());
    clients.push(client);
    const renew = (md: Metadata) =>
      new Promise<{ err: ServiceError | null; res: unknown }>((resolve) => {
        (client as unknown as { RenewLeases: (...a: unknown[]) => void }).RenewLeases({ items: [] }, md, { deadline: Date.now() + 3000 }, (err: ServiceError | null, res: unknown) =>
          resolve({ err, res }),
        );
      });
    expect((await renew(claimN1)).err?.code).toBe(status.UNAVAILABLE);
    impl = { RenewLeases: (_call: unknown, cb: (e: null, r: unknown) => void) => cb(null, { results: [{ code: "ok" }] }) };
    expect((await renew(claimN1)).res).toMatchObject({ results: [{ code: "ok" }] });
    const stranger = identityMetadata({ clusterId: CLUSTER, nodeId: nodeId("n9"), targetId: nodeId("n2") });
    expect((await renew(stranger)).err?.code).toBe(status.PERMISSION_DENIED);
    const md = identityMetadata({ clusterId: CLUSTER, nodeId: nodeId("n1"), targetId: nodeId("n2") });
    md.remove("x-raftmesh-node-id");
    expect((await renew(md)).err?.code).toBe(status.FAILED_PRECONDITION);
  });
});
