/**
 * MasterSession runs one instance of a master-slave service: it registers (or adopts) the
 * instance, heartbeats every ttl/3, learns its role and the service's epoch from each answer, and
 * reports promoted(epoch) and demoted(reason).
 *
 * Self-demotion. The cluster promotes a standby only once the TTL has passed on the leader counted
 * from when it *received* the master's last heartbeat. The session counts from when that
 * heartbeat was *sent* (earlier), on a monotonic clock, and stands down at send + TTL − margin.
 * The margin covers what would otherwise let the two deadlines cross:
 *   - clock rate: over one TTL this host's monotonic clock may run slower than the leader's by a
 *     bounded rate (SELF_DEMOTION_CLOCK_RATE_BOUND), so the session's TTL may end later in real
 *     time than the leader's;
 *   - scheduling: the demotion timer fires late when the event loop is busy, and the application
 *     needs a moment to stop acting on its last check (SELF_DEMOTION_SCHEDULING_MS).
 * isMaster() is computed at the moment it is asked (role and epoch from the newest answer, and
 * now < deadline), so a process that was paused past its deadline never acts as master on resume,
 * even before its timer has run.
 */
import { performance } from "node:perf_hooks";
import type { RaftmeshClient } from "./client.js";
import { PROCESS_TOKEN_ENV } from "../common/process-token.js";
import { RaftmeshError } from "./errors.js";

/**
 * SELF_DEMOTION_CLOCK_RATE_BOUND is the assumed bound on how much slower this host's monotonic
 * clock may run than the cluster leader's over one TTL. Quartz drifts by tens of ppm and NTP slews
 * by at most 500 ppm; 1 % is twenty times that, so only a broken clock exceeds it.
 */
export const SELF_DEMOTION_CLOCK_RATE_BOUND = 0.01;
/**
 * SELF_DEMOTION_SCHEDULING_MS is the allowance for a late demotion timer (a busy event loop,
 * a garbage collection) and for the application to see the demotion: 100 ms is several times a
 * healthy Node.js loop's worst turn.
 */
export const SELF_DEMOTION_SCHEDULING_MS = 100;
/** HEARTBEATS_PER_TTL: three tries per TTL, so two lost heartbeats in a row still renew in time. */
export const HEARTBEATS_PER_TTL = 3;
/** HEARTBEATS_IN_FLIGHT_MAX bounds the heartbeats awaiting an answer (one TTL's worth). */
export const HEARTBEATS_IN_FLIGHT_MAX = HEARTBEATS_PER_TTL;

/** selfDemotionMarginMs is the default margin for a TTL: the clock-rate bound over it plus the scheduling allowance. */
export function selfDemotionMarginMs(ttlMs: number): number {
  return Math.ceil(ttlMs * SELF_DEMOTION_CLOCK_RATE_BOUND) + SELF_DEMOTION_SCHEDULING_MS;
}

/** MasterRole is what the cluster says an instance is: master, standby, or "" (active-active or unknown). */
export type MasterRole = "master" | "standby" | "";

/** HeartbeatAnswer is the part of a heartbeat answer the session uses. */
export interface HeartbeatAnswer {
  readonly health: string;
  readonly role: MasterRole;
  readonly epoch: number;
}

/** HeartbeatCall sends one heartbeat; it resolves once the cluster acknowledged it, and rejects otherwise. */
export type HeartbeatCall = (req: { service: string; id: string; replicationPosition?: number; masterEpoch?: number; processToken?: string }, deadlineMs: number) => Promise<HeartbeatAnswer>;

/** SessionClock is a monotonic clock with timers (injected in tests). */
export interface SessionClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** MONOTONIC_CLOCK is performance.now() with Node's timers. */
export const MONOTONIC_CLOCK: SessionClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** DemotionReason says why a master stood down. */
export type DemotionReason = "lease-lost" | "standby" | "new-epoch" | "not-found" | "stopped";

/** MasterSessionOptions configure a session. */
export interface MasterSessionOptions {
  readonly service: string;
  readonly id: string;
  readonly ttlMs: number;
  /** marginMs is the self-demotion margin (default selfDemotionMarginMs(ttlMs)); 0 is unsafe. */
  readonly marginMs?: number;
  /** replicationPosition supplies the position each heartbeat reports (e.g. a database's LSN). */
  readonly replicationPosition?: () => number;
  readonly onPromoted?: (epoch: number) => void;
  readonly onDemoted?: (reason: DemotionReason, epoch: number) => void;
  /** onAnswer sees every acknowledged answer with its heartbeat's send time (observers log the role and epoch). */
  readonly onAnswer?: (answer: HeartbeatAnswer, sentAt: number) => void;
  /** onError sees every failed heartbeat. */
  readonly onError?: (err: unknown) => void;
  readonly clock?: SessionClock;
  /**
   * unsafeIgnoreLostRenewals keeps a master master until an answer says otherwise, however long
   * no heartbeat is acknowledged. Test-only: the negative control of the failover suite.
   */
  readonly unsafeIgnoreLostRenewals?: boolean;
  /**
   * processToken names this process in every heartbeat (default: RAFTMESH_PROCESS_TOKEN, which
   * `raftmesh run` sets). When the process exits, its supervisor reports the token, and the next
   * master need not wait for this process's lease (src/common/process-token.ts).
   */
  readonly processToken?: string;
}

