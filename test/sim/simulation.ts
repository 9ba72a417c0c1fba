import { ReadRejectedError, ReadTimeoutError } from "../../src/node/errors.js";
import { RaftNode } from "../../src/node/raft-node.js";
import type { StateMachine } from "../../src/node/state-machine.js";
import {
  bootstrapEntries,
  type ConfChange,
  ConfChangeType,
  decodeConfChange,
  type Entry,
  EntryKind,
  type LogIndex,
  type Message,
  Membership,
  type NodeId,
  nodeId,
  RaftError,
  Role,
  type Status,
  type UnsafeSwitches,
} from "../../src/raft/index.js";
import { type LoadedState, MemoryLogStore } from "../../src/storage/index.js";
import { type ConfView, SafetyChecker, SafetyViolation } from "./checker.js";
import { encodeWrite } from "./kv-machine.js";
import { SimNetwork } from "./network.js";
import { type FaultProfile, pickProfile } from "./profiles.js";
import { Rng } from "./rng.js";
import { LeaseDriver } from "../../src/registry/lease-driver.js";
import { encodeWrite as encodeRegistryWrite, type OkResult } from "../../src/registry/writer.js";
import { LeaseWorkload } from "./lease-workload.js";
import { RegistrySimMachine } from "./registry-machine.js";
import { RegistryWorkload } from "./registry-workload.js";
import type { MachineKind } from "./sim-machine.js";
import { SimNode } from "./sim-node.js";
import { SimScheduler } from "./sim-scheduler.js";
import { proposeConfChangeUnsafe, type UnsafeConfVariant } from "./unsafe-conf.js";

/** REGISTRY_T0_MS and SIM_TICK_MS turn ticks into the wall time leaders stamp on registry commands. */
const REGISTRY_T0_MS = 1_700_000_000_000;
/** SIM_TICK_MS is one simulated tick in the nodes' virtual milliseconds (their read deadlines are counted in them). */
const SIM_TICK_MS = 100;

/**
 * SIM_TAKEOVER_SLICE_LEASES: a new leader seeds its lease table 2 instances per timer turn, so the
 * simulated registries (tens of instances) take several turns, and heartbeats, expiry checks,
 * registrations and crashes land in the middle of a takeover (LeaseTracker.beginTakeover).
 */
const SIM_TAKEOVER_SLICE_LEASES = 2;

/** silent is the simulated nodes' logger: a run's story is its seed, not its log lines. */
const silent = { info() {}, warn() {}, error() {}, debug() {} };

/** SimConfig shapes one simulated run; every random choice inside comes from `seed`. */
export interface SimConfig {
  seed: number;
  /** nodes is the initial cluster size; chosen from {1,3,5,7} by the seed when absent. */
  nodes?: number;
  /** faultTicks is how long faults are injected before the cluster is healed. */
  faultTicks?: number;
  /** livenessTicksMax bounds the time from heal to the first acknowledged write. */
  livenessTicksMax?: number;
  electionTick?: number;
  heartbeatTick?: number;
  unsafe?: UnsafeSwitches;
  /** unsafeConf breaks the nodes' membership guards on purpose (a negative control, see unsafe-conf.ts). */
  unsafeConf?: UnsafeConfVariant;
  /** unsafeLeaseClock runs the lease drivers' clock twice as fast as virtual time (a negative control for the lease checks). */
  unsafeLeaseClock?: boolean;
  /** unsafeMasterFence lets the lease drivers promote a master without waiting out the previous master's leases (a negative control for the two-masters check). */
  unsafeMasterFence?: boolean;
  membership?: boolean;
  /** snapshotEvery is how many applied entries trigger a local snapshot (small, to exercise snapshots). */
  snapshotEvery?: number;
  /** machine is the state machine the nodes run: "kv" (default) or the registry with random registry writes. */
  machine?: MachineKind;
}

/** RegistryTally counts the results of registry commands (each index once), so a run shows what it exercised; duplicates are retries answered from the session table. */
export interface RegistryTally {
  commands: number;
  ok: number;
  duplicates: number;
  failed: Record<string, number>;
  /** leases: heartbeats sent, acknowledged, "master" answers, and lease expiries the drivers applied. */
  leases?: { heartbeats: number; acks: number; masterAnswers: number; expiries: number; exitReports?: number };
}

/** SimResult is the outcome of one run. */
export interface SimResult {
  seed: number;
  nodes: number;
  ok: boolean;
  violation?: { property: string; message: string; tick: number };
  ticks: number;
  elections: number;
  writesAcked: number;
  readsDone: number;
  /** readsRefused counts reads a node refused or gave up on (limit, expiry, leader gone, deadline). */
  readsRefused: number;
  crashes: number;
  confChanges: number;
  transfers: number;
  snapshotsSent: number;
  /** leaderDisconnects counts connection-end notices that reached a follower about its own leader (each starts an early campaign). */
  leaderDisconnects: number;
  /** confSplits counts the ticks at which nodes holding every committed entry used different configurations. */
  confSplits: number;
  /** healToWriteTicks is the liveness figure: ticks from heal to the first acknowledged write. */
  healToWriteTicks: number;
  messages: number;
  /** trace is a hash of every message sent, in order: equal traces mean the same run (determinism). */
  trace: number;
  /** registry is set for machine "registry". */
  registry?: RegistryTally;
}

