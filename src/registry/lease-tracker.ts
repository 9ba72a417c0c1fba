/**
 * The leader's table of heartbeat leases. Renewals live only here, in memory: heartbeat traffic
 * never becomes Raft traffic. Only changes of health leave this module, as HealthChange values the
 * host proposes (one health.set command per due() call) and reap candidates it proposes as
 * instance.reap commands.
 *
 * Two clocks, both passed in by the caller so tests are exact:
 * - `now` is the leader's monotonic clock in ms. Lease deadlines use it, because a wall clock can
 *   jump and a deadline must not.
 * - `clusterNow` (due() only) is the cluster time (cluster-clock.ts). Reaping uses it, because
 *   `healthSince` is replicated cluster time, and the state machine re-checks the reap against the
 *   cluster time it applies at. The host must stamp `at` from the same clock it passes here.
 */
import { invariant } from "../common/errors.js";
import { MinHeap } from "../common/min-heap.js";
import type { Health, HealthChange, Instance, RegistryEvent } from "./types.js";

/** LEASE_RETRY_MS: a proposal not answered by an event this long after is proposed again. 1 s is well above a healthy commit (tens of ms) and an election (300–600 ms), so a retry means the proposal was lost, not slow. */
export const LEASE_RETRY_MS = 1_000;

/** LEASE_EXPIRE_BATCH_MAX bounds the changes in one due() answer (one health.set entry, ~150 bytes each): 1,000 keeps the entry near 150 KB; the rest follow at the next call. */
export const LEASE_EXPIRE_BATCH_MAX = 1_000;

/** LEASE_REAP_BATCH_MAX bounds the reaps in one due() answer (one instance.reap entry each). */
export const LEASE_REAP_BATCH_MAX = 100;

/** LEASE_EXPIRED_NOTE_PREFIX starts the note of every expiry, so any later leader can tell an expired instance (which a plain heartbeat revives) from one that reported itself critical. */
export const LEASE_EXPIRED_NOTE_PREFIX = "lease expired:";

/** LeaseSeed is what becomeLeader needs of each applied instance (an Instance satisfies it). */
export type LeaseSeed = Pick<
  Instance,
  "service" | "id" | "ttlMs" | "health" | "note" | "modIndex" | "createIndex" | "deregisterCriticalAfterMs" | "healthSince"
>;

/** HeartbeatStatus is the optional health a heartbeat reports about its instance. */
export interface HeartbeatStatus {
  readonly health: Health;
  readonly note: string;
}

/** LeaseRenewal is the answer of renew(). */
export type LeaseRenewal =
  | {
      readonly ok: true;
      readonly ttlMs: number;
      /** deadline is in the leader's monotonic clock; only ttlMs means anything to another process. */
      readonly deadline: number;
      /** change, when not null, must be proposed (health.set): the heartbeat changes replicated health. */
      readonly change: HealthChange | null;
    }
  | { readonly ok: false; readonly reason: "not-found" | "not-leader" };

/** LeaseWork is the answer of due(): what the host must propose now. */
export interface LeaseWork {
  /** expire: one health.set command's changes (all critical, all conditional on modIndex). */
  readonly expire: HealthChange[];
  /** reap: one instance.reap command each. */
  readonly reap: { readonly service: string; readonly id: string }[];
}

interface Lease {
  readonly service: string;
  readonly id: string;
  ttlMs: number;
  deregisterCriticalAfterMs: number;
  createIndex: number;
  /** Replicated state as of the last event the tracker saw. */
  health: Health;
  note: string;
  healthSince: number;
  modIndex: number;
  /** deadline (monotonic ms): the lease expires once now >= deadline. */
  deadline: number;
  /** pendingUntil: an expiry or reap is in flight until the next event or this time (0: none). */
  pendingUntil: number;
  /** pendingStatus: a heartbeat's health change in flight, with its retry time. */
  pendingStatus: { health: Health; note: string; until: number } | null;
}

