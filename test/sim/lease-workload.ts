import { selfDemotionMarginMs } from "../../src/client/master-session.js";
import type { HeartbeatRequestMsg, RenewResultMsg } from "../../src/common/messages.js";
import type { HealthChange, RegistryCommand } from "../../src/registry/types.js";
import { isLeaseExpiredNote } from "../../src/registry/lease-tracker.js";
import { SafetyViolation } from "./checker.js";
import type { WorkloadRng } from "./registry-workload.js";

/** HEARTBEATERS are the instances that heartbeat (the registry workload registers, deregisters and reconfigures them at random). */
const HEARTBEATERS: readonly (readonly [string, string])[] = [
  ["db", "i0"],
  ["db", "i1"],
  ["db", "i2"],
  ["web", "i0"],
  ["web", "i1"],
];

/** KEPT: acknowledgements and expiries remembered per instance; with three heartbeats a TTL, 16 span more than a TTL back. */
const KEPT = 16;

/** HEARTBEAT_EVERY_TICKS: three heartbeats per 1 s TTL at 100 ms ticks, as the client SDK sends them (HEARTBEATS_PER_TTL). */
const HEARTBEAT_EVERY_TICKS = 3;

interface Heartbeater {
  readonly service: string;
  readonly id: string;
  /** stopsAt: the tick after which it sends no more heartbeats (Infinity: never stops). */
  readonly stopsAt: number;
  nextAt: number;
  /** acked: send time and TTL of the heartbeats acknowledged "ok" (the last few TTLs' worth). */
  acked: { sentMs: number; ttlMs: number }[];
  /** expiredAt: when lease expiries of this instance that applied were decided (the last few). */
  expiredAt: number[];
  /** masterEpoch and actingFrom/actingUntil: when it acts as master (told "master", until send + TTL − margin or a non-master answer). */
  masterEpoch: number;
  actingFrom: number;
  actingUntil: number;
  /**
   * supervised: when it stops, its process exited under a supervisor, which reports it at once
   * (critical, naming the process token): from then on it acts on nothing, and the report may lift
   * the handover fence (lease-driver.ts, fenceOf). Otherwise it stops as a cut-off process would,
   * acting until its own deadline.
   */
  readonly supervised: boolean;
  readonly token: string;
  /** exited: the exit happened and was reported (sent once; a lost report leaves the fence in place). */
  exited: boolean;
}

/** LeaseSink is the node-side end of a heartbeat: a lease driver's renew. */
export type LeaseSink = (items: readonly HeartbeatRequestMsg[]) => Promise<RenewResultMsg[]>;

/**
 * LeaseWorkload is the instances' side of heartbeat leases in a registry run: each heartbeater
 * sends a heartbeat every HEARTBEAT_EVERY_TICKS to a node that believes it leads, and some stop
 * heartbeating at a drawn tick. It checks the two promises leases make, on virtual time:
 * - no instance is marked critical by lease expiry while a heartbeat it sent within its TTL before
 *   was acknowledged (time measured at send, as the instance measures it);
 * - in a master-slave service no two instances act as master at once, each acting from a "master"
 *   answer until send time of its last acknowledged "master" answer + TTL − margin (self-demotion),
 *   or until an answer that does not say "master".
 */
export class LeaseWorkload {
  private readonly beaters: Heartbeater[];
  heartbeats = 0;
  acks = 0;
  masterAnswers = 0;
  expiries = 0;
  /** exitReports: supervised exits reported to a leader. */
  exitReports = 0;
  /** violation is the first broken promise an answer revealed (answers arrive in the host loop's microtasks). */
  violation: Error | undefined;

  constructor(rng: WorkloadRng) {
    this.beaters = HEARTBEATERS.map(([service, id], i) => ({
      service,
      id,
      // Every other instance is supervised (no draw, so the other draws stay as they were).
      supervised: i % 2 === 0,
      token: `${service}-${id}-p1`,
      exited: false,
      stopsAt: rng.chance(0.4) ? 20 + rng.nextInt(400) : Number.POSITIVE_INFINITY,
      // One phase for all: the batch goes out every HEARTBEAT_EVERY_TICKS, one confirmation round each.
      nextAt: 0,
      acked: [],
      expiredAt: [],
      masterEpoch: 0,
      actingFrom: 0,
      actingUntil: 0,
    }));
  }

