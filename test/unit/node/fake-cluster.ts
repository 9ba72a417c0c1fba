/**
 * A cluster of real RaftNodes on fake timers for unit tests of the host loop: an in-memory store
 * (durable at once), a KV machine per node and a network of directed links a test can cut. The
 * test must install vitest's fake timers (setTimeout, setImmediate, Date) before starting it, as
 * fakeClusterPerTest does.
 */
import { afterEach, beforeEach, vi } from "vitest";
import { RaftNode } from "../../../src/node/raft-node.js";
import { bootstrapEntries, type Message, type NodeId, nodeId } from "../../../src/raft/index.js";
import { MemoryLogStore } from "../../../src/storage/index.js";
import { KvStateMachine } from "../../integration/kv-state-machine.js";

const silent = { info() {}, warn() {}, error() {}, debug() {} };
export const IDS = ["n1", "n2", "n3"].map(nodeId);
/** TICK_MS and the tick counts give election timeouts of 100-200 ms of fake time. */
export const TICK_MS = 10;
/** LINK_MS is every message's delay on the fake network. */
export const LINK_MS = 1;


export interface TestCluster {
  readonly nodes: Map<NodeId, RaftNode>;
  readonly machines: Map<NodeId, KvStateMachine>;
  /** cut holds directed links "from>to" whose messages are dropped. */
  readonly cut: Set<string>;
}

export function startCluster(snapshotEveryEntries: number): TestCluster {
  const c: TestCluster = { nodes: new Map(), machines: new Map(), cut: new Set() };
  const boot = bootstrapEntries(IDS);
  for (const id of IDS) {
    const machine = new KvStateMachine();
    const state = { hardState: { term: 1, vote: "" as NodeId, commit: boot.length }, entries: boot };
    const node = new RaftNode({
      id,
      tickMs: TICK_MS,
      electionTicks: 10,
      heartbeatTicks: 2,
      // Durable at once: these tests are about answers, not storage.
      store: new MemoryLogStore(state),
      state,
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

export async function until(what: string, f: () => boolean, withinMs = 5_000): Promise<void> {
  for (let waited = 0; !f(); waited += TICK_MS) {
    if (waited > withinMs) throw new Error(`no ${what} within ${withinMs} ms of fake time`);
    await vi.advanceTimersByTimeAsync(TICK_MS);
  }
}

export function leaderOf(c: TestCluster): NodeId | undefined {
  return [...c.nodes.entries()].find(([, n]) => n.isLeader())?.[0];
}

/** drive advances fake time until p settles, and returns its value. */
export async function drive<T>(what: string, p: Promise<T>): Promise<T> {
  const s = settle(p);
  await until(what, () => s.done);
  if (s.err !== undefined) throw s.err;
  return s.value as T;
}

/** settle records how a promise ended, so the test can look without awaiting it. */
export function settle(p: Promise<unknown>): { done: boolean; value?: unknown; err?: unknown } {
  const s: { done: boolean; value?: unknown; err?: unknown } = { done: false };
  p.then(
    (value) => Object.assign(s, { done: true, value }),
    (err: unknown) => Object.assign(s, { done: true, err }),
  );
  return s;
}

/**
 * fakeClusterPerTest installs fake timers before each test of the enclosing describe and, after it,
 * stops the cluster the test started with start() and restores real timers.
 */
export function fakeClusterPerTest(): { start(snapshotEveryEntries: number): TestCluster } {
  let c: TestCluster | undefined;
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "setImmediate", "clearImmediate", "Date"] });
  });
  afterEach(async () => {
    for (const n of c?.nodes.values() ?? []) await n.stop();
    c = undefined;
    vi.useRealTimers();
  });
  return { start: (snapshotEveryEntries) => (c = startCluster(snapshotEveryEntries)) };
}
