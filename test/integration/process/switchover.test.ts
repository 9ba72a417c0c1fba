/**
 * Switchovers on a real 3-node cluster (agent processes), TTL 1 s: three instances run the master
 * session helper, each heartbeating through its own node and nudged by master watch events (so
 * every instance hears a change one round trip after it applies: the tightest race there is).
 * A switchover changes the master in one entry while the old master may still act on its last
 * "master" answer; the handover fence must keep the intervals in which instances act as master
 * from ever overlapping, on one monotonic clock (all sessions live in this process).
 */
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MasterSession, nudgeOnMasterEvents, RaftmeshClient, startMasterSession } from "../../../src/client/index.js";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

const TTL_MS = 1_000;
/** SWITCHOVERS is how many switchovers the test makes, cycling through the three instances. */
const SWITCHOVERS = 4;
/** HANDOVER_MS_MAX bounds one switchover: at most one TTL of fence, plus heartbeat rounds on a busy machine. */
const HANDOVER_MS_MAX = TTL_MS + 3_000;

interface Instance {
  readonly id: string;
  readonly via: string;
  /** intervals: [promoted at, demoted at) on this process's monotonic clock; an open one ends at +inf. */
  readonly intervals: { from: number; to: number; epoch: number }[];
  session?: MasterSession;
  client?: RaftmeshClient;
  stopNudge?: () => void;
}

/** overlapsOf lists the pairs of master intervals of different instances that overlap. */
function overlapsOf(all: { id: string; from: number; to: number; epoch: number }[]): string[] {
  const out: string[] = [];
  for (const a of all) {
    for (const b of all) {
      if (a.id < b.id && a.from < b.to && b.from < a.to) out.push(`${a.id}@${a.epoch} [${a.from.toFixed(1)}, ${a.to.toFixed(1)}) and ${b.id}@${b.epoch} [${b.from.toFixed(1)}, ${b.to.toFixed(1)})`);
    }
  }
  return out;
}

/** FAILBACK_HOLD_DOWN_MS is the smallest hold-down the registry accepts. */
const FAILBACK_HOLD_DOWN_MS = 1_000;

describe("switchover on a 3-node cluster", () => {
  let c: ProcessCluster;
  const instances: Instance[] = [];

  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    await c.waitForLeader();
  });
  afterAll(async () => {
    for (const i of instances) {
      i.stopNudge?.();
      i.session?.stop();
      i.client?.close();
    }
    await c?.cleanup();
  });

  /** startInstance runs a master session for id through node `via`, recording its master intervals. */
  async function startInstance(service: string, id: string, via: string, opts: { port: number; adopt?: boolean }): Promise<Instance> {
    const inst: Instance = { id, via, intervals: [] };
    instances.push(inst);
    inst.client = new RaftmeshClient([c.api(via)]);
    inst.session = await startMasterSession(inst.client, {
      service,
      id,
      address: "127.0.0.1",
      port: opts.port,
      ttlMs: TTL_MS,
      adopt: opts.adopt ?? false,
      onPromoted: (epoch) => inst.intervals.push({ from: performance.now(), to: Number.POSITIVE_INFINITY, epoch }),
      onDemoted: () => {
        const open = inst.intervals.at(-1);
        if (open && open.to === Number.POSITIVE_INFINITY) open.to = performance.now();
      },
    });
    inst.stopNudge = nudgeOnMasterEvents(inst.client, inst.session, service);
    return inst;
  }

  it("switchover: the old master stands down before the new one acts, every time, and each handover ends within one TTL and a bit", async () => {
    await c.client("n1").putService("db", { mode: "master-slave" });
    for (const [id, via] of [
      ["db-a", "n1"],
      ["db-b", "n2"],
      ["db-c", "n3"],
    ] as const) {
      await startInstance("db", id, via, { port: 9000 });
    }
    let master = await waitFor("a master", () => instances.find((i) => i.session?.isMaster()), 15_000);
    const handovers: number[] = [];
    for (let k = 0; k < SWITCHOVERS; k++) {
      const target = instances[(instances.indexOf(master) + 1) % instances.length] as Instance;
      const started = performance.now();
      const res = await c.client("n1").failover("db", { to: target.id });
      expect(res.master).toBe(target.id);
      await waitFor(`${target.id} acting as master of epoch ${res.epoch}`, () => target.session?.epoch === res.epoch, HANDOVER_MS_MAX + 2_000);
      handovers.push(Math.round(performance.now() - started));
      master = target;
    }
    const all = instances.flatMap((i) => i.intervals.map((iv) => ({ ...iv, id: i.id })));
    const overlaps = overlapsOf(all);
    const summary = JSON.stringify({ handovers, intervals: all.length });
    expect(overlaps, summary).toEqual([]);
    expect(all.length, summary).toBeGreaterThanOrEqual(SWITCHOVERS + 1);
    for (const ms of handovers) expect(ms, summary).toBeLessThan(HANDOVER_MS_MAX);
    // One instance per epoch.
    const holders = new Map<number, Set<string>>();
    for (const iv of all) holders.set(iv.epoch, (holders.get(iv.epoch) ?? new Set()).add(iv.id));
    expect([...holders.values()].filter((ids) => ids.size > 1), summary).toEqual([]);
  });

  it("fail-back: the preferred instance, back and passing for the hold-down, takes the master role again from the standby that replaced it, never both at once", async () => {
    await c.client("n1").putService("fb", { mode: "master-slave", failback: "fb-p", failbackHoldDownMs: FAILBACK_HOLD_DOWN_MS });
    const start = (id: string, via: string, adopt: boolean) => startInstance("fb", id, via, { port: 9001, adopt });
    const preferred = await start("fb-p", "n1", false);
    await waitFor("fb-p master", () => preferred.session?.isMaster(), 15_000);
    const standby = await start("fb-s", "n2", false);
    // The preferred instance goes silent: its lease runs out and the standby is promoted.
    preferred.stopNudge?.();
    preferred.session?.stop();
    await waitFor("fb-s promoted", () => standby.session?.isMaster(), TTL_MS + 5_000);
    const replacedAt = performance.now();
    // It comes back (same instance, adopted): a standby first, then the master again once it has
    // passed for the hold-down and the standby has held the role as long.
    const back = await start("fb-p", "n1", true);
    await waitFor("fb-p master again", () => back.session?.isMaster(), FAILBACK_HOLD_DOWN_MS + TTL_MS + 8_000);
    const failbackMs = Math.round(performance.now() - replacedAt);
    const all = [preferred, standby, back].flatMap((i) => i.intervals.map((iv) => ({ ...iv, id: i.id })));
    const summary = JSON.stringify({ failbackMs, intervals: all.map((iv) => `${iv.id}@${iv.epoch}`) });
    expect(overlapsOf(all), summary).toEqual([]);
    expect(failbackMs, summary).toBeGreaterThanOrEqual(FAILBACK_HOLD_DOWN_MS);
    expect(standby.session?.isMaster(), summary).toBe(false);
    const master = (await c.client("n2").getService("fb")).service?.master;
    expect(master?.instanceId, summary).toBe("fb-p");
    expect(master?.epoch, summary).toBe(back.session?.epoch);
  });
});
