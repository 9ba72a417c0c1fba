import { performance } from "node:perf_hooks";
import type { Logger } from "../common/logger.js";
import type { HeartbeatRequestMsg, RenewResultMsg } from "../common/messages.js";
import { LEASE_RETRY_MS, LeaseTracker } from "./lease-tracker.js";
import { TTL_MS_RANGE } from "./limits.js";
import type { HealthChange, Instance, InstanceRole, MasterState, PositionReport, RegistryCommand, RegistryEvent } from "./types.js";
import type { OkResult } from "./writer.js";

/** LEASE_CHECK_MS: how often the leader looks for expired leases; expiry is noticed at most this late. */
export const LEASE_CHECK_MS = 100;

/**
 * LEASE_CONFIRM_MS bounds the wait for a quorum to confirm this node's leadership before a batch of
 * heartbeats is acknowledged. A confirmation is one heartbeat round trip (milliseconds), or a new
 * leader's first commit plus one round; 1 s is far above both, yet below a follower's wait for the
 * batch (HEARTBEAT_WAIT_MS, 3 s), so a deposed leader's silence reaches the instance as a clear
 * "not recorded" rather than as the follower's deadline.
 */
export const LEASE_CONFIRM_MS = 1_000;

/** POSITIONS_PER_ENTRY_MAX bounds the replication positions one entry carries (validatePositions refuses more than HEALTH_CHANGES_MAX). */
export const POSITIONS_PER_ENTRY_MAX = 10_000;

/**
 * MASTER_PROCESSES_TRACKED_MAX bounds the process tokens a master's answers are kept under. One
 * master instance has one process at a time (two while an orphan of a killed supervisor lives on);
 * past 8 the answers are folded under "no token", which no exit report lifts (safe, only slower).
 */
export const MASTER_PROCESSES_TRACKED_MAX = 8;

/** EXITED_PROCESSES_MAX bounds the exit reports kept per master (a crash loop stops restarting long before). */
export const EXITED_PROCESSES_MAX = 8;

/** MasterClaim is what an answer's heartbeat said: the epoch it acts as master of, its TTL, and the process it speaks for. */
interface MasterClaim {
  readonly masterEpoch: number;
  readonly ttlMs: number;
  readonly processToken: string;
}

/**
 * MasterAcks are the "master" answers this leader gave one master instance: until when, in all and
 * per process token ("" for heartbeats that named none), and the tokens whose process a supervisor
 * reported exited. Invariant: until = the largest until recorded.
 */
interface MasterAcks {
  readonly id: string;
  until: number;
  readonly byProcess: Map<string, number>;
  readonly exited: Set<string>;
}

function newMasterAcks(id: string, until: number, token: string): MasterAcks {
  return { id, until, byProcess: new Map([[token, until]]), exited: new Set() };
}

function recordMasterAck(acks: MasterAcks, until: number, token: string): void {
  acks.until = Math.max(acks.until, until);
  // An exited process cannot act on this answer (its heartbeat was sent before it died).
  if (acks.exited.has(token)) return;
  acks.byProcess.set(token, Math.max(acks.byProcess.get(token) ?? 0, until));
  if (acks.byProcess.size > MASTER_PROCESSES_TRACKED_MAX) {
    let most = 0;
    for (const u of acks.byProcess.values()) most = Math.max(most, u);
    acks.byProcess.clear();
    acks.byProcess.set("", most);
  }
}

/**
 * fenceOf is until when a new master must wait for the previous master `acks` named: the end of
 * every lease this leader gave it (acks.until), unless a supervisor reported some of its processes
 * exited. Then the smallest correct rule: the answers given to exited processes are dropped (a dead
 * process acts on nothing: its supervisor saw it exit and killed its process group before sending
 * the report), every other answer still counts (another process of the same instance — an orphan
 * of a killed supervisor, a second copy, a heartbeat that named no process — may still act as
 * master), and so does electedFenceUntil (an earlier leader's answers to processes this leader
 * never heard from). The report names the process by a token only its supervisor and the process
 * itself know, so a critical report about one process never lifts the fence of another.
 */