const NODE_COUNTS = [1, 3, 3, 3, 5, 5, 5, 7];

/**
 * CONF_ISOLATE_RATE is the share of membership changes after which the leader is cut off at once.
 * Otherwise a leader rarely loses its term in the few ticks a change is uncommitted, and a core
 * that lets the next leader change membership before committing in its term went unnoticed in
 * 500 seeds; at a quarter it is caught within a few hundred.
 */
const CONF_ISOLATE_RATE = 0.25;

/** CRASH_NOTICE_RATE: most peers of a crashed node see its connection close; a tenth do not (no stream open then) and must time out. */
const CRASH_NOTICE_RATE = 0.9;
/** CUT_NOTICE_RATE: a cut link is seen closing at both ends this often; otherwise the failure is silent and only timeouts find it. */
const CUT_NOTICE_RATE = 0.3;
/** SPURIOUS_NOTICE_RATE: per fault-phase tick, a connection between two live nodes resets (about one every 50 ticks, several per election timeout window of a run). */
const SPURIOUS_NOTICE_RATE = 0.02;

/**
 * Simulation runs N production host loops (RaftNode, with the Raft core inside) on simulated
 * hosts over a faulty network, with crashes, restarts, slow disks, clock skew, membership changes,
 * transfers, client writes and reads, checking Raft's safety properties after every tick and
 * liveness after the faults stop. Each node gets an in-memory store whose writes finish on virtual
 * time, a scheduler on virtual time and randomness from the seed; the awaits of the host loops are
 * real microtasks, drained after every tick, so a seed replays exactly.
 */
export class Simulation {
  readonly rng: Rng;
  private readonly faultRng: Rng;
  private readonly clientRng: Rng;
  /**
   * confRng draws the changes that probe the core's membership guards (see probeConf) and the
   * isolation of a leader after a change. It is derived from the seed without drawing from rng, so
   * the other draws stay as they were; a correct core refuses every probe, so probes alone change
   * nothing in a run.
   */
  private readonly confRng: Rng;
  /**
   * disconnectRng draws the connection-end notices (see noteDisconnect) on a generator of its own,
   * so the other draws stay as they were; disconnects are those notices, in (time, order) of making.
   */
  private readonly disconnectRng: Rng;
  private disconnects: { readonly at: number; readonly to: NodeId; readonly peer: NodeId }[] = [];
  private probedTerm = 0;
  readonly net: SimNetwork;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly checker = new SafetyChecker();
  readonly cfg: Required<Omit<SimConfig, "unsafe" | "unsafeConf">> & { unsafe: UnsafeSwitches; unsafeConf?: UnsafeConfVariant };
  now = 0;
  private nextNodeNum: number;
  private readSeq = 0;
  private writeSeq = 0;
  private ackedMax: LogIndex = 0;
  private healedAt = -1;
  private firstAckAfterHeal = -1;
  private crashedUntil = new Map<NodeId, number>();
  private removed = new Set<NodeId>();
  /** failure is the first error a node or a callback hit between checks; the next check throws it. */
  private failure: Error | undefined;
  private trace = 0;

  private readonly workload: RegistryWorkload | undefined;
  /** leaseWorkload and leaseRng: the instances' heartbeats (registry runs), on generators of their own so the other draws stay as they were. */
  private readonly leaseWorkload: LeaseWorkload | undefined;
  private readonly leaseRng: Rng;
  private registryTally: RegistryTally = { commands: 0, ok: 0, duplicates: 0, failed: {} };
  private talliedIndex: LogIndex = 0;
  private stats = { elections: 0, writesAcked: 0, readsDone: 0, readsRefused: 0, crashes: 0, confChanges: 0, transfers: 0, snapshotsSent: 0, leaderDisconnects: 0 };
  private slowDiskRate: number;
  readonly profile: FaultProfile;

