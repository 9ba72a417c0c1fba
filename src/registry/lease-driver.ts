import { performance } from "node:perf_hooks";
import type { Logger } from "../common/logger.js";
import type { HeartbeatRequestMsg, RenewResultMsg } from "../common/messages.js";
import { LeaseTracker } from "./lease-tracker.js";
import type { HealthChange, Instance, RegistryCommand, RegistryEvent } from "./types.js";
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

/** LeaseRegistry is what the driver reads from the applied registry. */
export interface LeaseRegistry {
  allInstances(): Iterable<Instance>;
  instance(service: string, id: string): Instance | undefined;
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
}

const mono = () => performance.now();

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
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: LeaseDriverOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), LEASE_CHECK_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.tracker.stepDown();
  }

  /** onRole follows this node's leadership. */
  onRole(isLeader: boolean): void {
    if (isLeader && !this.tracker.isLeading) this.tracker.becomeLeader(mono(), this.opts.registry.allInstances());
    else if (!isLeader && this.tracker.isLeading) this.tracker.stepDown();
  }

  /** onEvents keeps the tracker in step with the registry (call after the machine applied them). */
  onEvents(events: readonly RegistryEvent[]): void {
    this.tracker.observe(mono(), events);
  }

  /** onReset re-seeds a leading tracker after a snapshot replaced the registry. */
  onReset(): void {
    if (this.tracker.isLeading) this.tracker.becomeLeader(mono(), this.opts.registry.allInstances());
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
    const now = mono();
    const changes: HealthChange[] = [];
    const out: RenewResultMsg[] = [];
    /** caused holds the answers whose own heartbeat asked for a health change. */
    const caused = new Set<RenewResultMsg>();
    for (const it of items) {
      const status = it.status ? { health: it.status as Instance["health"], note: it.note } : undefined;
      const r = this.tracker.renew(now, it.service, it.id, status);
      if (!r.ok) {
        out.push({ code: r.reason, response: null });
        continue;
      }
      const answer: RenewResultMsg = { code: "ok", response: { service: it.service, id: it.id, ttlMs: r.ttlMs, health: r.change?.health ?? "", index: 0 } };
      if (r.change) {
        changes.push(r.change);
        caused.add(answer);
      }
      out.push(answer);
    }
    // Asked now, in the same synchronous step as the renewals: the round starts after every one arrived.
    const confirmed = this.confirm(out.some((r) => r.code === "ok"));
    let index = 0;
    if (changes.length > 0) index = (await this.opts.propose({ op: "health.set", changes })).index;
    if (!(await confirmed)) return out.map((r) => (r.code === "ok" ? { code: "unconfirmed", response: null } : r));
    for (const r of out) {
      if (!r.response) continue;
      const inst = this.opts.registry.instance(r.response.service, r.response.id);
      r.response.health = inst?.health ?? r.response.health;
      // Only the heartbeat that asked for the change names its index.
      r.response.index = caused.has(r) ? index : 0;
    }
    return out;
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

  private async check(): Promise<void> {
    if (!this.tracker.isLeading) return;
    const work = this.tracker.due(mono(), this.opts.clusterNow());
    try {
      if (work.expire.length > 0) {
        const res = await this.opts.propose({ op: "health.set", changes: work.expire });
        this.opts.logger.debug({ expired: work.expire.length, applied: res.applied, index: res.index }, "lease expiries applied");
      }
      for (const r of work.reap) await this.opts.propose({ op: "instance.reap", service: r.service, id: r.id });
    } catch (err) {
      // Not leader any more, or a conditional change lost its race: the tracker retries or the next leader takes over.
      this.opts.logger.debug({ err }, "lease proposal did not apply");
    }
  }
}