/** isLeaseExpiredNote tells whether a note is one an expiry wrote. */
export function isLeaseExpiredNote(note: string): boolean {
  return note.startsWith(LEASE_EXPIRED_NOTE_PREFIX);
}

/** LeaseTracker holds lease deadlines on the leader. Every method is synchronous and pure but for the table. */
export class LeaseTracker {
  private leading = false;
  /**
   * leases by service, then id. Invariant: empty while not leading, and no empty inner map. Two
   * levels rather than one "service\0id" key: the registry's strings are interned and keep their
   * hash, while a joined key is a new string to build, flatten and hash for every lookup — that
   * was most of a 100,000-instance takeover's ~150 ms (CPU profile).
   */
  private readonly leases = new Map<string, Map<string, Lease>>();
  private leaseCount = 0;
  /** seeding is the takeover still being seeded (beginTakeover): the live registry's instances, from `at`. */
  private seeding: { readonly it: Iterator<LeaseSeed>; readonly at: number; readonly find?: (service: string, id: string) => LeaseSeed | undefined } | undefined;
  private seededTtlMax = 0;
  /**
   * wakeups says when due() must look at a lease again (monotonic ms). Invariant: every lease that
   * may need work has an entry no later than the time it will need it; an entry may be early or
   * stale (a renewed deadline, a deleted lease), and due() then looks, finds nothing to do and
   * files the lease again. So a renewal (the hot path) files nothing, and due() costs O(leases
   * looked at), not O(instances): the whole-table scan every LEASE_CHECK_MS took 12-20 % of a
   * leader's busy time with 80,000-100,000 instances under load (CPU profile, session 9).
   */
  private readonly wakeups = new MinHeap<Lease>();
  /**
   * reapable holds the critical leases with a deregisterCriticalAfterMs: due() looks at each on
   * every call, by cluster time (few: only instances that failed and are waiting to be reaped).
   */
  private readonly reapable = new Set<Lease>();

  /** isLeading tells whether becomeLeader was called since the last stepDown. */
  get isLeading(): boolean {
    return this.leading;
  }

  /** size is the number of instances tracked. */
  get size(): number {
    return this.leaseCount;
  }

  /**
   * becomeLeader starts tracking every applied instance with a full lease from now: a new leader
   * cannot know when each instance last heartbeated (its predecessor may have accepted one just
   * before it stepped down), so it gives each the full TTL. That is enough because a predecessor
   * acknowledges a renewal only after a quorum confirmed its leadership after the renewal arrived
   * (LeaseDriver), and this leader was elected after that confirmation. Calling it again replaces
   * the table (e.g. after a snapshot restore while leading). It returns the longest TTL seen (0
   * for none), which the caller needs and would otherwise walk every instance again for.
   */
  becomeLeader(now: number, instances: Iterable<LeaseSeed>): number {
    this.beginTakeover(now, instances);
    this.seedSome(Number.POSITIVE_INFINITY);
    return this.ttlMax;
  }

  /**
   * beginTakeover is becomeLeader a slice at a time: the caller then calls seedSome (one slice per
   * event-loop turn) until it answers true. With 100,000 instances the whole takeover holds the
   * loop for ~70–100 ms, right when the new leader's first entries wait to commit; sliced, a
   * failover is not slowed by the size of the registry. `instances` must read the live registry
   * (not a copy) and `find` look an instance up in it (without `find`, only seedSome seeds).
   *
   * Until seeding ends, the table answers as if it were complete, with one bounded exception:
   * - renew() of an instance not seeded yet seeds it first, from the registry: exact, since any
   *   change to it since the takeover came as an event (below).
   * - due() seeds everything left first: exact.
   * - the exception: an instance not seeded yet whose change is observed is tracked from that
   *   change as a new registration (its state at the takeover is gone by then), so its lease ends
   *   later than it would have, by at most the seeding time; never sooner.
   */
  beginTakeover(now: number, instances: Iterable<LeaseSeed>, find?: (service: string, id: string) => LeaseSeed | undefined): void {
    this.leading = true;
    this.clear();
    this.seeding = { it: instances[Symbol.iterator](), at: now, find };
  }

