import {
  bootstrapEntries,
  type ConfChange,
  ConfChangeType,
  Membership,
  decodeConfChange,
  EntryKind,
  type LogIndex,
  type NodeId,
  nodeId,
  type ProposalRef,
  RaftError,
  type RaftOptions,
  type Ready,
  type Message,
  splitForEarlySend,
  Role,
  type Status,
  type UnsafeSwitches,
} from "../../src/raft/index.js";
import { type ConfView, SafetyChecker, SafetyViolation } from "./checker.js";
import { encodeWrite } from "./kv-machine.js";
import { MemoryStorage } from "./memory-storage.js";
import { SimNetwork } from "./network.js";
import { type FaultProfile, pickProfile } from "./profiles.js";
import { Rng } from "./rng.js";
import { RegistrySimMachine } from "./registry-machine.js";
import { RegistryWorkload } from "./registry-workload.js";
import type { MachineKind } from "./sim-machine.js";
import { SimNode } from "./sim-node.js";
import { proposeConfChangeUnsafe, type UnsafeConfVariant } from "./unsafe-conf.js";

/** REGISTRY_T0_MS and REGISTRY_TICK_MS turn ticks into the wall time leaders stamp on registry commands. */
const REGISTRY_T0_MS = 1_700_000_000_000;
const REGISTRY_TICK_MS = 100;

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
  /** readsRefused counts reads a node was told it will never get (limit, expiry, leader gone). */
  readsRefused: number;
  crashes: number;
  confChanges: number;
  transfers: number;
  snapshotsSent: number;
  /** confSplits counts the ticks at which nodes holding every committed entry used different configurations. */
  confSplits: number;
  /** healToWriteTicks is the liveness figure: ticks from heal to the first acknowledged write. */
  healToWriteTicks: number;
  messages: number;
  /** registry is set for machine "registry". */
  registry?: RegistryTally;
}

interface PendingWrite {
  node: NodeId;
  proposedAt: number;
  index: LogIndex;
  term: number;
}

interface PendingRead {
  node: NodeId;
  ackedBeforeStart: LogIndex;
}

const NODE_COUNTS = [1, 3, 3, 3, 5, 5, 5, 7];

/**
 * CONF_ISOLATE_RATE is the share of membership changes after which the leader is cut off at once.
 * Otherwise a leader rarely loses its term in the few ticks a change is uncommitted, and a core
 * that lets the next leader change membership before committing in its term went unnoticed in
 * 500 seeds; at a quarter it is caught within a few hundred.
 */
const CONF_ISOLATE_RATE = 0.25;

