/**
 * The journal's sources on real registry and cluster state machines: two nodes that apply the same
 * entries report the same registry and membership events with the same indexes (local events
 * aside), and each kind comes from what the entry did (expiry, re-registration, master change).
 */
import { describe, expect, it } from "vitest";
import { EventJournal } from "../../../src/events/journal.js";
import { recordNodeEvents, recordRegistryEvents } from "../../../src/events/sources.js";
import { ClusterStateMachine, encodeAppCommand } from "../../../src/node/cluster-state-machine.js";
import { NodeEventEmitter } from "../../../src/node/events.js";
import { ConfChangeType, type Entry, EntryKind, encodeConfChange, nodeId } from "../../../src/raft/index.js";
import { encodeCommand } from "../../../src/registry/codec.js";
import { RegistryFeed } from "../../../src/registry/events.js";
import { LEASE_EXPIRED_NOTE_PREFIX } from "../../../src/registry/lease-tracker.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import { DEFAULT_SERVICE_CONFIG, type RegistryCommand } from "../../../src/registry/types.js";
import { instanceSpec } from "../../fixtures/registry.js";

function node(id: string) {
  const feed = new RegistryFeed();
  const registry = new RegistryStateMachine(feed.hooks());
  const cluster = new ClusterStateMachine(registry);
  const events = new NodeEventEmitter();
  const journal = new EventJournal({ node: id, seqBase: 0 });
  recordNodeEvents(journal, events);
  recordRegistryEvents(journal, feed, events);
  // As RaftNode does: apply, then tell the node's followers.
  const apply = (e: Entry) => events.emit("applied", { index: e.index, entry: e, result: cluster.apply(e) });
  return { journal, apply, events };
}

function entries(): Entry[] {
  const cmds: RegistryCommand[] = [
    { op: "service.put", name: "db", config: { ...DEFAULT_SERVICE_CONFIG, mode: "master-slave" } },
    { op: "instance.register", instance: instanceSpec("a", { service: "db" }) },
    { op: "instance.register", instance: instanceSpec("b", { service: "db" }) },
    { op: "health.set", changes: [{ service: "db", id: "a", health: "critical", note: `${LEASE_EXPIRED_NOTE_PREFIX} no heartbeat for 5000ms`, ifModIndex: 0 }] },
    { op: "health.set", changes: [{ service: "db", id: "b", health: "critical", note: "disk full", ifModIndex: 0 }] },
    { op: "instance.register", instance: instanceSpec("a", { service: "db" }) },
    { op: "health.set", changes: [{ service: "db", id: "b", health: "passing", note: "", ifModIndex: 0 }] },
  ];
  const out: Entry[] = [{ term: 1, index: 1, kind: EntryKind.ConfChange, data: encodeConfChange({ type: ConfChangeType.AddVoter, node: nodeId("n1") }) }];
  for (const [i, cmd] of cmds.entries()) out.push({ term: 1, index: i + 2, kind: EntryKind.Normal, data: encodeAppCommand(encodeCommand({ v: 1, at: 1_000 + i, cmd })) });
  out.push({ term: 1, index: out.length + 1, kind: EntryKind.ConfChange, data: encodeConfChange({ type: ConfChangeType.Remove, node: nodeId("n1") }) });
  return out;
}

const shape = (j: EventJournal) => j.since(0).filter((e) => !e.local).map((e) => [e.kind, e.index, e.service, e.instance, e.member].join(" "));

describe("event sources", () => {
  it("two nodes applying the same entries report the same events with the same indexes", () => {
    const n1 = node("n1");
    const n2 = node("n2");
    for (const e of entries()) n1.apply(e);
    n2.events.emit("leader", { leader: nodeId("n1"), previous: nodeId(""), term: 1 }); // local: not compared
    for (const e of entries()) n2.apply(e);
    expect(shape(n1.journal)).toEqual(shape(n2.journal));
    expect(n2.journal.since(0)[0]).toMatchObject({ kind: "leader-elected", local: true, index: 0, member: "n1" });
    expect(shape(n1.journal)).toEqual([
      "member-joined 1   n1",
      "master-promoted 3 db a ",
      "master-demoted 5 db a ",
      "master-promoted 5 db b ",
      "instance-expired 5 db a ",
      "master-demoted 6 db b ",
      "no-master 6 db  ",
      "instance-critical 6 db b ",
      "master-promoted 7 db a ",
      "instance-passing 7 db a ",
      "instance-restarted 7 db a ",
      "instance-passing 8 db b ",
      "member-removed 9   n1",
    ]);
  });
});