  /** isSeeding says whether a takeover (beginTakeover) still has instances to seed. */
  get isSeeding(): boolean {
    return this.seeding !== undefined;
  }

  /** ttlMax is the longest TTL among the instances the current takeover seeded (0 for none); final once isSeeding is false. */
  get ttlMax(): number {
    return this.seededTtlMax;
  }

  /** seedSome seeds up to `max` more instances of the takeover; it answers whether the takeover is complete. */
  seedSome(max: number): boolean {
    const s = this.seeding;
    if (s === undefined) return true;
    for (let n = 0; n < max; n++) {
      const next = s.it.next();
      if (next.done === true) {
        this.seeding = undefined;
        return true;
      }
      const { service, id } = next.value;
      // Already tracked: seeded by a renewal, or tracked from a change, since the takeover began.
      if (this.lookup(service, id) !== undefined) continue;
      // Gone from the registry meanwhile (its service deleted while this walk was inside it).
      if (s.find !== undefined && s.find(service, id) !== next.value) continue;
      this.seed(next.value, s.at);
    }
    return false;
  }

  /** seed tracks an instance as of the takeover at `at` (the table holds no lease for it). */
  private seed(inst: LeaseSeed, at: number): Lease {
    const lease = newLease(inst, at);
    this.insert(lease);
    if (lease.ttlMs > this.seededTtlMax) this.seededTtlMax = lease.ttlMs;
    return lease;
  }

  /** insert adds a lease the table holds none for, and files its first look (refile). */
  private insert(lease: Lease): void {
    this.byIdOf(lease.service).set(lease.id, lease);
    this.leaseCount++;
    this.refile(lease, lease.deadline);
  }

  /** byIdOf is the service's inner map, made when missing. */
  private byIdOf(service: string): Map<string, Lease> {
    let byId = this.leases.get(service);
    if (byId === undefined) {
      byId = new Map();
      this.leases.set(service, byId);
    }
    return byId;
  }

  /** lookup finds the lease of an instance. */
  private lookup(service: string, id: string): Lease | undefined {
    return this.leases.get(service)?.get(id);
  }

  /** seedOnDemand seeds one instance of a takeover still seeding, when the registry has it. */
  private seedOnDemand(service: string, id: string): Lease | undefined {
    if (this.seeding?.find === undefined) return undefined;
    const inst = this.seeding.find(service, id);
    return inst === undefined ? undefined : this.seed(inst, this.seeding.at);
  }

  private clear(): void {
    this.seeding = undefined;
    this.seededTtlMax = 0;
    this.leases.clear();
    this.leaseCount = 0;
    this.wakeups.clear();
    this.reapable.clear();
  }

  /** stepDown forgets every lease; a follower tracks none. */
  stepDown(): void {
    this.leading = false;
    this.clear();
  }

  /** track puts a new lease in the table (replacing one of the same instance) and files its first look (refile). */
  private track(lease: Lease): void {
    this.untrack(lease.service, lease.id);
    this.insert(lease);
  }

  /** untrack forgets a lease; its filed looks become stale and are dropped when they come up. */
  private untrack(service: string, id: string): void {
    const byId = this.leases.get(service);
    const old = byId?.get(id);
    if (byId === undefined || old === undefined) return;
    byId.delete(id);
    if (byId.size === 0) this.leases.delete(service);
    this.leaseCount--;
    this.reapable.delete(old);
  }