  constructor(config: SimConfig) {
    this.rng = new Rng(config.seed);
    const n = config.nodes ?? NODE_COUNTS[this.rng.nextInt(NODE_COUNTS.length)] ?? 3;
    this.cfg = {
      seed: config.seed,
      nodes: n,
      faultTicks: config.faultTicks ?? 600,
      livenessTicksMax: config.livenessTicksMax ?? 400,
      electionTick: config.electionTick ?? 10,
      heartbeatTick: config.heartbeatTick ?? 2,
      unsafe: config.unsafe ?? {},
      ...(config.unsafeConf ? { unsafeConf: config.unsafeConf } : {}),
      membership: config.membership ?? true,
      unsafeLeaseClock: config.unsafeLeaseClock ?? false,
      unsafeMasterFence: config.unsafeMasterFence ?? false,
      snapshotEvery: config.snapshotEvery ?? 5 + this.rng.nextInt(60),
      machine: config.machine ?? "kv",
    };
    // The workload has its own generator, derived from the seed without drawing from this.rng,
    // so the kv machine's runs are unchanged by the registry option.
    if (this.cfg.machine === "registry") this.workload = new RegistryWorkload(new Rng((config.seed ^ 0x5eed_1e57) >>> 0));
    if (this.cfg.machine === "registry") this.leaseWorkload = new LeaseWorkload(new Rng((config.seed ^ 0x1ea5_e5ed) >>> 0));
    this.leaseRng = new Rng((config.seed ^ 0x1ea5_0c0d) >>> 0);
    this.confRng = new Rng((config.seed ^ 0xc0f1_9e57) >>> 0);
    this.disconnectRng = new Rng((config.seed ^ 0xd15c_0ec7) >>> 0);
    this.faultRng = this.rng.fork();
    this.clientRng = this.rng.fork();
    this.net = new SimNetwork(this.rng.fork());
    this.net.faults = {
      dropRate: this.rng.chance(0.3) ? 0 : this.rng.next() * 0.15,
      duplicateRate: this.rng.next() * 0.05,
      delayTicksMax: this.rng.nextInt(4),
    };
    this.slowDiskRate = this.rng.next() * 0.3;
    this.profile = pickProfile(this.rng);
    const ids = Array.from({ length: n }, (_, i) => nodeId(`n${i + 1}`));
    this.nextNodeNum = n + 1;
    const boot = bootstrapEntries(ids);
    for (const id of ids) this.addNode(id, { hardState: { term: 1, vote: "" as NodeId, commit: boot.length }, entries: boot });
  }

  private addNode(id: NodeId, initial?: LoadedState): SimNode {
    this.nodeRngs.set(id, this.rng.fork());
    // A write is slow now and then: it lands 1-3 ticks later, and the host loop waits for it.
    const store = new MemoryLogStore(initial, { persist: (done) => this.persist(node, done) });
    const node = new SimNode(id, store, this.cfg.machine);
    this.boot(node);
    node.skipTickRate = this.rng.chance(0.5) ? this.rng.next() * 0.15 : 0;
    this.nodes.set(id, node);
    return node;
  }

  /** persist finishes one store write now, or on a slow disk a few ticks later (on the node's own timers). */
  private persist(node: SimNode, done: () => void): void {
    if (this.faultRng.chance(this.slowDiskRate)) node.sched.after((1 + this.faultRng.nextInt(3)) * SIM_TICK_MS, done);
    else done();
  }

  /** boot starts a new incarnation of a node: a production RaftNode on what its store holds. */
  private boot(sn: SimNode): void {
    sn.fresh();
    const sched = new SimScheduler(SIM_TICK_MS);
    sched.nowMs = this.now * SIM_TICK_MS;
    sn.sched = sched;
    const readPrefix = `${sn.id}/`;
    const node: RaftNode = new RaftNode({
      id: sn.id,
      tickMs: SIM_TICK_MS,
      electionTicks: this.cfg.electionTick,
      heartbeatTicks: this.cfg.heartbeatTick,
      store: sn.store,
      state: sn.store.load(),
      machine: this.hostMachine(sn),
      sink: {
        send: (msgs) => {
          // A dead incarnation sends nothing more (its host loop may still be unwinding).
          if (sn.node !== node || !sn.alive) return;
          for (const m of msgs) this.send(m);
        },
      },
      logger: silent,
      snapshotEveryEntries: this.cfg.snapshotEvery,
      // A pending-read limit of 1-4 makes leaders refuse reads, forwarded ones too, under every
      // fault. It comes from the seed without drawing from the generator.
      pendingReadsMax: 1 + (this.cfg.seed % 4),
      scheduler: sched,
      random: this.nodeRngs.get(sn.id),
      readContext: () => new TextEncoder().encode(`${readPrefix}${this.readSeq++}`),
      core: {
        unsafe: this.cfg.unsafe,
        inflightMessagesMax: this.profile.inflightMessagesMax,
        messageBytesMax: this.profile.messageBytesMax,
        snapshotKeepEntries: this.rng.nextInt(3) * 5,
      },
    });
    sn.node = node;
    node.events.on("snapshotInstalled", (e) => {
      sn.appliedConf = new Membership(e.meta.conf);
    });
    node.events.on("failure", (e) => {
      if (sn.node === node) this.failure ??= e.error;
    });
    node.start();
    if (sn.sm instanceof RegistrySimMachine) this.startLeases(sn, node, sched, sn.sm);
  }

