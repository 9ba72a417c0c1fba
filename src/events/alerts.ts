/**
 * Alert rules, evaluated on every node (so an alert fires even when Prometheus is down), each
 * with a for-duration: a condition must hold that long before its alert fires, and the alert
 * resolves as soon as the condition no longer holds.
 *
 * Two scopes, which is how alerts are de-duplicated across nodes:
 * - cluster alerts (member unreachable, service without master, critical share, failover
 *   happened, crash-looping instance) are about the registry or the membership, which every node
 *   sees alike. Every node evaluates them (so a new leader has the state warm), but only the node
 *   that leads sends them, and a node that becomes leader sends those firing once more. Their
 *   labels carry no node, so their fingerprint is the same from every node: a receiver that hears
 *   the same firing alert from the old and the new leader around a hand-over de-duplicates it by
 *   fingerprint, as Alertmanager does.
 * - node alerts (no leader, retry budget exhausted) are about what one node sees: a node without
 *   a leader cannot count on a leader to report it. Each node sends its own, labelled with node.
 */
import { createHash } from "node:crypto";
import type { MeshEvent } from "./types.js";
import type { ServiceHealthView } from "../registry/state-machine.js";

/** AlertSettings are the rules' thresholds (the agent's configuration has them, with defaults). */
export interface AlertSettings {
  /** noLeaderMs: NoLeader fires after this node knew no leader this long. */
  readonly noLeaderMs: number;
  /** memberUnreachableMs: MemberUnreachable fires after a member was unreachable this long. */
  readonly memberUnreachableMs: number;
  /** noMasterMs: ServiceWithoutMaster fires after a master-slave service with instances had no master this long. */
  readonly noMasterMs: number;
  /** criticalPercent and criticalMs: CriticalInstances fires when more than this share of a service's instances was critical this long. */
  readonly criticalPercent: number;
  readonly criticalMs: number;
  /** failoverHoldMs: FailoverHappened fires at an unplanned master change and resolves this long after the last one. */
  readonly failoverHoldMs: number;
  /** crashLoopRestarts within crashLoopWindowMs: InstanceCrashLooping fires for an instance re-registered that often. */
  readonly crashLoopRestarts: number;
  readonly crashLoopWindowMs: number;
  /** retryBudgetHoldMs: RetryBudgetExhausted fires at a retry the budget refused and resolves this long after the last. */
  readonly retryBudgetHoldMs: number;
}

/**
 * ALERT_DEFAULTS: long enough that an election (well under a second), a node restart or one
 * missed heartbeat does not page anyone, short enough that a real outage does within a minute.
 */
export const ALERT_DEFAULTS: AlertSettings = {
  noLeaderMs: 10_000,
  memberUnreachableMs: 15_000,
  noMasterMs: 10_000,
  criticalPercent: 50,
  criticalMs: 30_000,
  failoverHoldMs: 300_000,
  crashLoopRestarts: 3,
  crashLoopWindowMs: 300_000,
  retryBudgetHoldMs: 60_000,
};

/** ALERT_NAMES are the rules, by the alertname label they fire with. */
export const ALERT_NAMES = ["NoLeader", "MemberUnreachable", "ServiceWithoutMaster", "CriticalInstances", "FailoverHappened", "InstanceCrashLooping", "RetryBudgetExhausted"] as const;
export type AlertName = (typeof ALERT_NAMES)[number];

/** ALERT_SUBJECTS_MAX bounds the subjects an event-driven rule remembers (services, instances): a bound on memory, far above any real fleet's failing subjects at once. */
export const ALERT_SUBJECTS_MAX = 10_000;

export type AlertScope = "cluster" | "node";

/** Alert is one alert's state, as a webhook sends it. Times are ms since the epoch; endsAt 0 while firing. */
export interface Alert {
  readonly name: AlertName;
  readonly scope: AlertScope;
  readonly status: "firing" | "resolved";
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly startsAt: number;
  readonly endsAt: number;
  readonly fingerprint: string;
}

/** AlertView is what the state-based rules look at, taken by the caller at each evaluation. */
export interface AlertView {
  /** leader is the leader this node knows ("" none). */
  readonly leader: string;
  /** unreachable are the members this node cannot reach (the leader's view counts: only it sends). */
  readonly unreachable: ReadonlySet<string>;
  /** services is read once, in one pass, during evaluate (the registry's serviceHealth() reuses one object per step). */
  readonly services: Iterable<ServiceHealthView>;
}

interface Condition {
  readonly name: AlertName;
  readonly scope: AlertScope;
  readonly forMs: number;
  readonly labels: Record<string, string>;
  readonly summary: string;
}