/** MasterSession: see the module comment. */
export class MasterSession {
  private readonly clock: SessionClock;
  readonly marginMs: number;
  readonly intervalMs: number;
  private role: MasterRole = "";
  private epochSeen = 0;
  /** masterEpoch is the epoch this instance is master of, while it believes it is master. */
  private masterEpoch = 0;
  /** ackedSendAt is the send time of the newest acknowledged heartbeat (-inf before any). */
  private ackedSendAt = Number.NEGATIVE_INFINITY;
  private inFlight = 0;
  private tickTimer: unknown;
  private demoteTimer: unknown;
  private running = false;
  /** processToken: see MasterSessionOptions.processToken ("" none). */
  readonly processToken: string;

  constructor(
    private readonly send: HeartbeatCall,
    private readonly opts: MasterSessionOptions,
  ) {
    this.clock = opts.clock ?? MONOTONIC_CLOCK;
    this.marginMs = opts.marginMs ?? selfDemotionMarginMs(opts.ttlMs);
    if (!(this.marginMs >= 0 && this.marginMs < opts.ttlMs)) throw new RangeError(`marginMs: ${this.marginMs} must be in [0, ttlMs=${opts.ttlMs})`);
    this.intervalMs = Math.floor(opts.ttlMs / HEARTBEATS_PER_TTL);
    this.processToken = opts.processToken ?? process.env[PROCESS_TOKEN_ENV] ?? "";
  }

  /** deadline is when a master stands down without a newer acknowledged heartbeat. */
  get deadline(): number {
    if (this.opts.unsafeIgnoreLostRenewals) return Number.POSITIVE_INFINITY;
    return this.ackedSendAt + this.opts.ttlMs - this.marginMs;
  }

  /** isMaster: the newest answer said master and the lease, counted from its send time, still holds. */
  isMaster(): boolean {
    return this.masterEpoch > 0 && this.clock.now() < this.deadline;
  }

  /** epoch is the epoch this instance is master of (0 when it is not master). */
  get epoch(): number {
    return this.isMaster() ? this.masterEpoch : 0;
  }

  /** newestEpoch is the newest epoch any answer named. */
  get newestEpoch(): number {
    return this.epochSeen;
  }

  /** start begins heartbeating at once. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick();
  }

  /** stop ends heartbeating and stands down (demoted("stopped") if it was master). */
  stop(): void {
    this.running = false;
    this.clock.clearTimeout(this.tickTimer);
    this.demote("stopped");
  }

  /**
   * heartbeatNow sends a heartbeat at once (then every interval again): a watcher that saw the
   * master change calls it, so a promoted standby learns its role in one round trip instead of
   * up to ttl/3 later, and a demoted master hears it at once.
   */
  heartbeatNow(): void {
    if (!this.running) return;
    this.clock.clearTimeout(this.tickTimer);
    this.tick();
  }

  private tick(): void {
    if (!this.running) return;
    this.tickTimer = this.clock.setTimeout(() => this.tick(), this.intervalMs);
    if (this.inFlight >= HEARTBEATS_IN_FLIGHT_MAX) return;
    const sentAt = this.clock.now();
    const position = this.opts.replicationPosition?.();
    this.inFlight++;
    // A heartbeat older than the TTL renews nothing: its deadline is the TTL.
    // Saying which epoch it acts as master of lets a new leader keep telling it "master" at once
    // (it already acts), while a newly chosen master waits until its predecessor has surely stood down.
    const masterEpoch = this.epoch;
    const token = this.processToken === "" ? {} : { processToken: this.processToken };
    this.send({ service: this.opts.service, id: this.opts.id, masterEpoch, ...token, ...(position === undefined ? {} : { replicationPosition: position }) }, this.opts.ttlMs).then(
      (answer) => {
        this.inFlight--;
        this.acknowledged(sentAt, answer);
      },
      (err) => {
        this.inFlight--;
        this.opts.onError?.(err);
        if (err instanceof RaftmeshError && err.code === 5 /* NOT_FOUND */) this.demote("not-found");
      },
    );
  }

