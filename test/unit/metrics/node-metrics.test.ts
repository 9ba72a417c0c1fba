/**
 * One node's metrics: each node has its own registry (several nodes run in one process in tests);
 * the registry series follow a real registry state machine and its feed (lease expiries,
 * failovers, services without a master, the per-service cardinality limit); the append round
 * trip is timed from a sent append to the acknowledgement that covers it; and the admin port
 * serves /metrics, or says which switch turned it off.
 */
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { AdminHttp } from "../../../src/agent/admin-http.js";
import { NodeMetrics, OTHER_SERVICE, REGISTRY_SERVICE_SERIES_MAX } from "../../../src/metrics/index.js";
import { APPEND_PENDING_MS_MAX } from "../../../src/metrics/limits.js";
import { RaftMetrics } from "../../../src/metrics/raft.js";
import { RegistryMetrics } from "../../../src/metrics/registry.js";
import { NodeEventEmitter } from "../../../src/node/events.js";
import { EntryKind, type Message, MessageType, nodeId, Role, type Status } from "../../../src/raft/index.js";
import { encodeCommand } from "../../../src/registry/codec.js";
import { RegistryFeed } from "../../../src/registry/events.js";
import { LEASE_EXPIRED_NOTE_PREFIX } from "../../../src/registry/lease-tracker.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import { DEFAULT_SERVICE_CONFIG, type RegistryCommand } from "../../../src/registry/types.js";
import { instanceSpec } from "../../fixtures/registry.js";

/** lines are the sample lines of a registry's text whose name and labels start with prefix. */
async function lines(reg: Registry, prefix: string): Promise<string[]> {
  return (await reg.metrics()).split("\n").filter((l) => l.startsWith(prefix));
}

async function sample(reg: Registry, line: string): Promise<number | undefined> {
  const hit = (await reg.metrics()).split("\n").find((l) => l.startsWith(`${line} `));
  return hit === undefined ? undefined : Number(hit.slice(line.length + 1));
}

function registry() {
  const feed = new RegistryFeed();
  const machine = new RegistryStateMachine(feed.hooks());
  const run = (cmd: RegistryCommand) => machine.apply({ term: 1, index: machine.applied + 1, kind: EntryKind.Normal, data: encodeCommand({ v: 1, at: 1_000, cmd }) });
  const reg = new Registry();
  new RegistryMetrics(reg, { machine, feed, hub: { size: 2 } });
  return { reg, run };
}

function message(over: Partial<Message>): Message {
  return { type: MessageType.App, from: nodeId("n1"), to: nodeId("n2"), term: 1, logTerm: 1, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...over };
}