  /**
   * tick sends the heartbeats due at `tick` (virtual time nowMs) to `pick()`'s driver, if any node
   * believes it leads, in one batch: the agent's HeartbeatBatcher batches them too, so they share
   * one leadership confirmation.
   */
  tick(tick: number, nowMs: number, pick: () => LeaseSink | undefined): void {
    const due = this.beaters.filter((b) => tick >= b.nextAt && tick <= b.stopsAt);
    const exits = this.beaters.filter((b) => b.supervised && !b.exited && tick > b.stopsAt);
    if (due.length === 0 && exits.length === 0) return;
    for (const b of due) b.nextAt = tick + HEARTBEAT_EVERY_TICKS;
    // The process is dead from its exit on, whether or not the report gets through.
    for (const b of exits) {
      b.exited = true;
      b.actingUntil = Math.min(b.actingUntil, nowMs);
    }
    const sink = pick();
    if (!sink) return;
    this.heartbeats += due.length;
    this.exitReports += exits.length;
    const sentMs = nowMs;
    const items = [
      ...due.map((b) => ({ service: b.service, id: b.id, status: "", note: "", masterEpoch: b.actingUntil > nowMs ? b.masterEpoch : 0, processToken: b.supervised ? b.token : "" })),
      ...exits.map((b) => ({ service: b.service, id: b.id, status: "critical", note: "process exited", masterEpoch: 0, processToken: b.token, exitedProcess: b.token })),
    ];
    void sink(items).then(
      (out) => {
        try {
          for (const [i, b] of due.entries()) this.answered(b, sentMs, out[i]);
          // The exit reports' answers (after the heartbeats') concern dead processes: nothing acts on them.
        } catch (err) {
          this.violation ??= err instanceof Error ? err : new Error(String(err));
        }
      },
      () => {},
    );
  }

  /** now is the virtual time answers are received at (set by the simulation before it drains). */
  now = 0;

  private answered(b: Heartbeater, sentMs: number, r: RenewResultMsg | undefined): void {
    const res = r?.response;
    if (r?.code !== "ok" || !res) return;
    // A dead process acts on no answer (its heartbeat was sent before it died).
    if (b.exited) return;
    this.acks++;
    b.acked.push({ sentMs, ttlMs: res.ttlMs });
    if (b.acked.length > KEPT) b.acked.shift();
    for (const p of b.expiredAt) this.checkExpiry(b.service, b.id, p, { sentMs, ttlMs: res.ttlMs });
    const at = this.now;
    if (res.role !== "master") {
      // Told it is not master: it stands down when it hears so.
      if (b.actingUntil > at) b.actingUntil = at;
      return;
    }
    this.masterAnswers++;
    const until = sentMs + res.ttlMs - selfDemotionMarginMs(res.ttlMs);
    if (until <= at) return;
    for (const o of this.beaters) {
      if (o === b || o.service !== b.service || o.actingUntil <= at) continue;
      throw new SafetyViolation(
        "lease",
        `${b.service}: ${b.id} told master (epoch ${res.epoch ?? 0}, sent ${sentMs}, at ${at}) while ${o.id} acts as master (epoch ${o.masterEpoch}) since ${o.actingFrom} until ${o.actingUntil}`,
      );
    }
    if (b.actingUntil <= at) b.actingFrom = at;
    b.actingUntil = Math.max(b.actingUntil, until);
    b.masterEpoch = res.epoch ?? 0;
  }

  /**
   * onLeaseWrite checks a lease driver's applied write, decided at proposedMs: no instance its
   * health.set marked critical by lease expiry may have an acknowledged heartbeat sent in the TTL
   * before that decision (acknowledged before or after it). A heartbeat sent after the decision
   * could not stop it: such an expiry applies after that heartbeat may have been acknowledged, and
   * the next heartbeat asks for passing again.
   */
  onLeaseWrite(cmd: RegistryCommand, proposedMs: number, nowMs: number, stillCritical: (c: HealthChange) => boolean): void {
    if (cmd.op !== "health.set") return;
    for (const c of cmd.changes) {
      if (c.health !== "critical" || !isLeaseExpiredNote(c.note) || !stillCritical(c)) continue;
      this.expiries++;
      const b = this.beaters.find((x) => x.service === c.service && x.id === c.id);
      if (!b) continue;
      b.expiredAt.push(proposedMs);
      if (b.expiredAt.length > KEPT) b.expiredAt.shift();
      for (const ack of b.acked) this.checkExpiry(c.service, c.id, proposedMs, ack, nowMs);
    }
  }

  private checkExpiry(service: string, id: string, decidedMs: number, ack: { sentMs: number; ttlMs: number }, appliedMs?: number): void {
    if (ack.sentMs < decidedMs && decidedMs < ack.sentMs + ack.ttlMs) {
      throw new SafetyViolation("lease", `${service}/${id} expired (decided at ${decidedMs}, applied at ${appliedMs ?? "earlier"}) though a heartbeat sent at ${ack.sentMs} (TTL ${ack.ttlMs}) was acknowledged`);
    }
  }
}