  /**
   * refile files a lease's next look at `at` while it can expire (not critical); a critical one that
   * may be reaped is kept in `reapable` instead, whose reap time is in cluster time.
   */
  private refile(lease: Lease, at: number): void {
    const critical = lease.health === "critical";
    if (critical && lease.deregisterCriticalAfterMs > 0) this.reapable.add(lease);
    else this.reapable.delete(lease);
    if (!critical) this.wakeups.push(at, lease);
  }

  /**
   * observe keeps the table in step with applied events (call it for every applied entry, in
   * order, while leading; it does nothing otherwise). A registration (new, or a re-registration that
   * changed createIndex, ttlMs or deregisterCriticalAfterMs, or touched nothing health-related)
   * starts a full lease; a health change keeps the deadline, except that leaving critical with a
   * passed deadline starts a full lease, or the next due() would expire the instance again at once.
   * Any event for an instance ends its in-flight proposals: their outcome is now known.
   */
  observe(now: number, events: readonly RegistryEvent[]): void {
    if (!this.leading) return;
    for (const ev of events) {
      if (ev.kind === "instance" && ev.type === "put") this.observePut(now, ev.instance);
      else if (ev.kind === "instance" && ev.type === "delete") this.untrack(ev.service, ev.id);
      else if (ev.kind === "service" && ev.type === "delete") this.forgetService(ev.name);
    }
  }

  /**
   * renew extends a lease to now + ttl (in memory only). With a status, or for an instance that a
   * lease expiry made critical, it also says which HealthChange to propose, if any; it does not
   * return the same change again while one is in flight (until an event or LEASE_RETRY_MS).
   */
  renew(now: number, service: string, id: string, status?: HeartbeatStatus): LeaseRenewal {
    if (!this.leading) return { ok: false, reason: "not-leader" };
    const lease = this.lookup(service, id) ?? this.seedOnDemand(service, id);
    if (lease === undefined) return { ok: false, reason: "not-found" };
    lease.deadline = now + lease.ttlMs;
    // Compare with the status a change still in flight will leave, not only with the replicated
    // one: of two pipelined heartbeats (warning, then passing) the last must win.
    const p = lease.pendingStatus !== null && now < lease.pendingStatus.until ? lease.pendingStatus : null;
    const wanted = wantedStatus(p ? { ...lease, health: p.health, note: p.note } : lease, status);
    let change: HealthChange | null = null;
    if (wanted !== null) {
      lease.pendingStatus = { ...wanted, until: now + LEASE_RETRY_MS };
      // Unconditional: a heartbeat's status is the instance's own latest report, and changes are
      // applied in the order the leader proposes them, so the last report wins.
      change = { service, id, health: wanted.health, note: wanted.note, ifModIndex: 0 };
    }
    return { ok: true, ttlMs: lease.ttlMs, deadline: lease.deadline, change };
  }

