/**
 * What a RaftNode tells the callers of proposals it can no longer follow: a three-node cluster of
 * real RaftNodes on fake timers, an in-memory store and a network of directed links the test cuts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { status } from "@grpc/grpc-js";
import { toStatus } from "../../../src/api/errors.js";
import { METADATA_NOT_APPLIED } from "../../../src/common/metadata.js";
import { ProposalLostError, RemovedFromClusterError } from "../../../src/node/errors.js";
import { RaftNode } from "../../../src/node/raft-node.js";
import { bootstrapEntries, ConfChangeType, type Message, type NodeId, nodeId, Role } from "../../../src/raft/index.js";
import type { LogStore } from "../../../src/storage/index.js";
import { encodeKvCommand, KvStateMachine } from "../../integration/kv-state-machine.js";

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const IDS = ["n1", "n2", "n3"].map(nodeId);
/** TICK_MS and the tick counts give election timeouts of 100-200 ms of fake time. */
const TICK_MS = 10;
/** LINK_MS is every message's delay on the fake network. */
const LINK_MS = 1;

/** memoryStore is durable at once: these tests are about answers, not storage. */
const memoryStore = { save: async () => {}, compact: async () => {} } as unknown as LogStore;

interface TestCluster {
  readonly nodes: Map<NodeId, RaftNode>;
  readonly machines: Map<NodeId, KvStateMachine>;
  /** cut holds directed links "from>to" whose messages are dropped. */
  readonly cut: Set<string>;
}

function startCluster(snapshotEveryEntries: number): TestCluster {
  const c: TestCluster = { nodes: new Map(), machines: new Map(), cut: new Set() };
  const boot = bootstrapEntries(IDS);
  for (const id of IDS) {
    const machine = new KvStateMachine();
    const node = new RaftNode({
      id,
      tickMs: TICK_MS,
      electionTicks: 10,
      heartbeatTicks: 2,
      store: memoryStore,
      state: { hardState: { term: 1, vote: "" as NodeId, commit: boot.length }, entries: boot },
      machine,
      logger: silent,
      snapshotEveryEntries,
      sink: {
        send: (msgs: readonly Message[]) => {
          for (const m of msgs) {
            if (c.cut.has(`${m.from}>${m.to}`)) continue;
            setTimeout(() => c.nodes.get(m.to)?.step(m), LINK_MS);
          }
        },
      },
    });
    c.nodes.set(id, node);
    c.machines.set(id, machine);
  }
  for (const n of c.nodes.values()) n.start();
  return c;
}

async function until(what: string, f: () => boolean, withinMs = 5_000): Promise<void> {
  for (let waited = 0; !f(); waited += TICK_MS) {
    if (waited > withinMs) throw new Error(`no ${what} within ${withinMs} ms of fake time`);
    await vi.advanceTimersByTimeAsync(TICK_MS);
  }
}

function leaderOf(c: TestCluster): NodeId | undefined {
  return [...c.nodes.entries()].find(([, n]) => n.isLeader())?.[0];
}

/** drive advances fake time until p settles, and returns its value. */
async function drive<T>(what: string, p: Promise<T>): Promise<T> {
  const s = settle(p);
  await until(what, () => s.done);
  if (s.err !== undefined) throw s.err;
  return s.value as T;
}

/** settle records how a promise ended, so the test can look without awaiting it. */
function settle(p: Promise<unknown>): { done: boolean; value?: unknown; err?: unknown } {
  const s: { done: boolean; value?: unknown; err?: unknown } = { done: false };
  p.then(
    (value) => Object.assign(s, { done: true, value }),
    (err: unknown) => Object.assign(s, { done: true, err }),
  );
  return s;
}

describe("node: outcomes of proposals the node can no longer follow", { timeout: 30_000 }, () => {
  let c: TestCluster | undefined;
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "setImmediate", "clearImmediate", "Date"] });
  });
  afterEach(async () => {
    for (const n of c?.nodes.values() ?? []) await n.stop();
    c = undefined;
    vi.useRealTimers();
  });

  it("node: a deaf leader's write that the next leader committed and compacted is outcome-unknown, never ABORTED", async () => {
    c = startCluster(4);
    const cl = c;
    await until("leader", () => leaderOf(cl) !== undefined);
    const old = leaderOf(cl) as NodeId;
    const peers = IDS.filter((id) => id !== old);
    // The leader hears nothing from its peers, while they still hear it.
    for (const p of peers) cl.cut.add(`${p}>${old}`);
    const x = settle((cl.nodes.get(old) as RaftNode).propose(encodeKvCommand({ op: "put", key: "x", value: "1" })));
    // It steps down (check quorum); the peers elect one of themselves, which commits x with its own entries.
    await until("new leader", () => peers.some((p) => cl.nodes.get(p)?.isLeader()));
    const next = leaderOf(cl) as NodeId;
    await until("x applied on the new leader", () => cl.machines.get(next)?.get("x") === "1");
    for (let i = 0; i < 8; i++) await drive(`k${i}`, (cl.nodes.get(next) as RaftNode).propose(encodeKvCommand({ op: "put", key: `k${i}`, value: "v" })));
    expect((cl.nodes.get(next) as RaftNode).snapshotIndex()).toBeGreaterThan(0);
    expect(x.done).toBe(false);
    // Healed, the old leader is behind the new leader's compacted log and installs its snapshot.
    cl.cut.clear();
    await until("old leader caught up", () => cl.machines.get(old)?.get("x") === "1");
    expect((cl.nodes.get(old) as RaftNode).snapshotIndex()).toBeGreaterThan(0);
    await until("x answered", () => x.done);
    expect(x.err).toBeInstanceOf(Error);
    expect(x.err).not.toBeInstanceOf(ProposalLostError);
    const st = toStatus(x.err);
    expect(status[st.code as status]).toBe("DEADLINE_EXCEEDED");
    expect(st.metadata?.get(METADATA_NOT_APPLIED)).toEqual([]);
  });

  it("node: a leader that removed itself fails its later pending writes at once, as outcome-unknown", async () => {
    c = startCluster(10_000);
    const cl = c;
    await until("leader", () => leaderOf(cl) !== undefined);
    const old = leaderOf(cl) as NodeId;
    const node = cl.nodes.get(old) as RaftNode;
    const peers = IDS.filter((id) => id !== old);
    // A write of this term must commit before a membership change may be proposed.
    await drive("a", node.propose(encodeKvCommand({ op: "put", key: "a", value: "1" })));
    const removal = settle(node.proposeConfChange({ type: ConfChangeType.Remove, node: old }));
    // The removal reaches the peers; then the leader's own messages stop, so y never leaves it.
    await vi.advanceTimersByTimeAsync(LINK_MS);
    for (const p of peers) cl.cut.add(`${old}>${p}`);
    const y = settle(node.propose(encodeKvCommand({ op: "put", key: "y", value: "1" })));
    // The peers' acknowledgements of the removal come back: it commits and the leader steps down.
    await until("removal applied", () => removal.done);
    expect(removal.err).toBeUndefined();
    expect(node.status().role).not.toBe(Role.Leader);
    // y can never commit now; its caller hears so within a few ticks, not at its deadline.
    await vi.advanceTimersByTimeAsync(3 * TICK_MS);
    expect(y.done).toBe(true);
    expect(y.err).toBeInstanceOf(RemovedFromClusterError);
    expect(toStatus(y.err).metadata?.get(METADATA_NOT_APPLIED)).toEqual([]);
  });
});
