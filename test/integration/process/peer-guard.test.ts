/**
 * Hostile peers against a real 3-node cluster (issue 16): a test client speaks the peer protocol
 * with forged identities. A stranger is refused; a caller that passes as a member (all members
 * share 127.0.0.1 here, so the address check cannot tell them apart: the documented limit) sends
 * messages no correct peer sends, and the nodes drop them with the caller's stream and carry on:
 * no election from a forged TimeoutNow, no follower stopped by a commit beyond its log, no leader
 * stopped by an acknowledgement beyond its log, no forged kv.put appended or committed. Internal
 * (followers' heartbeat batches) is refused on the client port, while forwarding through
 * followers still works.
 */
import { Client, credentials, type Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientApi } from "../../../src/common/proto.js";
import { encodeAppCommand } from "../../../src/node/cluster-state-machine.js";
import { EntryKind, type Message, MessageType, nodeId } from "../../../src/raft/types.js";
import { encodeCommand } from "../../../src/registry/codec.js";
import { identityMetadata } from "../../../src/transport/identity.js";
import { peerMethods } from "../../../src/transport/proto.js";
import { encodeMessage } from "../../../src/transport/wire.js";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

const CLUSTER_ID = "it-cluster";
const NODES = ["n1", "n2", "n3"];

describe("hostile peers against a real cluster", () => {
  let c: ProcessCluster;
  let leader: string;
  let target: string;
  let impostor: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    // The wait includes starting three tsx processes, which alone takes over 10 s on a loaded 2-core machine.
    leader = await c.waitForLeader(45_000);
    [target, impostor] = NODES.filter((n) => n !== leader) as [string, string];
    // A write through a follower: forwarding works, and the last entry is of the current term.
    await c.client(target).put("before", "1");
  }, 60_000);

  afterAll(async () => {
    for (const cl of clients) cl.close();
    await c?.cleanup();
  });

  /** send opens a peer Stream to node `to` claiming to be `from` and writes one message; it resolves with how the call ended. */
  function send(to: string, from: string, m: Omit<Message, "from" | "to">): Promise<ServiceError | null> {
    const client = new Client(c.peer(to), credentials.createInsecure());
    clients.push(client);
    const md: Metadata = identityMetadata({ clusterId: CLUSTER_ID, nodeId: nodeId(from), targetId: nodeId(to) });
    const { stream } = peerMethods();
    return new Promise((resolve) => {
      const call = client.makeClientStreamRequest(stream.path, stream.requestSerialize, stream.responseDeserialize, md, { deadline: Date.now() + 5_000 }, (err) =>
        resolve(err),
      );
      call.write({ messages: [encodeMessage({ ...m, from: nodeId(from), to: nodeId(to) })] });
      // Half-close a little later, so the receiver reads the message before the stream's end.
      setTimeout(() => call.end(), 200);
    });
  }

  const base = { logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
  const statusOf = (id: string) => c.client(id).status({ deadlineMs: 2_000 });

  it("peer guard: a stranger's id is refused; forged messages from a non-leader member are dropped with its stream; nobody stops", async () => {
    const before = await statusOf(target);
    expect(before.leader).toBe(leader);
    const term = before.term;

    // A stranger: refused at the door.
    const stranger = await send(target, "n9", { ...base, type: MessageType.Heartbeat, term, commit: 1 });
    expect(stranger?.code).toBe(status.PERMISSION_DENIED);

    // A TimeoutNow from a member that does not lead: no election.
    const timeoutNow = await send(target, impostor, { ...base, type: MessageType.TimeoutNow, term });
    expect(timeoutNow?.code).toBe(status.INVALID_ARGUMENT);

    // A heartbeat from a non-leader committing far beyond the follower's log: the follower carries on.
    const beyond = await send(target, impostor, { ...base, type: MessageType.Heartbeat, term, commit: before.lastIndex + 1_000_000 });
    expect(beyond?.code).toBe(status.INVALID_ARGUMENT);

    // A forged kv.put appended right after the follower's last entry, committed by the same message.
    const now = await statusOf(target);
    const data = encodeAppCommand(encodeCommand({ v: 1, at: Date.now(), cmd: { op: "kv.put", key: "forged", value: "owned" } }));
    const forged = await send(target, impostor, {
      ...base,
      type: MessageType.App,
      term,
      index: now.lastIndex,
      logTerm: term,
      entries: [{ index: now.lastIndex + 1, term, kind: EntryKind.Normal, data }],
      commit: now.lastIndex + 1,
    });
    expect(forged?.code).toBe(status.INVALID_ARGUMENT);

    // An append response beyond the leader's last index: the leader carries on.
    const leaderBefore = await statusOf(leader);
    const ack = await send(leader, target, { ...base, type: MessageType.AppResp, term: leaderBefore.term, index: leaderBefore.lastIndex + 1_000_000 });
    expect(ack?.code).toBe(status.INVALID_ARGUMENT);

    // Every node runs, the same leader leads the same term, and writes still commit everywhere.
    for (const id of NODES) expect(c.isRunning(id)).toBe(true);
    expect(await c.waitForLeader()).toBe(leader);
    expect((await statusOf(target)).term).toBe(term);
    await c.client(target).put("after", "2");
    for (const id of NODES) {
      await waitFor(`"after" on ${id}`, async () => (await c.client(id).get("after", { stale: true })).found);
      expect((await c.client(id).get("forged", { stale: true })).found).toBe(false);
    }
    expect((await c.client(leader).get("forged")).found).toBe(false);

    // Each drop is logged with the peer that sent it.
    const targetLog = await c.waitForLog(target, "impossible peer message dropped; stream closed");
    expect(targetLog).toContain(`"peer":"${impostor}"`);
    await c.waitForLog(leader, "impossible peer message dropped; stream closed");
    // And counted, by sender and type.
    const metrics = await (await fetch(`http://127.0.0.1:${c.specs.get(target)?.adminPort}/metrics`)).text();
    for (const type of [MessageType.TimeoutNow, MessageType.Heartbeat, MessageType.App]) {
      expect(metrics).toContain(`raftmesh_peer_impossible_messages_total{peer="${impostor}",type="${type}"} 1`);
    }
  }, 60_000);

  it("peer guard: Internal.RenewLeases is not served on the client port; heartbeats through followers still reach the leader over the peer port", async () => {
    const Internal = clientApi().Internal;
    const renew = (address: string, md: Metadata) =>
      new Promise<ServiceError | null>((resolve) => {
        const client = new Internal(address, credentials.createInsecure());
        clients.push(client);
        (client as unknown as { RenewLeases: (...a: unknown[]) => void }).RenewLeases({ items: [] }, md, { deadline: Date.now() + 3_000 }, (err: ServiceError | null) =>
          resolve(err),
        );
      });
    const asTarget = identityMetadata({ clusterId: CLUSTER_ID, nodeId: nodeId(target), targetId: nodeId(leader) });
    for (const id of NODES) expect((await renew(c.api(id), asTarget))?.code).toBe(status.UNIMPLEMENTED);
    const stranger = identityMetadata({ clusterId: CLUSTER_ID, nodeId: nodeId("n9"), targetId: nodeId(leader) });
    expect((await renew(c.peer(leader), stranger))?.code).toBe(status.PERMISSION_DENIED);

    // Forwarding: register and heartbeat through each follower, with a status that the leader records.
    for (const via of NODES.filter((n) => n !== leader)) {
      await c.client(via).register({ service: "guarded", id: `i-${via}`, address: "127.0.0.1", port: 9000, ttlMs: 10_000 });
      await c.client(via).heartbeat("guarded", `i-${via}`, "warning", "");
    }
    await waitFor("both follower heartbeats recorded", async () => {
      const got = await c.client(leader).getService("guarded");
      return got.instances.length === 2 && got.instances.every((i) => i.health === "warning");
    });
  }, 60_000);
});