  /** acknowledged applies an answer; answers to heartbeats older than the newest applied one are ignored. */
  private acknowledged(sentAt: number, answer: HeartbeatAnswer): void {
    if (!this.running || sentAt <= this.ackedSendAt) return;
    this.opts.onAnswer?.(answer, sentAt);
    if (answer.epoch < this.epochSeen) return; // an answer from a node that lags: never go back
    this.ackedSendAt = sentAt;
    this.epochSeen = answer.epoch;
    this.role = answer.role;
    if (answer.role !== "master") {
      this.demote("standby");
      return;
    }
    if (this.masterEpoch !== 0 && this.masterEpoch !== answer.epoch) this.demote("new-epoch");
    // Acknowledged too late to act on: the lease counted from its send time has already run out.
    if (this.clock.now() >= this.deadline) {
      this.demote("lease-lost");
      return;
    }
    if (this.masterEpoch === 0) {
      this.masterEpoch = answer.epoch;
      this.opts.onPromoted?.(answer.epoch);
    }
    this.armDemotion();
  }

  private armDemotion(): void {
    this.clock.clearTimeout(this.demoteTimer);
    const deadline = this.deadline;
    if (!Number.isFinite(deadline)) return;
    this.demoteTimer = this.clock.setTimeout(() => {
      if (this.masterEpoch !== 0 && this.clock.now() >= this.deadline) this.demote("lease-lost");
      else if (this.masterEpoch !== 0) this.armDemotion();
    }, Math.max(0, deadline - this.clock.now()));
  }

  private demote(reason: DemotionReason): void {
    this.clock.clearTimeout(this.demoteTimer);
    if (this.masterEpoch === 0) return;
    const epoch = this.masterEpoch;
    this.masterEpoch = 0;
    this.opts.onDemoted?.(reason, epoch);
  }

  /** roleSeen is the role the newest applied answer named. */
  get roleSeen(): MasterRole {
    return this.role;
  }
}

/**
 * clientHeartbeat adapts a RaftmeshClient to a HeartbeatCall: the answer's role and epoch are
 * read from the HeartbeatResponse (absent fields read as "" and 0).
 */
export function clientHeartbeat(client: RaftmeshClient): HeartbeatCall {
  return async (req, deadlineMs) => {
    const res = await client.heartbeat(req.service, req.id, "", "", {
      deadlineMs,
      masterEpoch: req.masterEpoch ?? 0,
      processToken: req.processToken ?? "",
      ...(req.replicationPosition === undefined ? {} : { replicationPosition: req.replicationPosition }),
    });
    const role = res.role === "master" || res.role === "standby" ? res.role : "";
    return { health: res.health, role, epoch: Number(res.epoch ?? 0) };
  };
}

/** startMasterSession registers the instance (unless adopt), then starts a session on client. */
export async function startMasterSession(
  client: RaftmeshClient,
  opts: MasterSessionOptions & { readonly address: string; readonly port: number; readonly adopt?: boolean; readonly priority?: number },
): Promise<MasterSession> {
  if (!opts.adopt) await client.register({ id: opts.id, service: opts.service, address: opts.address, port: opts.port, ttlMs: opts.ttlMs, ...(opts.priority === undefined ? {} : { priority: opts.priority }) });
  const session = new MasterSession(clientHeartbeat(client), opts);
  session.start();
  return session;
}

/** NUDGE_RECONNECT_MS is the pause before watching again after the master-event stream ended. */
const NUDGE_RECONNECT_MS = 200;

/**
 * nudgeOnMasterEvents watches the service's `master` events and calls heartbeatNow on each, so
 * roles change one round trip after the cluster changed them. It only speeds things up: the role
 * still comes from an acknowledged heartbeat, never from the event. Returns a stop function.
 */
export function nudgeOnMasterEvents(client: RaftmeshClient, session: Pick<MasterSession, "heartbeatNow">, service: string): () => void {
  let stopped = false;
  let from = 0;
  let cancel: (() => void) | undefined;
  const connect = () => {
    if (stopped) return;
    cancel = client.watch(
      { fromIndex: from, service, kinds: ["master"] },
      {
        onMessage: (m) => {
          const fresh = m.events.some((e) => e.index > from && e.kind === "master");
          from = Math.max(from, m.index, ...m.events.map((e) => e.index));
          if (fresh) session.heartbeatNow();
        },
        onEnd: () => {
          if (!stopped) setTimeout(connect, NUDGE_RECONNECT_MS);
        },
      },
    ).cancel;
  };
  connect();
  return () => {
    stopped = true;
    cancel?.();
  };
}