/** fingerprint is a stable key of an alert's labels: the same labels give the same fingerprint on every node. */
export function fingerprint(labels: Readonly<Record<string, string>>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join("\u0000");
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/**
 * AlertEngine holds the rules' state. Feed it the journal's events (observe) and call evaluate
 * with the current view; evaluate returns the alerts that fired or resolved since the last call.
 */
export class AlertEngine {
  private readonly pending = new Map<string, number>();
  private readonly firing = new Map<string, Alert>();
  private readonly failovers = new Map<string, number>();
  private readonly restarts = new Map<string, number[]>();
  private readonly budget = new Map<string, number>();

  constructor(
    private readonly settings: AlertSettings,
    private readonly ids: { readonly cluster: string; readonly node: string },
    /** replayedThrough: registry events up to this index were applied again at start-up (already alerted before a restart): not counted. */
    private readonly replayedThrough = 0,
  ) {}

  /** observe takes an event of the journal into the event-driven rules. */
  observe(e: MeshEvent): void {
    if (!e.local && e.index > 0 && e.index <= this.replayedThrough) return;
    if ((e.kind === "master-promoted" || e.kind === "no-master") && (e.details.previous ?? "") !== "") {
      const reason = e.details.reason ?? "";
      // A switchover or fail-back is a planned change, not a failure.
      if (reason !== "switchover" && reason !== "failback") remember(this.failovers, e.service, e.atMs);
    } else if (e.kind === "instance-restarted") {
      const k = `${e.service}/${e.instance}`;
      const list = (this.restarts.get(k) ?? []).filter((t) => e.atMs - t < this.settings.crashLoopWindowMs);
      list.push(e.atMs);
      remember(this.restarts, k, list.slice(-this.settings.crashLoopRestarts));
    } else if (e.kind === "retry-budget-exhausted") {
      remember(this.budget, e.service, e.atMs);
    }
  }

  /** evaluate applies every rule at nowMs and returns the alerts that changed state (fired or resolved). */
  evaluate(view: AlertView, nowMs: number): Alert[] {
    const s = this.settings;
    const conds: Condition[] = [];
    if (view.leader === "") conds.push({ name: "NoLeader", scope: "node", forMs: s.noLeaderMs, labels: {}, summary: "this node knows no leader" });
    for (const m of view.unreachable) conds.push({ name: "MemberUnreachable", scope: "cluster", forMs: s.memberUnreachableMs, labels: { member: m }, summary: `member ${m} is unreachable` });
    for (const svc of view.services) {
      if (svc.mode === "master-slave" && svc.instances > 0 && svc.master === "") {
        conds.push({ name: "ServiceWithoutMaster", scope: "cluster", forMs: s.noMasterMs, labels: { service: svc.name }, summary: `master-slave service ${svc.name} has no master` });
      }
      if (svc.instances > 0 && (svc.critical * 100) / svc.instances > s.criticalPercent) {
        conds.push({
          name: "CriticalInstances",
          scope: "cluster",
          forMs: s.criticalMs,
          labels: { service: svc.name },
          summary: `${svc.critical} of ${svc.instances} instances of ${svc.name} are critical (more than ${s.criticalPercent}%)`,
        });
      }
    }
    for (const [service, at] of this.failovers) {
      if (nowMs - at < s.failoverHoldMs) conds.push({ name: "FailoverHappened", scope: "cluster", forMs: 0, labels: { service }, summary: `${service} failed over to another master` });
      else this.failovers.delete(service);
    }
    for (const [k, times] of this.restarts) {
      const recent = times.filter((t) => nowMs - t < s.crashLoopWindowMs);
      if (recent.length === 0) this.restarts.delete(k);
      else if (recent.length >= s.crashLoopRestarts) {
        const [service = "", instance = ""] = k.split("/");
        conds.push({ name: "InstanceCrashLooping", scope: "cluster", forMs: 0, labels: { service, instance }, summary: `${k} restarted ${recent.length} times within ${s.crashLoopWindowMs} ms` });
      }
    }
    for (const [service, at] of this.budget) {
      if (nowMs - at < s.retryBudgetHoldMs) conds.push({ name: "RetryBudgetExhausted", scope: "node", forMs: 0, labels: { service }, summary: `retries to ${service} are refused by its retry budget` });
      else this.budget.delete(service);
    }
    return this.transitions(conds, nowMs);
  }

  /** active is every firing alert. */
  active(): Alert[] {
    return [...this.firing.values()];
  }

  private transitions(conds: readonly Condition[], nowMs: number): Alert[] {
    const out: Alert[] = [];
    const seen = new Set<string>();
    for (const c of conds) {
      const labels = this.labelsOf(c);
      const fp = fingerprint(labels);
      seen.add(fp);
      if (this.firing.has(fp)) continue;
      const since = this.pending.get(fp) ?? nowMs;
      this.pending.set(fp, since);
      if (nowMs - since < c.forMs) continue;
      this.pending.delete(fp);
      const alert: Alert = { name: c.name, scope: c.scope, status: "firing", labels, annotations: { summary: c.summary }, startsAt: nowMs, endsAt: 0, fingerprint: fp };
      this.firing.set(fp, alert);
      out.push(alert);
    }
    for (const fp of [...this.pending.keys()]) if (!seen.has(fp)) this.pending.delete(fp);
    for (const [fp, alert] of this.firing) {
      if (seen.has(fp)) continue;
      this.firing.delete(fp);
      out.push({ ...alert, status: "resolved", endsAt: nowMs });
    }
    return out;
  }

  private labelsOf(c: Condition): Record<string, string> {
    const base: Record<string, string> = { alertname: c.name, severity: severityOf(c.name), cluster: this.ids.cluster, ...c.labels };
    if (c.scope === "node") base.node = this.ids.node;
    return base;
  }
}

function severityOf(name: AlertName): string {
  return name === "NoLeader" || name === "ServiceWithoutMaster" || name === "MemberUnreachable" ? "critical" : "warning";
}

/** remember sets a key in a subject map, dropping the oldest subject past ALERT_SUBJECTS_MAX. */
function remember<V>(m: Map<string, V>, k: string, v: V): void {
  m.delete(k);
  m.set(k, v);
  if (m.size > ALERT_SUBJECTS_MAX) m.delete(m.keys().next().value as string);
}
