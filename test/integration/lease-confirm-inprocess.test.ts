import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LEASE_CONFIRM_MS, LeaseDriver } from "../../src/registry/lease-driver.js";
import type { OkResult } from "../../src/registry/writer.js";
import { RaftNode } from "../../src/node/raft-node.js";
import { bootstrapEntries, type Message, type NodeId, nodeId, Role } from "../../src/raft/index.js";
import { LogStore } from "../../src/storage/index.js";
import { KvStateMachine } from "./kv-state-machine.js";
import { instance } from "../fixtures/registry.js";

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const IDS = ["n1", "n2", "n3"].map(nodeId);
const OLD = nodeId("n1");
/** OLD_ELECTION_TICKS: n1's check-quorum waits 10 s (1,000 ticks of 10 ms), so it stays leader long after it is deposed. */
const OLD_ELECTION_TICKS = 1_000;

const inst = instance("a");

interface Member {
  node: RaftNode;
  store: LogStore;
}

async function waitFor<T>(what: string, f: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("leases: a deposed leader", () => {
  let dir = "";
  const members = new Map<NodeId, Member>();
  let driver: LeaseDriver | undefined;
  afterEach(async () => {
    driver?.stop();
    for (const m of members.values()) {
      await m.node.stop();
      await m.store.close();
    }
    members.clear();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("leases: a leader cut off from its peers acknowledges no heartbeat, even before it notices it was deposed", async () => {
    dir = await mkdtemp(join(tmpdir(), "raftmesh-lease-confirm-"));
    const isolated = new Set<NodeId>();
    for (const id of IDS) {
      const { store } = await LogStore.open(join(dir, id), { clusterId: "test", nodeId: id });
      const boot = bootstrapEntries(IDS);
      const initial = { hardState: { term: 1, vote: "" as NodeId, commit: boot.length }, entries: boot };
      await store.save(initial);
      const node = new RaftNode({
        id,
        tickMs: 10,
        electionTicks: id === OLD ? OLD_ELECTION_TICKS : 30,
        heartbeatTicks: 2,
        store,
        state: initial,
        machine: new KvStateMachine(),
        logger: silent,
        sink: {
          send: (msgs: readonly Message[]) => {
            for (const m of msgs) if (!isolated.has(m.from) && !isolated.has(m.to)) setImmediate(() => members.get(m.to)?.node.step(m));
          },
        },
      });
      if (id === OLD) node.events.on("role", (e) => driver?.onRole(e.role === Role.Leader));
      members.set(id, { node, store });
    }
    const old = members.get(OLD)?.node as RaftNode;
    driver = new LeaseDriver({
      registry: { eachInstance: () => [inst], instance: () => inst },
      propose: async () => ({ ok: true, index: 0 }) as OkResult,
      logger: silent,
      leadership: old,
      clusterNow: () => 0,
    });
    for (const m of members.values()) m.node.start();
    old.campaign();
    await waitFor("n1 leads", () => old.isLeader() && driver?.isLeading);
    const beat = [{ service: "web", id: "a", status: "", note: "" }];
    // While it leads with a quorum behind it, n1 acknowledges.
    expect((await driver.renew(beat)).map((a) => a.code)).toEqual(["ok"]);

    isolated.add(OLD);
    const oldTerm = old.status().term;
    await waitFor("a new leader", () => [...members.values()].find((m) => m.node !== old && m.node.isLeader() && m.node.status().term > oldTerm));
    // Deposed, but it has not heard: its check-quorum is seconds away.
    expect(old.isLeader()).toBe(true);
    expect(driver.isLeading).toBe(true);
    const started = Date.now();
    const answers = await driver.renew(beat);
    expect(answers.map((a) => a.code)).toEqual(["unconfirmed"]);
    // It gave up after LEASE_CONFIRM_MS of waiting for a quorum, not at once and not much later.
    expect(Date.now() - started).toBeGreaterThanOrEqual(LEASE_CONFIRM_MS - 5);
    expect(Date.now() - started).toBeLessThan(LEASE_CONFIRM_MS + 2_000);
  });
});