  /**
   * due lists what the host must propose now: expiries of leases whose deadline passed (not of
   * instances already critical), and reaps of instances critical for at least their
   * deregisterCriticalAfterMs of cluster time. Each is marked in flight, so the next call does not
   * list it again until an event for it arrives or LEASE_RETRY_MS passes. It looks only at leases
   * whose filed time has come (wakeups), not at every instance.
   */
  due(now: number, clusterNow: number): LeaseWork {
    const work: LeaseWork = { expire: [], reap: [] };
    if (!this.leading) return work;
    // Exact: whatever the takeover has not seeded yet is seeded first (the driver does not call
    // due() while a takeover seeds, unless a lease could have expired by then).
    this.seedSome(Number.POSITIVE_INFINITY);
    // Leases a full batch could not take are filed again for the next call.
    const later: Lease[] = [];
    while ((this.wakeups.peekKey() ?? Number.POSITIVE_INFINITY) <= now) {
      const lease = this.wakeups.pop() as Lease;
      // Stale: deleted or re-registered (a new lease object) since, or critical now (reapable's).
      if (this.lookup(lease.service, lease.id) !== lease || lease.health === "critical") continue;
      if (lease.pendingUntil > now) {
        this.wakeups.push(lease.pendingUntil, lease);
        continue;
      }
      if (now < lease.deadline) {
        // Renewed since this look was filed: look again at the new deadline.
        this.wakeups.push(lease.deadline, lease);
        continue;
      }
      if (work.expire.length >= LEASE_EXPIRE_BATCH_MAX) {
        later.push(lease);
        continue;
      }
      work.expire.push({
        service: lease.service,
        id: lease.id,
        health: "critical",
        note: `${LEASE_EXPIRED_NOTE_PREFIX} no heartbeat for ${lease.ttlMs}ms`,
        ifModIndex: lease.modIndex,
      });
      lease.pendingUntil = now + LEASE_RETRY_MS;
      // Until the expiry's event comes (observePut refiles it), look again when the mark runs out.
      this.wakeups.push(lease.pendingUntil, lease);
    }
    for (const lease of later) this.wakeups.push(now, lease);
    for (const lease of this.reapable) {
      if (work.reap.length >= LEASE_REAP_BATCH_MAX) break;
      if (lease.pendingUntil > now || clusterNow - lease.healthSince < lease.deregisterCriticalAfterMs) continue;
      work.reap.push({ service: lease.service, id: lease.id });
      lease.pendingUntil = now + LEASE_RETRY_MS;
    }
    return work;
  }

  private observePut(now: number, inst: Instance): void {
    const lease = this.lookup(inst.service, inst.id);
    const registration =
      lease === undefined ||
      lease.createIndex !== inst.createIndex ||
      lease.ttlMs !== inst.ttlMs ||
      lease.deregisterCriticalAfterMs !== inst.deregisterCriticalAfterMs ||
      (lease.health === inst.health && lease.note === inst.note);
    if (lease === undefined || registration) {
      this.track(newLease(inst, now));
      return;
    }
    const revived = lease.health === "critical" && inst.health !== "critical" && now >= lease.deadline;
    lease.health = inst.health;
    lease.note = inst.note;
    lease.healthSince = inst.healthSince;
    lease.modIndex = inst.modIndex;
    lease.pendingUntil = 0;
    lease.pendingStatus = null;
    if (revived) lease.deadline = now + lease.ttlMs;
    // The change may make work due sooner (no longer in flight; critical, so a reap may come): look
    // now, and due() files the lease for whenever it needs the next look.
    this.refile(lease, now);
  }

  private forgetService(service: string): void {
    // A deleted service may not announce each instance's delete; forget them all to be safe.
    for (const id of [...(this.leases.get(service)?.keys() ?? [])]) this.untrack(service, id);
  }
}

function newLease(inst: LeaseSeed, now: number): Lease {
  // The message is a function: a template here cost a string per lease on every takeover.
  invariant(Number.isFinite(inst.ttlMs) && inst.ttlMs > 0, "lease tracker", () => `lease ${inst.service}/${inst.id}: ttlMs ${inst.ttlMs}`);
  return {
    service: inst.service,
    id: inst.id,
    ttlMs: inst.ttlMs,
    deregisterCriticalAfterMs: inst.deregisterCriticalAfterMs,
    createIndex: inst.createIndex,
    health: inst.health,
    note: inst.note,
    healthSince: inst.healthSince,
    modIndex: inst.modIndex,
    deadline: now + inst.ttlMs,
    pendingUntil: 0,
    pendingStatus: null,
  };
}

/** wantedStatus is the health a heartbeat asks for, or null when replicated health already says it. */
function wantedStatus(lease: Lease, status: HeartbeatStatus | undefined): HeartbeatStatus | null {
  // A plain heartbeat revives an instance that only an expiry made critical: it is alive again.
  const target = status ?? (lease.health === "critical" && isLeaseExpiredNote(lease.note) ? { health: "passing" as const, note: "" } : null);
  if (target === null) return null;
  return target.health === lease.health && target.note === lease.note ? null : target;
}