  /**
   * startLeases runs the production lease driver on a registry node, wired as the agent wires it
   * (buildLeases): proposals through this node, its role events, the applied registry's events, and
   * the node's virtual clock for both its monotonic time and its expiry timer.
   */
  private startLeases(sn: SimNode, node: RaftNode, sched: SimScheduler, sm: RegistrySimMachine): void {
    const clusterTime = { now: () => REGISTRY_T0_MS + sched.nowMs };
    const leases = new LeaseDriver({
      clusterNow: () => clusterTime.now(),
      registry: sm.leaseView(),
      propose: async (cmd) => {
        const proposedMs = sched.nowMs;
        const index = (await node.propose(encodeRegistryWrite(clusterTime, cmd, undefined))) as LogIndex;
        const res = sm.resultAt(index);
        if (!res?.ok) throw new Error(`lease proposal ${cmd.op} at ${index}: ${res ? res.code : "no result"}`);
        this.guard(() =>
          this.leaseWorkload?.onLeaseWrite(cmd, proposedMs, sched.nowMs, (c) => {
            const inst = sm.leaseView().instance(c.service, c.id);
            return inst?.health === "critical" && inst.note === c.note && inst.modIndex === index;
          }),
        );
        return res as OkResult;
      },
      logger: silent,
      leadership: node,
      monoMs: this.cfg.unsafeLeaseClock ? () => 2 * sched.nowMs : () => sched.nowMs,
      timer: sched,
      takeoverSliceLeases: SIM_TAKEOVER_SLICE_LEASES,
      unsafeSkipMasterFence: this.cfg.unsafeMasterFence,
    });
    sm.onEvents = (events) => leases.onEvents(events);
    sm.onReset = () => leases.onReset();
    node.events.on("role", (e) => {
      if (sn.node === node) leases.onRole(e.role === Role.Leader);
    });
    sn.leases = leases;
    leases.start();
  }

  private readonly nodeRngs = new Map<NodeId, Rng>();

  /**
   * hostMachine is the StateMachine a node's RaftNode applies to: the node's SimMachine, with the
   * checker told of each application, the node's applied configuration followed, and the entry's
   * index as the result (so a client learns where its write landed).
   */
  private hostMachine(sn: SimNode): StateMachine {
    return {
      get applied() {
        return sn.sm.applied;
      },
      apply: (e: Entry) => {
        if (e.kind === EntryKind.ConfChange) sn.appliedConf.apply(decodeConfChange(e.data));
        sn.sm.apply(e);
        if (this.workload) this.tallyRegistry(sn, e.index);
        this.guard(() => this.checker.onApplied(sn.id, e.index, sn.sm.chain));
        return e.index;
      },
      snapshot: () => sn.sm.snapshot(),
      restore: (data) => {
        sn.sm.restore(data);
        this.guard(() => this.checker.onApplied(sn.id, sn.sm.applied, sn.sm.chain));
      },
      // The node installs a slice per task: a machine without slices still takes one task's pause
      // before its restore, so tasks (ticks, peer messages) run inside every install.
      beginRestore: (data) => {
        let first = true;
        const job = sn.sm.beginRestore?.(data) ?? {
          step: () => {
            if (first) {
              first = false;
              return false;
            }
            sn.sm.restore(data);
            return true;
          },
        };
        return {
          step: () => {
            if (!job.step()) return false;
            this.guard(() => this.checker.onApplied(sn.id, sn.sm.applied, sn.sm.chain));
            return true;
          },
        };
      },
    };
  }

  /** guard runs a check inside the host loop; a violation is kept for the next check, since the loop would swallow it as a node failure. */
  private guard(check: () => void): void {
    try {
      check();
    } catch (err) {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
    }
  }