/**
 * Simulation runs the real Raft core on N simulated hosts over a faulty network, with crashes,
 * restarts, slow disks, clock skew, membership changes, transfers, client writes and reads,
 * checking Raft's safety properties after every tick and liveness after the faults stop.
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
  private probedTerm = 0;
  readonly net: SimNetwork;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly checker = new SafetyChecker();
  readonly cfg: Required<Omit<SimConfig, "unsafe" | "unsafeConf">> & { unsafe: UnsafeSwitches; unsafeConf?: UnsafeConfVariant };
  now = 0;
  private nextNodeNum: number;
  private writes = new Map<string, PendingWrite>();
  private reads = new Map<string, PendingRead>();
  private readSeq = 0;
  private writeSeq = 0;
  private ackedMax: LogIndex = 0;
  private healedAt = -1;
  private firstAckAfterHeal = -1;
  private crashedUntil = new Map<NodeId, number>();
  private removed = new Set<NodeId>();

  private readonly workload: RegistryWorkload | undefined;
  private registryTally: RegistryTally = { commands: 0, ok: 0, duplicates: 0, failed: {} };
  private talliedIndex: LogIndex = 0;
  private stats = { elections: 0, writesAcked: 0, readsDone: 0, readsRefused: 0, crashes: 0, confChanges: 0, transfers: 0, snapshotsSent: 0 };
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
      snapshotEvery: config.snapshotEvery ?? 5 + this.rng.nextInt(60),
      machine: config.machine ?? "kv",
    };
    // The workload has its own generator, derived from the seed without drawing from this.rng,
    // so the kv machine's runs are unchanged by the registry option.
    if (this.cfg.machine === "registry") this.workload = new RegistryWorkload(new Rng((config.seed ^ 0x5eed_1e57) >>> 0));
    this.confRng = new Rng((config.seed ^ 0xc0f1_9e57) >>> 0);
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
    for (const id of ids) {
      const storage = new MemoryStorage({ hardState: { term: 1, vote: "" as NodeId, commit: boot.length }, entries: boot });
      this.addNode(id, storage);
    }
  }

  private addNode(id: NodeId, storage: MemoryStorage): SimNode {
    const nodeRng = this.rng.fork();
    const makeOptions = (): RaftOptions => ({
      id,
      electionTick: this.cfg.electionTick,
      heartbeatTick: this.cfg.heartbeatTick,
      random: nodeRng,
      unsafe: this.cfg.unsafe,
      // A pending-read limit of 1-4 makes leaders refuse reads, forwarded ones too, under every
      // fault. It comes from the seed without drawing from the generator (the refusals it causes are
      // messages, though, so a seed's schedule differs from before once one happens).
      pendingReadsMax: 1 + (this.cfg.seed % 4),
      inflightMessagesMax: this.profile.inflightMessagesMax,
      messageBytesMax: this.profile.messageBytesMax,
      snapshotKeepEntries: this.rng.nextInt(3) * 5,
    });
    const node = new SimNode(id, storage, makeOptions, this.cfg.machine);
    node.skipTickRate = this.rng.chance(0.5) ? this.rng.next() * 0.15 : 0;
    this.nodes.set(id, node);
    return node;
  }

  /** run executes the whole schedule and reports; a safety violation ends it early. */
  run(): SimResult {
    try {
      for (this.now = 0; this.healedAt < 0 || this.now < this.healedAt + this.livenessBound; this.now++) {
        if (this.now === this.cfg.faultTicks) this.heal();
        this.step();
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
      ...(this.workload ? { registry: this.registryTally } : {}),
    };
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
        const s = n.raw.status();
        return `${n.id}:${n.alive ? s.role : "down"} t${s.term} c${s.commit} a${s.applied} v[${s.voters.join(",")}]`;
      })
      .join(" ");
  }

  /** step runs one tick: faults, clients, deliveries, clocks, finished disk writes, checks. */
  step(): void {
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
      node.raw.step(m);
      this.process(node);
    }
    for (const node of this.live()) {
      if (!this.clientRng.chance(node.skipTickRate)) node.raw.tick();
      this.process(node);
    }
    this.check();
    if (this.healedAt < 0) this.probeNewLeader();
  }

  private live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive && n.pausedUntil <= this.now);
  }

  // ------------------------------------------------------------ host loop

  /** process runs the host loop of one node: take ready, persist (maybe slowly), send, apply, advance. */
  private process(node: SimNode): void {
    for (let guard = 0; guard < 100; guard++) {
      if (node.held) {
        if (node.held.until > this.now) return;
        const { rd, late, applied } = node.held;
        node.held = undefined;
        if (!applied) this.applyReady(node, rd);
        this.completeReady(node, rd, late);
        continue;
      }
      if (!node.raw.hasReady()) return;
      const rd = node.raw.ready();
      // As the real host does: a leader's appends at a durable term leave before its own write.
      const { early, late } = splitForEarlySend(rd, node.storage.hardState.term);
      for (const m of early) this.send(m);
      // As the real host does: committed entries are applied while the write is under way,
      // except a snapshot from the leader, which is installed once durable.
      const applyNow = rd.snapshot === undefined;
      if (applyNow) this.applyReady(node, rd);
      if (this.faultRng.chance(this.slowDiskRate)) {
        node.held = { rd, late, applied: applyNow, until: this.now + 1 + this.faultRng.nextInt(3) };
        return;
      }
      if (!applyNow) this.applyReady(node, rd);
      this.completeReady(node, rd, late);
    }
    throw new Error(`${node.id}: host loop did not settle`);
  }

  /** applyReady installs a ready's snapshot and applies its committed entries. */
  private applyReady(node: SimNode, rd: Ready): void {
    if (rd.snapshot) {
      node.appliedConf = new Membership(rd.snapshot.meta.conf);
      node.sm.restore(rd.snapshot.data);
      node.lastSnapshotIndex = rd.snapshot.meta.index;
      this.checker.onApplied(node.id, node.sm.applied, node.sm.chain);
    }
    for (const e of rd.committedEntries) {
      if (e.kind === EntryKind.ConfChange && e.index > node.sm.applied) this.checkConfStep(node, e.data);
      if (e.index <= node.sm.applied) continue;
      node.sm.apply(e);
      if (this.workload) this.tallyRegistry(node, e.index);
      this.checker.onApplied(node.id, e.index, node.sm.chain);
      this.resolveWrite(node, e.index, e.term);
    }
    node.readStates.push(...rd.readStates);
    for (const rr of rd.readRejects) {
      const ctx = new TextDecoder().decode(rr.context);
      if (this.reads.get(ctx)?.node !== node.id) continue;
      this.reads.delete(ctx);
      this.stats.readsRefused++;
    }
    this.serveReads(node);
  }

  /** completeReady runs once the ready's write is durable: the remaining messages, then advance. */
  private completeReady(node: SimNode, rd: Ready, late: readonly Message[]): void {
    node.storage.save(rd);
    for (const m of late) {
      if (m.type === "snap") this.stats.snapshotsSent++;
      this.send(m);
    }
    node.raw.advance(rd);
    this.maybeStopRemoved(node);
    this.serveReads(node);
    this.maybeSnapshot(node);
  }

  private send(m: Message): void {
    this.checker.onSend(m);
    this.net.send(m, this.now + 1);
  }

  private maybeSnapshot(node: SimNode): void {
    const applied = node.raw.status().applied;
    if (applied - node.lastSnapshotIndex < this.cfg.snapshotEvery || node.sm.applied !== applied) return;
    const snap = node.raw.compact(applied, node.sm.snapshot());
    node.storage.compact(snap);
    node.lastSnapshotIndex = applied;
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
    const lead = via.raw.status().lead;
    const node = lead === via.id ? via : this.nodes.get(lead);
    if (!node?.alive) return;
    try {
      const [ref] = node.raw.propose([this.writeData(node)]);
      if (ref) this.writes.set(`${node.id}/${ref.index}`, { node: node.id, proposedAt: this.now, index: ref.index, term: ref.term });
      this.process(node);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
    }
  }

  /** writeData is a client write's entry data: a key=value pair, or a registry command stamped with the leader's clock. */
  private writeData(leader: SimNode): Uint8Array {
    if (!this.workload) return encodeWrite(`k${this.clientRng.nextInt(5)}`, `v${this.writeSeq++}`);
    // Each node's wall clock is off by -1.5, 0 or +1.5 s, so stamped time can go back when leadership moves.
    const skewMs = ((Number(leader.id.slice(1)) % 3) - 1) * 1_500;
    return this.workload.next(REGISTRY_T0_MS + this.now * REGISTRY_TICK_MS + skewMs);
  }

  private resolveWrite(node: SimNode, index: LogIndex, term: number): void {
    const key = `${node.id}/${index}`;
    const w = this.writes.get(key);
    if (!w) return;
    this.writes.delete(key);
    if (w.term !== term) return;
    this.stats.writesAcked++;
    this.ackedMax = Math.max(this.ackedMax, index);
    if (this.healedAt >= 0 && this.firstAckAfterHeal < 0 && w.proposedAt >= this.healedAt) {
      this.firstAckAfterHeal = this.now;
    }
  }

  private startRead(node: SimNode | undefined): void {
    if (!node) return;
    const ctx = `r${this.readSeq++}`;
    try {
      node.raw.readIndex(new TextEncoder().encode(ctx));
      this.reads.set(ctx, { node: node.id, ackedBeforeStart: this.ackedMax });
      this.process(node);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
    }
  }

  private serveReads(node: SimNode): void {
    const waiting = [];
    for (const rs of node.readStates) {
      if (rs.index > node.sm.applied) {
        waiting.push(rs);
        continue;
      }
      const ctx = new TextDecoder().decode(rs.context);
      const read = this.reads.get(ctx);
      if (!read || read.node !== node.id) continue;
      this.reads.delete(ctx);
      this.checker.onRead(node.id, rs.index, read.ackedBeforeStart);
      this.stats.readsDone++;
    }
    node.readStates = waiting;
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
    const downTicksMax = this.profile.downTicksMax;
    this.crashedUntil.set(node.id, this.now + 1 + this.faultRng.nextInt(downTicksMax));
    for (const [k, w] of this.writes) if (w.node === node.id) this.writes.delete(k);
  }

  private restartDue(): void {
    for (const [id, until] of this.crashedUntil) {
      if (until > this.now && this.healedAt < 0) continue;
      this.crashedUntil.delete(id);
      const node = this.nodes.get(id);
      if (!node || this.removed.has(id)) continue;
      node.restart();
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
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.live()) {
      const s = n.raw.status();
      if (s.role === Role.Leader && (!best || s.term > best.raw.status().term)) best = n;
    }
    return best;
  }

  private transfer(): void {
    const leader = this.leader();
    if (!leader) return;
    const target = this.faultRng.pick(leader.raw.status().voters.filter((v) => v !== leader.id));
    if (!target) return;
    try {
      leader.raw.transferLeadership(target);
      this.stats.transfers++;
      this.process(leader);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
    }
  }

  private changeMembership(): void {
    const leader = this.leader();
    if (!leader) return;
    const cc = this.pickConfChange(leader.raw.status(), this.faultRng);
    if (!cc) return;
    const fresh = this.isNewNode(cc);
    const ref = this.proposeConf(leader, cc);
    if (!ref) {
      // A refused addition still uses up its name, as it always has, so seeds replay as before.
      if (fresh) this.nextNodeNum++;
      return;
    }
    // Probe: a second change while the first is uncommitted (a lone voter commits it at once),
    // which the core must refuse.
    if (leader.raw.status().commit < ref.index) this.probeConf(leader);
    // Now and then the leader is cut off while its change is uncommitted: the next leader lacks
    // the change, and both configurations may be in use (the window the term-commit guard covers).
    if (leader.raw.status().commit < ref.index && this.confRng.chance(CONF_ISOLATE_RATE)) {
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
    const st = leader.raw.status();
    if (st.term <= this.probedTerm) return;
    this.probedTerm = st.term;
    // Only while the term's first commit is pending (a compacted commit index is skipped: unknown term).
    if (leader.raw.logEntry(st.commit)?.term === st.term || leader.raw.logEntry(st.commit) === undefined) return;
    this.probeConf(leader);
  }

  /** probeConf proposes one more change drawn from confRng; only a broken core accepts it. */
  private probeConf(leader: SimNode): void {
    if (!this.cfg.membership || this.profile.weights.membership === 0) return;
    const cc = this.pickConfChange(leader.raw.status(), this.confRng);
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

  /** proposeConf proposes cc on the leader (with the configured bug, if any); undefined when the core refuses it. */
  private proposeConf(leader: SimNode, cc: ConfChange): ProposalRef | undefined {
    const fresh = this.isNewNode(cc);
    let ref: ProposalRef;
    try {
      if (this.cfg.unsafeConf) ref = proposeConfChangeUnsafe(leader.raw, cc, this.cfg.unsafeConf);
      else ref = leader.raw.proposeConfChange(cc);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
      return undefined;
    }
    if (fresh) {
      this.nextNodeNum++;
      this.addNode(cc.node, new MemoryStorage());
    }
    this.stats.confChanges++;
    this.process(leader);
    return ref;
  }

  /** checkConfStep follows the configuration of the entries a node applied (see maybeStopRemoved). */
  private checkConfStep(node: SimNode, data: Uint8Array): void {
    node.appliedConf.apply(decodeConfChange(data));
  }

  /**
   * maybeStopRemoved shuts a node down once it has applied its own removal and no longer leads, as
   * an operator would: a removed leader first hands leadership to a remaining voter.
   */
  private maybeStopRemoved(node: SimNode): void {
    const st = node.raw.status();
    if (node.appliedConf.has(node.id)) {
      // A joining node is not a member until it applies its own addition; only a node that was one can be removed.
      node.wasMember = true;
      return;
    }
    if (!node.wasMember || st.role === Role.Leader) return;
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
      const s = n.raw.status();
      const view = n.logView();
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
    const last = Math.max(...members.map((n) => n.raw.status().lastIndex));
    const commit = Math.min(...members.map((n) => n.raw.status().commit));
    return Math.max(0, last - commit) * 2 * (this.net.faults.delayTicksMax + 1);
  }
}

/** runSeed runs one seed with the given settings. */
export function runSeed(config: SimConfig): SimResult {
  return new Simulation(config).run();
}
