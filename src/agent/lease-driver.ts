import { performance } from "node:perf_hooks";
import type { HeartbeatRequestMsg, RenewResultMsg } from "../api/messages.js";
import type { OkResult } from "../api/registry-write.js";
import { LeaseTracker } from "../registry/lease-tracker.js";
import type { HealthChange, Instance, RegistryCommand, RegistryEvent } from "../registry/types.js";

/** LEASE_CHECK_MS: how often the leader looks for expired leases; expiry is noticed at most this late. */
export const LEASE_CHECK_MS = 100;

/** LeaseRegistry is what the driver reads from the applied registry. */
export interface LeaseRegistry {
  allInstances(): Iterable<Instance>;
  instance(service: string, id: string): Instance | undefined;
}

/** LeaseDriverOptions wire the driver to the node. */
export interface LeaseDriverOptions {
  readonly registry: LeaseRegistry;
  /** propose replicates a registry command on this (leading) node and resolves once applied. */
  readonly propose: (cmd: RegistryCommand) => Promise<OkResult>;
  readonly logger: { debug(o: object, m: string): void; warn(o: object, m: string): void };
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
   * changes some of them ask for go into one health.set entry, and the answers wait for it.
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
    let index = 0;
    if (changes.length > 0) index = (await this.opts.propose({ op: "health.set", changes })).index;
    for (const r of out) {
      if (!r.response) continue;
      const inst = this.opts.registry.instance(r.response.service, r.response.id);
      r.response.health = inst?.health ?? r.response.health;
      // Only the heartbeat that asked for the change names its index.
      r.response.index = caused.has(r) ? index : 0;
    }
    return out;
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