  /** run executes the whole schedule and reports; a safety violation ends it early. */
  async run(): Promise<SimResult> {
    // Refusals are errors in the host loop (a read over the limit, a write to a follower, a crash
    // failing what waited): thousands per seed, whose stack traces nobody reads.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      for (this.now = 0; this.healedAt < 0 || this.now < this.healedAt + this.livenessBound; this.now++) {
        if (this.now === this.cfg.faultTicks) this.heal();
        await this.step();
        if (this.healedAt >= 0 && this.firstAckAfterHeal >= 0) break;
      }
      if (this.firstAckAfterHeal < 0) {
        throw new SafetyViolation(
          "liveness",
          `no write acknowledged within ${this.livenessBound} ticks of healing (${this.describe()})`,
        );
      }
      if (this.workload) this.checkRegistriesAgree();
      return this.result(true);
    } catch (err) {
      if (!(err instanceof SafetyViolation) && !(err instanceof Error)) throw err;
      const property = err instanceof SafetyViolation ? err.property : `crash (${err.name})`;
      return { ...this.result(false), violation: { property, message: err.message, tick: this.now } };
    } finally {
      for (const n of this.nodes.values()) if (n.alive) n.crash();
      Error.stackTraceLimit = stackTraceLimit;
    }
  }

  private result(ok: boolean): SimResult {
    return {
      seed: this.cfg.seed,
      nodes: this.cfg.nodes,
      ok,
      ticks: this.now,
      ...this.stats,
      confSplits: this.checker.confSplits,
      healToWriteTicks: this.firstAckAfterHeal >= 0 ? this.firstAckAfterHeal - this.healedAt : -1,
      messages: this.net.sent,
      trace: this.trace,
      ...(this.workload ? { registry: { ...this.registryTally, ...this.leaseTally() } } : {}),
    };
  }

  private leaseTally(): Pick<RegistryTally, "leases"> {
    const w = this.leaseWorkload;
    return w ? { leases: { heartbeats: w.heartbeats, acks: w.acks, masterAnswers: w.masterAnswers, expiries: w.expiries, exitReports: w.exitReports } } : {};
  }

  /** checkRegistriesAgree compares the registry snapshots of live nodes that applied the same index: equal state, equal bytes. */
  private checkRegistriesAgree(): void {
    const byIndex = new Map<LogIndex, { id: NodeId; bytes: string }>();
    for (const n of this.live()) {
      if (!(n.sm instanceof RegistrySimMachine)) continue;
      const bytes = Buffer.from(n.sm.registrySnapshot()).toString("base64");
      const other = byIndex.get(n.sm.applied);
      if (!other) byIndex.set(n.sm.applied, { id: n.id, bytes });
      else if (other.bytes !== bytes) {
        throw new SafetyViolation("state machine safety", `${other.id} and ${n.id} hold different registries at index ${n.sm.applied}`);
      }
    }
  }

  /** tallyRegistry counts the first application of each index. */
  private tallyRegistry(node: SimNode, index: LogIndex): void {
    if (index <= this.talliedIndex || !(node.sm instanceof RegistrySimMachine)) return;
    this.talliedIndex = index;
    const r = node.sm.lastResult;
    if (!r) return;
    const t = this.registryTally;
    t.commands++;
    // A retry is answered with the first application's result, which carries that index.
    if (r.index !== index) t.duplicates++;
    if (r.ok) t.ok++;
    else {
      t.failed[r.code] = (t.failed[r.code] ?? 0) + 1;
    }
  }

  private describe(): string {
    return [...this.nodes.values()]
      .map((n) => {
        const s = n.node.status();
        return `${n.id}:${n.alive ? s.role : "down"} t${s.term} c${s.commit} a${s.applied} v[${s.voters.join(",")}]`;
      })
      .join(" ");
  }

  /**
   * step runs one tick: faults, clients, deliveries, finished disk writes and other timers, clocks;
   * then it lets every host loop run until it waits on something (a slow write, a message, a tick)
   * and checks.
   */
  async step(): Promise<void> {
    if (this.healedAt < 0) this.injectFaults();
    this.restartDue();
    this.clients();
    for (const m of this.net.due(this.now)) {
      const node = this.nodes.get(m.to);
      if (!node?.alive) continue;
      if (node.pausedUntil > this.now) {
        this.net.redeliverAt(m, node.pausedUntil);
        continue;
      }
      // Every simulated peer is correct: a message the core calls impossible is a core bug.
      const impossible = node.node.step(m);
      if (impossible) this.failure ??= impossible;
    }
    this.deliverDisconnects();
    for (const node of this.live()) {
      node.sched.runDue(this.now * SIM_TICK_MS);
      if (!this.clientRng.chance(node.skipTickRate)) node.sched.tick();
    }
    this.heartbeats();
    await drain();
    this.failure ??= this.leaseWorkload?.violation;
    this.throwFailure();
    this.stopRemoved();
    this.check();
    // A probe runs in the core at once; the host loop takes what it did at the next drain.
    if (this.healedAt < 0) this.probeNewLeader();
  }

  /** heartbeats sends the instances' heartbeats due now to a random live node that believes it leads (registry runs). */
  private heartbeats(): void {
    const w = this.leaseWorkload;
    if (!w) return;
    w.now = this.now * SIM_TICK_MS;
    let leaders: SimNode[] | undefined;
    w.tick(this.now, w.now, () => {
      leaders ??= this.live().filter((n) => n.leases && n.node.status().role === Role.Leader);
      const n = leaders.length === 0 ? undefined : leaders[this.leaseRng.nextInt(leaders.length)];
      const leases = n?.leases;
      return leases ? (items) => leases.renew(items) : undefined;
    });
  }

  private throwFailure(): void {
    const f = this.failure;
    if (f) throw f;
  }

  private live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive && n.pausedUntil <= this.now);
  }

  // ------------------------------------------------------------ host loop

  /** send puts a node's message on the wire: the checker sees it first (a leader-only message names its term's leader). */
  private send(m: Message): void {
    this.guard(() => this.checker.onSend(m));
    if (m.type === "snap") this.stats.snapshotsSent++;
    this.trace = traceHash(this.trace, m);
    this.net.send(m, this.now + 1);
  }

  // ------------------------------------------------------------ clients

  private clients(): void {
    const live = this.live();
    if (this.clientRng.chance(this.profile.writeRate)) this.startWrite(this.clientRng.pick(live));
    if (this.clientRng.chance(this.profile.readRate)) this.startRead(this.clientRng.pick(live));
  }

  private startWrite(via: SimNode | undefined): void {
    if (!via) return;
    // Writes are forwarded to the leader the contacted node knows of, as the API layer does.
    const lead = via.node.status().lead;
    const node = lead === via.id ? via : this.nodes.get(lead);
    if (!node?.alive) return;
    const proposedAt = this.now;
    let p: Promise<unknown>;
    try {
      p = node.node.propose(this.writeData(node));
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
      return;
    }
    // The result is the index the write was applied at (see hostMachine); a write lost, overwritten
    // or cut short by a crash is simply not acknowledged.
    p.then(
      (index) => this.guard(() => this.acknowledge(index as LogIndex, proposedAt)),
      () => {},
    );
  }

  /** writeData is a client write's entry data: a key=value pair, or a registry command stamped with the leader's clock. */
  private writeData(leader: SimNode): Uint8Array {
    if (!this.workload) return encodeWrite(`k${this.clientRng.nextInt(5)}`, `v${this.writeSeq++}`);
    // Each node's wall clock is off by -1.5, 0 or +1.5 s, so stamped time can go back when leadership moves.
    const skewMs = ((Number(leader.id.slice(1)) % 3) - 1) * 1_500;
    return this.workload.next(REGISTRY_T0_MS + this.now * SIM_TICK_MS + skewMs);
  }

  /** acknowledge tells the client its write was applied at index. */
  private acknowledge(index: LogIndex, proposedAt: number): void {
    this.stats.writesAcked++;
    this.ackedMax = Math.max(this.ackedMax, index);
    if (this.healedAt >= 0 && this.firstAckAfterHeal < 0 && proposedAt >= this.healedAt) {
      this.firstAckAfterHeal = this.now;
    }
  }

  /** startRead asks a node for a linearizable read; once it resolves, its index must cover every write acknowledged before it began. */
  private startRead(sn: SimNode | undefined): void {
    if (!sn) return;
    const ackedBeforeStart = this.ackedMax;
    let p: Promise<LogIndex>;
    try {
      p = sn.node.readIndex();
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
      this.stats.readsRefused++;
      return;
    }
    p.then(
      (index) =>
        this.guard(() => {
          this.checker.onRead(sn.id, index, ackedBeforeStart);
          this.stats.readsDone++;
        }),
      (err: unknown) => {
        if (err instanceof ReadRejectedError || err instanceof ReadTimeoutError) this.stats.readsRefused++;
      },
    );
  }

  // ------------------------------------------------------------ faults

  private injectFaults(): void {
    const r = this.faultRng;
    if (!r.chance(this.profile.faultRate)) return;
    const live = this.live();
    const members = [...this.nodes.values()].filter((n) => !this.removed.has(n.id));
    const w = this.profile.weights;
    let roll = r.nextInt(w.crash + w.crashLeader + w.pauseLeader + w.partition + w.heal + w.transfer + w.membership);
    if ((roll -= w.crash) < 0) this.crash(r.pick(live));
    else if ((roll -= w.crashLeader) < 0) this.crash(this.leader());
    else if ((roll -= w.pauseLeader) < 0) this.pause(this.leader());
    else if ((roll -= w.partition) < 0) this.partition(members.map((n) => n.id));
    else if ((roll -= w.heal) < 0) this.net.heal();
    else if ((roll -= w.transfer) < 0) this.transfer();
    else if (this.cfg.membership) this.changeMembership();
  }

  /**
   * pause freezes a node (as SIGSTOP or a long GC pause would): no ticks, and messages to it wait.
   * When it resumes, it may act on its stale view before it reads what queued up.
   */
  private pause(node: SimNode | undefined): void {
    if (!node?.alive || node.pausedUntil > this.now) return;
    node.pausedUntil = this.now + 1 + this.faultRng.nextInt(this.profile.pauseTicksMax);
  }

  private crash(node: SimNode | undefined): void {
    if (!node?.alive) return;
    node.crash();
    this.stats.crashes++;
    // A crashed process's connections close at once: its peers usually hear of it (not always:
    // one that had no stream open at the time hears nothing and waits for its timeout).
    for (const other of this.nodes.values()) {
      if (other.id !== node.id && this.disconnectRng.chance(CRASH_NOTICE_RATE)) this.noteDisconnect(other.id, node.id);
    }
    const downTicksMax = this.profile.downTicksMax;
    this.crashedUntil.set(node.id, this.now + 1 + this.faultRng.nextInt(downTicksMax));
  }

  private restartDue(): void {
    for (const [id, until] of this.crashedUntil) {
      if (until > this.now && this.healedAt < 0) continue;
      this.crashedUntil.delete(id);
      const node = this.nodes.get(id);
      if (!node || this.removed.has(id)) continue;
      this.boot(node);
      this.checker.onRestart(id);
    }
  }

  private partition(ids: NodeId[]): void {
    const r = this.faultRng;
    this.net.heal();
    const kind = r.nextInt(5);
    if (kind === 4) {
      // Isolate the leader: the majority elects another while the old one may still believe it leads.
      const lead = this.leader()?.id ?? r.pick(ids);
      for (const b of ids) if (lead && b !== lead) this.cutBoth(lead, b);
    } else if (kind === 0) {
      // Random halves.
      const side = new Set(ids.filter(() => r.chance(0.5)));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.net.cut(a, b);
    } else if (kind === 1) {
      // Isolate one node.
      const x = r.pick(ids);
      for (const b of ids) if (x && b !== x) this.cutBoth(x, b);
    } else if (kind === 2) {
      // One-way cuts: some directed links fail.
      for (const a of ids) for (const b of ids) if (a !== b && r.chance(0.3)) this.net.cut(a, b);
    } else {
      // Bridge: two halves that see one node in the middle, which sees both.
      const shuffled = [...ids].sort(() => r.next() - 0.5);
      const bridge = shuffled[0];
      const half = new Set(shuffled.slice(1, 1 + Math.floor((shuffled.length - 1) / 2)));
      for (const a of ids) {
        for (const b of ids) {
          if (a === bridge || b === bridge || a === b) continue;
          if (half.has(a) !== half.has(b)) this.net.cut(a, b);
        }
      }
    }
  }

  private cutBoth(a: NodeId, b: NodeId): void {
    this.net.cut(a, b);
    this.net.cut(b, a);
    // Some network failures reset the connection (both ends see it close), most are silent.
    if (this.disconnectRng.chance(CUT_NOTICE_RATE)) {
      this.noteDisconnect(a, b);
      this.noteDisconnect(b, a);
    }
  }

  /** noteDisconnect tells `to`, after the network's delay, that its connection from `peer` ended. */
  private noteDisconnect(to: NodeId, peer: NodeId): void {
    this.disconnects.push({ at: this.now + this.disconnectRng.nextInt(this.net.faults.delayTicksMax + 1), to, peer });
  }

  /**
   * deliverDisconnects hands the notices due now to their nodes (a paused node gets its notices
   * when it resumes; a dead one never). In the fault phase it also makes spurious ones: a
   * connection that resets while both ends live, which must cost nothing but an ignored pre-vote.
   */
  private deliverDisconnects(): void {
    if (this.healedAt < 0 && this.disconnectRng.chance(SPURIOUS_NOTICE_RATE)) {
      const ids = [...this.nodes.keys()];
      const to = this.disconnectRng.pick(ids);
      const peer = this.disconnectRng.pick(ids.filter((id) => id !== to));
      if (to && peer) this.noteDisconnect(to, peer);
    }
    if (this.disconnects.length === 0) return;
    const later: typeof this.disconnects = [];
    for (const d of this.disconnects) {
      const node = this.nodes.get(d.to);
      if (d.at > this.now || (node?.alive && node.pausedUntil > this.now)) later.push(d);
      else if (node?.alive) {
        const st = node.node.status();
        if (st.role === Role.Follower && st.lead === d.peer) this.stats.leaderDisconnects++;
        node.node.peerDisconnected(d.peer);
      }
    }
    this.disconnects = later;
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.live()) {
      const s = n.node.status();
      if (s.role === Role.Leader && (!best || s.term > best.node.status().term)) best = n;
    }
    return best;
  }

  private transfer(): void {
    const leader = this.leader();
    if (!leader) return;
    const target = this.faultRng.pick(leader.node.status().voters.filter((v) => v !== leader.id));
    if (!target) return;
    try {
      leader.node.transferLeadership(target);
      this.stats.transfers++;
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
    }
  }

  private changeMembership(): void {
    const leader = this.leader();
    if (!leader) return;
    const cc = this.pickConfChange(leader.node.status(), this.faultRng);
    if (!cc) return;
    const fresh = this.isNewNode(cc);
    const index = this.proposeConf(leader, cc);
    if (index === undefined) {
      // A refused addition still uses up its name, as it always has, so seeds replay as before.
      if (fresh) this.nextNodeNum++;
      return;
    }
    // Probe: a second change while the first is uncommitted (a lone voter commits it at once),
    // which the core must refuse.
    if (leader.node.status().commit < index) this.probeConf(leader);
    // Now and then the leader is cut off while its change is uncommitted: the next leader lacks
    // the change, and both configurations may be in use (the window the term-commit guard covers).
    if (leader.node.status().commit < index && this.confRng.chance(CONF_ISOLATE_RATE)) {
      for (const n of this.nodes.values()) if (n.id !== leader.id) this.cutBoth(leader.id, n.id);
    }
  }

  /**
   * probeNewLeader proposes a change on a new leader that has not yet committed an entry of its
   * term, which the core must refuse: that change could be in use at the same time as a deposed
   * leader's uncommitted one.
   */
  private probeNewLeader(): void {
    const leader = this.leader();
    if (!leader) return;
    const st = leader.node.status();
    if (st.term <= this.probedTerm) return;
    this.probedTerm = st.term;
    // Only while the term's first commit is pending (a compacted commit index is skipped: unknown term).
    if (leader.node.logEntry(st.commit)?.term === st.term || leader.node.logEntry(st.commit) === undefined) return;
    this.probeConf(leader);
  }

  /** probeConf proposes one more change drawn from confRng; only a broken core accepts it. */
  private probeConf(leader: SimNode): void {
    if (!this.cfg.membership || this.profile.weights.membership === 0) return;
    const cc = this.pickConfChange(leader.node.status(), this.confRng);
    if (cc) this.proposeConf(leader, cc);
  }

  /** pickConfChange draws one single-server change to a configuration, or undefined when the draw fits none. */
  private pickConfChange(st: Status, r: Rng): ConfChange | undefined {
    const roll = r.nextInt(4);
    if (roll === 0 && st.voters.length + st.learners.length < 9) {
      return { type: ConfChangeType.AddLearner, node: nodeId(`n${this.nextNodeNum}`) };
    }
    let id: NodeId | undefined;
    if (roll === 1 && st.learners.length > 0) id = r.pick(st.learners);
    else if ((roll === 2 || roll === 3) && st.voters.length > 1) id = r.pick(st.voters);
    if (!id) return undefined;
    const type = roll === 1 ? ConfChangeType.AddVoter : roll === 2 ? ConfChangeType.Remove : ConfChangeType.AddLearner;
    return { type, node: id };
  }

  private isNewNode(cc: ConfChange): boolean {
    return cc.type === ConfChangeType.AddLearner && !this.nodes.has(cc.node);
  }

  /**
   * proposeConf proposes cc through the leader's RaftNode (with the configured bug, if any) and
   * returns the index of the change; undefined when the core refuses it.
   */
  private proposeConf(leader: SimNode, cc: ConfChange): LogIndex | undefined {
    const fresh = this.isNewNode(cc);
    const propose = () => leader.node.proposeConfChange(cc);
    try {
      const p = this.cfg.unsafeConf ? proposeConfChangeUnsafe(leader.node, propose, this.cfg.unsafeConf) : propose();
      p.catch(() => {});
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
      return undefined;
    }
    if (fresh) {
      this.nextNodeNum++;
      this.addNode(cc.node);
    }
    this.stats.confChanges++;
    // The change was appended to the leader's log just now: it is the last entry.
    return leader.node.status().lastIndex;
  }

  /** stopRemoved stops every live node that applied its own removal and no longer leads. */
  private stopRemoved(): void {
    for (const n of this.live()) this.maybeStopRemoved(n);
  }

  /**
   * maybeStopRemoved shuts a node down once it has applied its own removal and no longer leads, as
   * an operator would: a removed leader first hands leadership to a remaining voter.
   */
  private maybeStopRemoved(node: SimNode): void {
    if (node.appliedConf.has(node.id)) {
      // A joining node is not a member until it applies its own addition; only a node that was one can be removed.
      node.memberAt = Math.max(node.memberAt, node.sm.applied);
      return;
    }
    // Removed means a configuration applied after one that included this node excludes it: a node
    // replaying its log after a restart holds, for a while, the configuration from before it joined.
    if (node.memberAt < 0 || node.sm.applied <= node.memberAt || node.node.isLeader()) return;
    this.removed.add(node.id);
    node.crash();
    this.crashedUntil.delete(node.id);
  }

  // ------------------------------------------------------------ heal and checks

  /** heal ends the fault phase: the network is repaired and every member restarts. */
  heal(): void {
    this.healedAt = this.now;
    this.livenessBound = this.cfg.livenessTicksMax + this.backlogAllowanceTicks();
    this.net.heal();
    this.net.faults = { dropRate: 0, duplicateRate: 0, delayTicksMax: this.net.faults.delayTicksMax };
    this.slowDiskRate = 0;
    for (const n of this.nodes.values()) {
      n.skipTickRate = 0;
      n.pausedUntil = 0;
    }
    for (const n of this.nodes.values()) {
      if (!n.alive && !this.removed.has(n.id)) this.crashedUntil.set(n.id, this.now);
    }
    this.restartDue();
  }

  private check(): void {
    const confs: ConfView[] = [];
    for (const n of this.nodes.values()) {
      if (!n.alive) continue;
      const s = n.node.status();
      const view = n.logView(s);
      // Paused nodes count for membership: they hold their configuration and act on it when they resume.
      confs.push({ log: view, voters: s.voters });
      if (n.pausedUntil > this.now) continue;
      if (s.role === Role.Leader) {
        this.checker.onLeader(s.term, n.id, view);
        if (s.term > this.lastLeaderTerm) {
          this.lastLeaderTerm = s.term;
          this.stats.elections++;
        }
      }
      this.checker.onCommitView(view);
    }
    this.checker.onConfigurations(confs);
  }

  private lastLeaderTerm = 0;
  /** livenessBound is set at heal: the ticks within which a write must be acknowledged. */
  private livenessBound = 0;

  /**
   * backlogAllowanceTicks: when appends carry one entry, a new leader must ship its uncommitted
   * backlog one round trip per entry before its own no-op commits, so the bound grows with it.
   */
  private backlogAllowanceTicks(): number {
    if (this.profile.messageBytesMax > 1) return 0;
    const members = [...this.nodes.values()].filter((n) => !this.removed.has(n.id));
    const last = Math.max(...members.map((n) => n.node.status().lastIndex));
    const commit = Math.min(...members.map((n) => n.node.status().commit));
    return Math.max(0, last - commit) * 2 * (this.net.faults.delayTicksMax + 1);
  }
}

/** drain lets every host loop run until it waits on a timer, a write or a message: the microtask queue empties before a macrotask runs. */
function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** traceHash folds one message's kind, ends, term, indexes and entry count into a running 32-bit FNV-1a hash. */
function traceHash(prev: number, m: Message): number {
  let h = prev ^ 0x811c9dc5;
  const mix = (v: number) => {
    h = Math.imul(h ^ v, 0x01000193);
  };
  for (const text of [m.type, m.from, m.to]) for (let i = 0; i < text.length; i++) mix(text.charCodeAt(i));
  mix(m.term);
  mix(m.index);
  mix(m.commit);
  mix(m.entries.length);
  mix(m.reject ? 1 : 0);
  return h >>> 0;
}

/** runSeed runs one seed with the given settings. */
export function runSeed(config: SimConfig): Promise<SimResult> {
  return new Simulation(config).run();
}
