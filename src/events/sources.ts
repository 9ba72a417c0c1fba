/**
 * Where the journal's events come from, each source subscribed on its own: the node's typed
 * events (leader, snapshots, applied membership changes and re-registrations), the registry's
 * feed (health and master changes of applied entries), this node's view of its peers, and the
 * balancer workers' signals.
 */
import type { Emitter } from "../common/emitter.js";
import { appCommandOf } from "../node/cluster-state-machine.js";
import type { RaftNodeEvents } from "../node/events.js";
import { ConfChangeType, decodeConfChange, EntryKind } from "../raft/index.js";
import { decodeCommand } from "../registry/codec.js";
import type { RegistryEvents } from "../registry/events.js";
import { LEASE_EXPIRED_NOTE_PREFIX } from "../registry/lease-tracker.js";
import type { Instance } from "../registry/types.js";
import type { EventJournal } from "./journal.js";
import { BALANCER_SIGNAL_MIN_GAP_MS } from "./limits.js";
import type { BalancerSignal } from "./types.js";

/**
 * recordNodeEvents follows a node: leader elected / lost and snapshots as this node saw them
 * (local), members joined and removed as applied configuration changes (the same index on every
 * node). It returns the function that stops following.
 */
export function recordNodeEvents(journal: EventJournal, events: Emitter<RaftNodeEvents>): () => void {
  const offs = [
    events.on("leader", (e) => {
      if (e.leader !== "") {
        journal.record({ kind: "leader-elected", member: e.leader, message: `${e.leader} leads in term ${e.term}`, details: { term: String(e.term), previous: e.previous } });
      } else if (e.previous !== "") {
        journal.record({ kind: "leader-lost", member: e.previous, message: `no leader known since ${e.previous} (term ${e.term})`, details: { term: String(e.term) } });
      }
    }),
    events.on("snapshotTaken", (e) => {
      journal.record({ kind: "snapshot-taken", message: `snapshot at index ${e.index} (${e.bytes} bytes)`, details: { snapshotIndex: String(e.index), term: String(e.term), bytes: String(e.bytes) } });
    }),
    events.on("applied", (e) => {
      if (e.entry.kind !== EntryKind.ConfChange) return;
      const cc = decodeConfChange(e.entry.data);
      if (cc.type === ConfChangeType.Remove) journal.record({ kind: "member-removed", index: e.index, member: cc.node, message: `${cc.node} removed` });
      else {
        const role = cc.type === ConfChangeType.AddVoter ? "voter" : "learner";
        journal.record({ kind: "member-joined", index: e.index, member: cc.node, message: `${cc.node} is a ${role}`, details: { role } });
      }
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}

/**
 * recordRegistryEvents follows the registry's feed and the node's applied entries: instance
 * health changes (an expired lease is instance-expired, other turns to critical instance-critical,
 * back to passing instance-passing), master changes (master-demoted for the master that lost the
 * role, then master-promoted or no-master) and re-registrations of a registered instance
 * (instance-restarted: a process that came back under the same id; the crash-loop rule counts
 * them). Every one carries its entry's index, so all nodes report the same events.
 */
export function recordRegistryEvents(journal: EventJournal, feed: Emitter<RegistryEvents>, node: Emitter<RaftNodeEvents>): () => void {
  /** reregistered: instances put again in the entry being applied; the applied entry says whether it was a registration. */
  let reput: { index: number; instances: Instance[] } | undefined;
  const offs = [
    feed.on("changes", (events) => {
      reput = undefined;
      for (const e of events) {
        if (e.kind === "instance" && e.type === "put") {
          // Only an instance known before, put back at passing with no note, can be a re-registration.
          if (e.previousHealth !== undefined && e.instance.health === "passing" && e.instance.note === "" && e.instance.modIndex === e.index) {
            reput ??= { index: e.index, instances: [] };
            reput.instances.push(e.instance);
          }
        } else if (e.kind === "master") {
          if (e.previous !== "" && e.previous !== e.master) {
            journal.record({ kind: "master-demoted", index: e.index, service: e.service, instance: e.previous, message: `${e.service}: ${e.previous} is no longer master${e.master ? `, ${e.master} took over` : ""} (${e.reason})`, details: { reason: e.reason, epoch: String(e.epoch) } });
          }
          if (e.master !== "") {
            journal.record({
              kind: "master-promoted",
              index: e.index,
              service: e.service,
              instance: e.master,
              message: `${e.service}: ${e.master} is master at epoch ${e.epoch} (${e.reason}${e.previous ? `, was ${e.previous}` : ""})`,
              details: { reason: e.reason, epoch: String(e.epoch), previous: e.previous },
            });
          } else {
            journal.record({ kind: "no-master", index: e.index, service: e.service, message: `${e.service} has no master (${e.reason})`, details: { reason: e.reason, epoch: String(e.epoch), previous: e.previous } });
          }
        }
      }
    }),
    feed.on("health", (h) => {
      const note = h.note;
      if (h.to === "critical") {
        const expired = note.startsWith(LEASE_EXPIRED_NOTE_PREFIX);
        journal.record({ kind: expired ? "instance-expired" : "instance-critical", index: h.index, service: h.service, instance: h.id, message: `${h.service}/${h.id} is critical${note ? `: ${note}` : ""}`, details: { from: h.from ?? "" } });
      } else if (h.to === "passing" && h.from !== undefined) {
        journal.record({ kind: "instance-passing", index: h.index, service: h.service, instance: h.id, message: `${h.service}/${h.id} is passing again (was ${h.from})`, details: { from: h.from } });
      }
    }),
    node.on("applied", (e) => {
      const candidates = reput;
      if (candidates === undefined || candidates.index !== e.index) return;
      reput = undefined;
      const data = appCommandOf(e.entry);
      if (data === undefined) return;
      let op: string;
      try {
        op = decodeCommand(data).cmd.op;
      } catch {
        return;
      }
      if (op !== "instance.register") return;
      for (const i of candidates.instances) {
        journal.record({ kind: "instance-restarted", index: e.index, service: i.service, instance: i.id, message: `${i.service}/${i.id} registered again (a restart)` });
      }
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}

/**
 * ReachabilityWatch turns this node's view of its peers into member-unreachable and
 * member-reachable events (local): call check() periodically with the members it cannot reach.
 */
export class ReachabilityWatch {
  private unreachable = new Set<string>();

  constructor(private readonly journal: EventJournal) {}

  /** check records a change for each member that became unreachable or reachable since the last check. */
  check(members: readonly string[], unreachable: ReadonlySet<string>): void {
    for (const m of members) {
      const was = this.unreachable.has(m);
      const now = unreachable.has(m);
      if (now && !was) this.journal.record({ kind: "member-unreachable", member: m, message: `${m} is not reachable from here` });
      if (!now && was) this.journal.record({ kind: "member-reachable", member: m, message: `${m} is reachable again` });
    }
    this.unreachable = new Set([...unreachable].filter((m) => members.includes(m)));
  }

  /** current is the set of members unreachable at the last check. */
  current(): ReadonlySet<string> {
    return this.unreachable;
  }
}

/**
 * BalancerSignals records the balancer workers' signals, at most one per subject (kind, service,
 * instance) every BALANCER_SIGNAL_MIN_GAP_MS: an overload refuses many requests a second, the
 * stream says it once a second.
 */
export class BalancerSignals {
  private readonly last = new Map<string, number>();
  /** perService counts the events recorded per service and kind (the status page's figures). */
  private readonly perService = new Map<string, Record<string, number>>();

  constructor(
    private readonly journal: EventJournal,
    private readonly nowMs: () => number = Date.now,
  ) {}

  record(s: BalancerSignal): void {
    const k = `${s.kind}\u0000${s.service}\u0000${s.instance ?? ""}`;
    const now = this.nowMs();
    const prev = this.last.get(k);
    if (prev !== undefined && now - prev < BALANCER_SIGNAL_MIN_GAP_MS) return;
    this.last.set(k, now);
    if (this.last.size > BALANCER_SUBJECTS_MAX) this.last.delete(this.last.keys().next().value as string);
    const counts = this.perService.get(s.service) ?? {};
    counts[s.kind] = (counts[s.kind] ?? 0) + 1;
    this.perService.set(s.service, counts);
    if (this.perService.size > BALANCER_SUBJECTS_MAX) this.perService.delete(this.perService.keys().next().value as string);
    const what =
      s.kind === "outlier-ejected"
        ? `${s.service}/${s.instance ?? "?"} ejected as an outlier`
        : s.kind === "circuit-open"
          ? `${s.service}: circuit open (${s.limit ?? "limit"})`
          : s.kind === "upstream-tls-failed"
            ? `${s.service}/${s.instance ?? "?"}: TLS handshake failed (certificate not verified, or ours refused)`
            : `${s.service}: retry refused, budget exhausted`;
    journal(this.journal, s, what);
  }

  /** counts are the events recorded per service and kind since the node started. */
  counts(): Record<string, Record<string, number>> {
    return Object.fromEntries([...this.perService].map(([k, v]) => [k, { ...v }]));
  }
}

/** BALANCER_SUBJECTS_MAX bounds the subjects remembered for throttling and counting; the oldest go first. */
const BALANCER_SUBJECTS_MAX = 4_096;

function journal(j: EventJournal, s: BalancerSignal, message: string): void {
  j.record({ kind: s.kind, service: s.service, instance: s.instance ?? "", message, details: s.limit ? { limit: s.limit } : {} });
}