function fenceOf(acks: MasterAcks, electedFenceUntil: number): number {
  if (acks.exited.size === 0) return acks.until;
  let until = electedFenceUntil;
  for (const [token, u] of acks.byProcess) if (!acks.exited.has(token)) until = Math.max(until, u);
  return until;
}

/** LeaseRegistry is what the driver reads from the applied registry (the failover reads are optional for registries without master-slave services). */
export interface LeaseRegistry {
  /** eachInstance yields every applied instance, in any order. */
  eachInstance(): Iterable<Instance>;
  instance(service: string, id: string): Instance | undefined;
  /** instances lists a service's instances (for the positions of its master-slave standbys). */
  instances?(service: string): Instance[];
  /** getService gives a service's config (its mode). */
  getService?(name: string): { readonly service: { readonly config: { readonly mode: string } } } | undefined;
  roleOf?(service: string, id: string): InstanceRole;
  masterOf?(service: string): MasterState;
  /** failbacksDue lists the fail-backs the leader should propose at cluster time `now`. */
  failbacksDue?(now: number): { service: string; to: string }[];
}

/** LeaseLeadership is how the driver confirms that this node still leads (RaftNode satisfies it). */
export interface LeaseLeadership {
  /** isLeader says whether this node's Raft core leads right now. */
  isLeader(): boolean;
  /**
   * readIndex resolves once a quorum has answered a heartbeat round this leader started after the
   * call (ReadIndex), and rejects when that does not happen within timeoutMs. On a node that does not
   * lead it asks the leader instead, which confirms nothing about this node: call it only after
   * isLeader() said true, in the same synchronous step.
   */
  readIndex(timeoutMs: number): Promise<unknown>;
}

/** LeaseDriverOptions wire the driver to the node. */
export interface LeaseDriverOptions {
  readonly registry: LeaseRegistry;
  /** propose replicates a registry command on this (leading) node and resolves once applied (a RegistryWriter with a deadline). */
  readonly propose: (cmd: RegistryCommand) => Promise<OkResult>;
  readonly logger: Pick<Logger, "debug" | "warn">;
  /** leadership confirms, for every batch of heartbeats, that this node still leads before any is acknowledged. */
  readonly leadership: LeaseLeadership;
  /** clusterNow is the cluster time this leader stamps with (reaps compare it with replicated healthSince). */
  readonly clusterNow: () => number;
  /**
   * monoMs is the monotonic clock lease deadlines are counted on (default performance.now). Only
   * the fast-lease-clock negative control passes another one.
   */
  readonly monoMs?: () => number;
  /**
   * timer runs the expiry check every LEASE_CHECK_MS (default Node's setInterval). The simulator
   * passes its virtual-time scheduler so leases expire on the same clock as the rest of a seeded run.
   */
  readonly timer?: LeaseTimer;
  /**
   * unsafeSkipMasterFence answers "master" to a newly promoted master at once, without waiting for
   * the previous master's leases to run out. Only the simulator's negative control sets it: it must
   * be caught as two masters at once.
   */
  readonly unsafeSkipMasterFence?: boolean;
  /** takeoverSliceLeases is how many leases a takeover seeds per timer turn (default TAKEOVER_SLICE_LEASES; the simulator uses a few, so its small registries take several slices). */
  readonly takeoverSliceLeases?: number;
}

/**
 * LeaseTimer is the timers the driver needs (node's HostScheduler satisfies it); the returned
 * functions cancel. Without `after`, a takeover seeds every lease in one go.
 */
export interface LeaseTimer {
  every(ms: number, fn: () => void): () => void;
  after?(ms: number, fn: () => void): () => void;
}