describe("metrics: one node's series", () => {
  it("metrics: two nodes in one process keep separate registries", async () => {
    const a = new NodeMetrics({ node: "n1", cluster: "c", version: "0" });
    const b = new NodeMetrics({ node: "n2", cluster: "c", version: "0" });
    expect(await lines(a.registry, "raftmesh_node_info")).toEqual(['raftmesh_node_info{node="n1",cluster="c",version="0"} 1']);
    expect(await lines(b.registry, "raftmesh_node_info")).toEqual(['raftmesh_node_info{node="n2",cluster="c",version="0"} 1']);
    expect(a.names()).toContain("nodejs_eventloop_lag_seconds");
    expect(a.names()).toContain("process_resident_memory_bytes");
  });

  it("metrics: registry series count lease expiries, failovers and services without a master", async () => {
    const { reg, run } = registry();
    run({ op: "service.put", name: "db", config: { ...DEFAULT_SERVICE_CONFIG, mode: "master-slave" } });
    expect(await sample(reg, "raftmesh_registry_services_without_master")).toBe(1);
    run({ op: "instance.register", instance: instanceSpec("a", { service: "db" }) });
    run({ op: "instance.register", instance: instanceSpec("b", { service: "db" }) });
    expect(await sample(reg, "raftmesh_registry_services_without_master")).toBe(0);
    expect(await sample(reg, "raftmesh_registry_failovers_total")).toBe(0); // the first master is no failover
    // The master's lease expires: counted as an expiry, and its standby takes over (a failover).
    run({ op: "health.set", changes: [{ service: "db", id: "a", health: "critical", note: `${LEASE_EXPIRED_NOTE_PREFIX} no heartbeat for 10000ms`, ifModIndex: 0 }] });
    expect(await sample(reg, "raftmesh_registry_lease_expiries_total")).toBe(1);
    expect(await sample(reg, "raftmesh_registry_failovers_total")).toBe(1);
    expect(await sample(reg, 'raftmesh_registry_instances{service="db",health="critical"}')).toBe(1);
    expect(await sample(reg, 'raftmesh_registry_instances{service="db",health="passing"}')).toBe(1);
    // A self-reported critical is no lease expiry.
    run({ op: "health.set", changes: [{ service: "db", id: "b", health: "critical", note: "disk full", ifModIndex: 0 }] });
    expect(await sample(reg, "raftmesh_registry_lease_expiries_total")).toBe(1);
    expect(await sample(reg, "raftmesh_registry_services_without_master")).toBe(1);
    expect(await sample(reg, 'raftmesh_registry_master_changes_total{reason="no-master"}')).toBe(1);
    expect(await sample(reg, "raftmesh_registry_watchers")).toBe(2);
  });

  it("metrics: services past REGISTRY_SERVICE_SERIES_MAX are summed into one series", async () => {
    const { reg, run } = registry();
    const n = REGISTRY_SERVICE_SERIES_MAX + 2;
    for (let i = 0; i < n; i++) run({ op: "instance.register", instance: instanceSpec(`i${i}`, { service: `s${String(i).padStart(4, "0")}` }) });
    const passing = await lines(reg, "raftmesh_registry_instances{");
    const services = new Set(passing.map((l) => /service="([^"]*)"/.exec(l)?.[1]));
    expect(services.size).toBe(REGISTRY_SERVICE_SERIES_MAX + 1);
    expect(await sample(reg, `raftmesh_registry_instances{service="${OTHER_SERVICE}",health="passing"}`)).toBe(2);
    expect(await sample(reg, `raftmesh_registry_instances{service="s${String(REGISTRY_SERVICE_SERIES_MAX - 1).padStart(4, "0")}",health="passing"}`)).toBe(1);
  });

  it("metrics: an append's round trip runs from the send to the acknowledgement covering it", async () => {
    const reg = new Registry();
    const raft = new RaftMetrics(reg);
    const events = new NodeEventEmitter();
    const status = { id: nodeId("n1"), role: Role.Leader, lead: nodeId("n1"), term: 3, vote: nodeId("n1"), commit: 7, applied: 6, lastIndex: 9, voters: [], learners: [], leadTransferee: nodeId("") } as unknown as Status;
    raft.follow({ events, status: () => status, progress: () => new Map([[nodeId("n2"), { match: 7, next: 8, state: "replicate", recentActive: false }]]), snapshotBytesHeld: () => 0 });
    const sent: Message[][] = [];
    const sink = raft.sink({ send: (m) => sent.push([...m]) });
    const entry = { term: 3, index: 8, kind: EntryKind.Normal, data: new Uint8Array() };
    sink.send([message({ index: 7, entries: [entry, { ...entry, index: 9 }] })]);
    expect(sent).toHaveLength(1);
    raft.received(message({ type: MessageType.AppResp, from: nodeId("n2"), to: nodeId("n1"), index: 8 })); // covers 8 of 9: still waiting
    expect(await sample(reg, 'raftmesh_raft_append_round_trip_seconds_count{peer="n2"}')).toBeUndefined();
    raft.received(message({ type: MessageType.AppResp, from: nodeId("n2"), to: nodeId("n1"), index: 9 }));
    expect(await sample(reg, 'raftmesh_raft_append_round_trip_seconds_count{peer="n2"}')).toBe(1);
    expect(await sample(reg, "raftmesh_raft_term")).toBe(3);
    expect(await sample(reg, 'raftmesh_raft_role{role="leader"}')).toBe(1);
    expect(await sample(reg, 'raftmesh_raft_role{role="follower"}')).toBe(0);
    expect(await sample(reg, 'raftmesh_raft_peer_recent_active{peer="n2"}')).toBe(0);
    events.emit("leader", { leader: nodeId("n1"), previous: nodeId(""), term: 3 });
    expect(await sample(reg, "raftmesh_raft_leader_changes_total")).toBe(1);
  });

  it("metrics: an append unanswered for APPEND_PENDING_MS_MAX is forgotten; one answered just inside it is timed", async () => {
    const reg = new Registry();
    let now = 0;
    const raft = new RaftMetrics(reg, () => now);
    const sink = raft.sink({ send: () => {} });
    const entry = { term: 1, index: 1, kind: EntryKind.Normal, data: new Uint8Array() };
    const ack = (index: number) => raft.received(message({ type: MessageType.AppResp, from: nodeId("n2"), to: nodeId("n1"), index }));
    sink.send([message({ index: 0, entries: [entry] })]);
    now = APPEND_PENDING_MS_MAX - 1;
    sink.send([message({ index: 1, entries: [{ ...entry, index: 2 }] })]); // still waiting for the first: not restarted
    ack(1);
    expect(await sample(reg, 'raftmesh_raft_append_round_trip_seconds_sum{peer="n2"}')).toBeCloseTo((APPEND_PENDING_MS_MAX - 1) / 1000, 6);
    sink.send([message({ index: 2, entries: [{ ...entry, index: 3 }] })]);
    now += APPEND_PENDING_MS_MAX; // never answered: the next append starts the clock again
    sink.send([message({ index: 3, entries: [{ ...entry, index: 4 }] })]);
    now += 5;
    ack(4);
    expect(await sample(reg, 'raftmesh_raft_append_round_trip_seconds_count{peer="n2"}')).toBe(2);
    expect(await sample(reg, 'raftmesh_raft_append_round_trip_seconds_sum{peer="n2"}')).toBeCloseTo((APPEND_PENDING_MS_MAX - 1 + 5) / 1000, 6);
  });

  it("metrics: GET /metrics serves the text format, or 404 naming the switch when metrics are off", async () => {
    const m = new NodeMetrics({ node: "n1", cluster: "c", version: "0" });
    for (const metrics of [m, undefined]) {
      const admin = new AdminHttp({ status: () => ({ leader: "n1" }), running: () => true, metrics });
      const port = await admin.listen("127.0.0.1:0");
      try {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`);
        if (metrics) {
          expect(res.status).toBe(200);
          expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
          expect(await res.text()).toContain("# TYPE raftmesh_raft_proposals_total counter");
        } else {
          expect(res.status).toBe(404);
          expect(((await res.json()) as { error: string }).error).toMatch(/metrics: false/);
        }
      } finally {
        await admin.close();
      }
    }
  });
});