/** NODE_LEASE_TIMER is Node's setInterval and setTimeout. */
const NODE_LEASE_TIMER: LeaseTimer = {
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

/**
 * TAKEOVER_SLICE_LEASES is how many leases a new leader seeds per event-loop turn (~0.7 µs each
 * with 100,000 instances: ~3.5 ms a slice, 20 slices), so the takeover never holds the loop while
 * the leader's first entries wait to commit.
 */
export const TAKEOVER_SLICE_LEASES = 5_000;

/**
 * LeaseDriver runs heartbeat leases on the leader: it seeds the LeaseTracker when this node
 * becomes leader (every lease gets a full TTL), keeps it in step with applied events, renews
 * leases in memory on heartbeats, and proposes the health changes the tracker asks for: expiries
 * every LEASE_CHECK_MS, status changes a heartbeat reports, and reaps of long-critical instances.
 * Renewals never become log entries; only changes of health do.
 *
 * A heartbeat is acknowledged only after a quorum confirmed, in a ReadIndex round started after the
 * heartbeat arrived, that this node still leads. Without that, a leader cut off from its peers keeps
 * acknowledging until its check-quorum notices (up to two election timeouts), while a new leader,
 * which gives every lease a full TTL from its own election, may expire the instance before the TTL
 * of such an acknowledgement ends. With it, an acknowledgement means this node led at some moment
 * after it received the heartbeat; any later leader was elected after that moment (its voters
 * include one that answered the round), so its full TTL from election covers the TTL from receipt.
 * We chose this over etcd's way (the new leader extends every lease by the longest possible
 * overlap) because that bound is a timing assumption a paused process breaks (a leader resumed
 * from SIGSTOP answers before its check-quorum runs) and because it delays every failover by the
 * overlap; confirmation costs one quorum round trip per batch (reads and heartbeats that arrive
 * together share it) and no log entry, and lets failover promote at TTL after the last
 * acknowledged heartbeat reached the leader.
 */
export class LeaseDriver {
  private readonly tracker = new LeaseTracker();
  private cancelTimer: (() => void) | undefined;
  /**
   * positions: the latest replication position each instance reported in a heartbeat to this
   * leader (key service\0id). They reach the log only with the entries that can choose a master —
   * the health.set entries this driver proposes (an expiry or a reported critical of a master) and
   * switchovers and fail-backs — not with every heartbeat: positions of a busy database move on
   * every heartbeat, and logging them would turn heartbeat traffic into Raft traffic, which leases
   * exist to avoid. Sound because a promotion reads positions only in such an entry, and this
   * leader attaches every position it holds for the service's instances to it. A new leader holds
   * none until the instances heartbeat again (every TTL/3), before any lease it tracks can expire
   * (it gives each a full TTL from its election).
   */
  private readonly positions = new Map<string, number>();
  /** failbackPending: services whose fail-back proposal is in flight, until this monotonic time. */
  private readonly failbackPending = new Map<string, number>();

  private readonly mono: () => number;
  /**
   * masterAcks is, per master-slave service, the last "master" answers this leader gave: to whom,
   * and until when (that heartbeat's receipt + its TTL, on this leader's monotonic clock) the
   * instance may go on acting as master without hearing again, in all and per process token (see
   * MasterAcks). The instance counts its own deadline from the heartbeat's send time, which came
   * first, minus a margin.
   */
  private readonly masterAcks = new Map<string, MasterAcks>();
  /**
   * electedFenceUntil: until when an instance told "master" by a previous leader may still act on
   * it (this leader's election + the longest TTL then registered). A previous leader acknowledged
   * heartbeats only while a quorum still followed it, so before this leader was elected. Undefined
   * while the takeover seeds (the longest TTL is not known yet): see electedFence.
   */
  private electedFenceUntil: number | undefined = 0;
  /** takeoverAt is when this node last became leader (its monotonic clock). */
  private takeoverAt = 0;
  /** cancelSeeding stops the takeover's next slice. */
  private cancelSeeding: (() => void) | undefined;

  constructor(private readonly opts: LeaseDriverOptions) {
    this.mono = opts.monoMs ?? (() => performance.now());
  }

  start(): void {
    this.cancelTimer = (this.opts.timer ?? NODE_LEASE_TIMER).every(LEASE_CHECK_MS, () => void this.check());
  }

  stop(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.stopSeeding();
    this.tracker.stepDown();
  }

  /** onRole follows this node's leadership. */
  onRole(isLeader: boolean): void {
    if (isLeader && !this.tracker.isLeading) {
      const now = this.mono();
      this.takeoverAt = now;
      this.masterAcks.clear();
      const registry = this.opts.registry;
      this.tracker.beginTakeover(now, registry.eachInstance(), (service, id) => registry.instance(service, id));
      this.electedFenceUntil = undefined;
      this.seedSlice(this.opts.timer ?? NODE_LEASE_TIMER);
    } else if (!isLeader && this.tracker.isLeading) {
      this.stopSeeding();
      this.tracker.stepDown();
      this.positions.clear();
      this.failbackPending.clear();
      this.masterAcks.clear();
    }
  }

  /**
   * seedSlice seeds one slice of the takeover, and files the next on its own turn while some remain
   * (a timer without `after` gets everything in one slice).
   */
  private seedSlice(timer: LeaseTimer): void {
    this.cancelSeeding = undefined;
    const max = timer.after === undefined ? Number.POSITIVE_INFINITY : (this.opts.takeoverSliceLeases ?? TAKEOVER_SLICE_LEASES);
    if (this.tracker.seedSome(max)) {
      this.electedFence();
      return;
    }
    this.cancelSeeding = timer.after?.(0, () => this.seedSlice(timer));
  }

  private stopSeeding(): void {
    this.cancelSeeding?.();
    this.cancelSeeding = undefined;
  }

  /**
   * electedFence is electedFenceUntil, fixed once the takeover has seeded everything (by its last
   * slice, or by due()); before that, no end (a predecessor's master is fenced for now: the longest
   * TTL of the registry is not known yet).
   */
  private electedFence(): number {
    if (this.electedFenceUntil !== undefined) return this.electedFenceUntil;
    if (this.tracker.isSeeding) return Number.POSITIVE_INFINITY;
    this.electedFenceUntil = this.takeoverAt + this.tracker.ttlMax;
    return this.electedFenceUntil;
  }

  /** onEvents keeps the tracker in step with the registry (call after the machine applied them). */
  onEvents(events: readonly RegistryEvent[]): void {
    this.tracker.observe(this.mono(), events);
    for (const e of events) {
      if (e.kind === "instance" && e.type === "delete") this.positions.delete(`${e.service}\u0000${e.id}`);
      if (e.kind === "master") this.failbackPending.delete(e.service);
    }
  }

  /**
   * positionsFor lists the positions this leader heard for the instances of the given master-slave
   * services that differ from the recorded ones (at most POSITIONS_PER_ENTRY_MAX), to ride on an
   * entry that may choose a master.
   */
  positionsFor(services: Iterable<string>): PositionReport[] {
    const reg = this.opts.registry;
    const out: PositionReport[] = [];
    if (!reg.instances || !reg.getService || this.positions.size === 0) return out;
    for (const service of new Set(services)) {
      if (reg.getService(service)?.service.config.mode !== "master-slave") continue;
      for (const inst of reg.instances(service)) {
        const p = this.positions.get(`${service}\u0000${inst.id}`);
        if (p === undefined || p === inst.replicationPosition) continue;
        if (out.length >= POSITIONS_PER_ENTRY_MAX) return out;
        out.push({ service, id: inst.id, position: p });
      }
    }
    return out;
  }

  /** healthSet is a health.set command carrying the positions of the master-slave services it touches. */
  private healthSet(changes: HealthChange[]): RegistryCommand {
    const positions = this.positionsFor(changes.map((c) => c.service));
    return positions.length > 0 ? { op: "health.set", changes, positions } : { op: "health.set", changes };
  }

  /** onReset re-seeds a leading tracker after a snapshot replaced the registry. */
  onReset(): void {
    if (this.tracker.isLeading) this.tracker.becomeLeader(this.mono(), this.opts.registry.eachInstance());
  }

  /** isLeading says whether this node tracks leases now. */
  get isLeading(): boolean {
    return this.tracker.isLeading;
  }

  /**
   * renew handles a batch of heartbeats on the leader: every lease is renewed in memory; the health
   * changes some of them ask for go into one health.set entry, and the answers wait for it and for
   * one leadership confirmation; without the confirmation every renewal answers "unconfirmed" (not
   * acknowledged: the instance must not count on it, and sends it again).
   */
  async renew(items: readonly HeartbeatRequestMsg[]): Promise<RenewResultMsg[]> {
    const now = this.mono();
    const changes: HealthChange[] = [];
    const out: RenewResultMsg[] = [];
    /** caused holds the answers whose own heartbeat asked for a health change. */
    const caused = new Set<RenewResultMsg>();
    /** claims holds, per answer, the epoch its instance said it acts as master of and its lease TTL. */
    const claims = new Map<RenewResultMsg, MasterClaim>();
    for (const it of items) {
      // At receipt: the supervisor saw the process exit before it sent the report.
      if (it.exitedProcess && it.status === "critical") this.processExited(it.service, it.id, it.exitedProcess);
      const status = it.status ? { health: it.status as Instance["health"], note: it.note } : undefined;
      const r = this.tracker.renew(now, it.service, it.id, status);
      if (!r.ok) {
        out.push({ code: r.reason, response: null });
        continue;
      }
      if (it.replicationPosition) this.positions.set(`${it.service}\u0000${it.id}`, it.replicationPosition);
      const answer: RenewResultMsg = { code: "ok", response: { service: it.service, id: it.id, ttlMs: r.ttlMs, health: r.change?.health ?? "", index: 0 } };
      if (r.change) {
        changes.push(r.change);
        caused.add(answer);
      }
      claims.set(answer, { masterEpoch: it.masterEpoch ?? 0, ttlMs: r.ttlMs, processToken: it.processToken ?? "" });
      out.push(answer);
    }
    // Asked now, in the same synchronous step as the renewals: the round starts after every one arrived.
    const confirmed = this.confirm(out.some((r) => r.code === "ok"));
    let index = 0;
    if (changes.length > 0) index = (await this.opts.propose(this.healthSet(changes))).index;
    if (!(await confirmed)) return out.map((r) => (r.code === "ok" ? { code: "unconfirmed", response: null } : r));
    for (const r of out) {
      if (!r.response) continue;
      const inst = this.opts.registry.instance(r.response.service, r.response.id);
      r.response.health = inst?.health ?? r.response.health;
      // Only the heartbeat that asked for the change names its index.
      r.response.index = caused.has(r) ? index : 0;
      // Role and epoch as applied after this batch's change, and after a quorum confirmed this leader.
      const reg = this.opts.registry;
      const role = reg.roleOf?.(r.response.service, r.response.id) ?? "";
      r.response.epoch = role === "" ? 0 : (reg.masterOf?.(r.response.service).epoch ?? 0);
      const claim = claims.get(r) ?? { masterEpoch: 0, ttlMs: 0, processToken: "" };
      r.response.role = role === "master" ? this.masterAnswer(r.response.service, r.response.id, r.response.epoch, claim, now) : role;
    }
    return out;
  }

  /**
   * masterAnswer is what the master of `epoch` is told: "master", or "standby" for as long as the
   * previous master may still act on an earlier "master" answer (a switchover, a deregistered or
   * self-reported critical master: causes that, unlike a lease expiry, do not wait for its lease to
   * run out). An instance that says it already acts as master of this epoch is told "master" at
   * once: it was told so by a leader that had waited. `receivedAt` is when its heartbeat arrived.
   */
  private masterAnswer(service: string, id: string, epoch: number, claim: MasterClaim, receivedAt: number): InstanceRole {
    const prev = this.masterAcks.get(service);
    if (claim.masterEpoch !== epoch) {
      const fenceUntil = prev === undefined ? this.electedFence() : prev.id === id ? 0 : fenceOf(prev, this.electedFence());
      if (this.mono() < fenceUntil && this.opts.unsafeSkipMasterFence !== true) return "standby";
    }
    const until = receivedAt + claim.ttlMs;
    if (prev === undefined || prev.id !== id) this.masterAcks.set(service, newMasterAcks(id, until, claim.processToken));
    else recordMasterAck(prev, until, claim.processToken);
    return "master";
  }

  /**
   * processExited takes a supervisor's report that the process with `token`, which spoke for
   * instance `id`, exited (its process group killed) before the report was sent: the "master"
   * answers this leader gave that process no longer hold back the next master. Answers given to
   * any other process of the instance (another token, or none), and whatever an earlier leader
   * said (electedFenceUntil), still do; see fenceOf.
   */
  private processExited(service: string, id: string, token: string): void {
    const acks = this.masterAcks.get(service);
    if (acks === undefined || acks.id !== id) return; // no answer of this leader to lift
    acks.exited.add(token);
    // Bounded: forgetting the oldest exit only makes the fence wait for that process again.
    if (acks.exited.size > EXITED_PROCESSES_MAX) acks.exited.delete(acks.exited.values().next().value as string);
  }

  /** masterFence is the last "master" answer of a service on this leader (tests and status). */
  masterFence(service: string): { id: string; until: number } | undefined {
    const acks = this.masterAcks.get(service);
    return acks === undefined ? undefined : { id: acks.id, until: acks.until };
  }

  /** confirm resolves true once a quorum confirmed that this node leads (false: do not acknowledge). It never rejects. */
  private async confirm(needed: boolean): Promise<boolean> {
    if (!needed) return true;
    const { leadership } = this.opts;
    // The tracker may still lead while the core has stepped down (the driver hears of it with the
    // next ready); readIndex would then ask the new leader and confirm its leadership, not ours.
    if (!leadership.isLeader()) return false;
    try {
      await leadership.readIndex(LEASE_CONFIRM_MS);
      return true;
    } catch (err) {
      this.opts.logger.debug({ err }, "leadership not confirmed; heartbeats not acknowledged");
      return false;
    }
  }

  /** proposeFailbacks proposes each due fail-back once per LEASE_RETRY_MS; apply re-checks it against the cluster time it applies at. */
  private async proposeFailbacks(): Promise<void> {
    const due = this.opts.registry.failbacksDue?.(this.opts.clusterNow()) ?? [];
    const now = this.mono();
    for (const f of due) {
      if ((this.failbackPending.get(f.service) ?? 0) > now) continue;
      this.failbackPending.set(f.service, now + LEASE_RETRY_MS);
      const positions = this.positionsFor([f.service]);
      const cmd: RegistryCommand = { op: "failover", service: f.service, to: f.to, reason: "failback", ...(positions.length > 0 ? { positions } : {}) };
      await this.opts.propose(cmd);
    }
  }

  private async check(): Promise<void> {
    if (!this.tracker.isLeading) return;
    const now = this.mono();
    // While a takeover still seeds (a few turns), due() would seed the rest in one go, the stall the
    // slices avoid: wait, unless a lease could have expired by now (none before the shortest TTL
    // after the takeover). Reaps of long-critical instances wait those few turns too.
    if (this.tracker.isSeeding && now < this.takeoverAt + TTL_MS_RANGE[0]) return;
    const work = this.tracker.due(now, this.opts.clusterNow());
    try {
      if (work.expire.length > 0) {
        const res = await this.opts.propose(this.healthSet(work.expire));
        this.opts.logger.debug({ expired: work.expire.length, applied: res.applied, index: res.index }, "lease expiries applied");
      }
      for (const r of work.reap) await this.opts.propose({ op: "instance.reap", service: r.service, id: r.id });
      await this.proposeFailbacks();
    } catch (err) {
      // Not leader any more, or a conditional change lost its race: the tracker retries or the next leader takes over.
      this.opts.logger.debug({ err }, "lease proposal did not apply");
    }
  }
}
