/**
 * The registry's replicated state machine. apply() is deterministic: it reads no clock (time
 * enters only as the envelope's `at`, a cluster time stamped by the leader; see cluster-clock.ts),
 * no randomness, and iterates only in orders that depend on the log alone. Every change is
 * identified by its entry's index (the global index) and recorded as RegistryEvents in a bounded
 * history watches resume from.
 */
import { type Entry, EntryKind, type LogIndex } from "../raft/index.js";
import { type RestoreJob, runRestoreJob, type SnapshotJob, type StateMachine } from "../node/state-machine.js";
import { decodeCommand } from "./codec.js";
import { MalformedCommandError, ValidationError } from "./errors.js";
import { ACL_TOKENS_MAX, HISTORY_BYTES_MAX, HISTORY_EVENTS_MAX, INSTANCES_PER_SERVICE_MAX, KV_KEYS_MAX, LIST_LIMIT_MAX, SERVICES_MAX, SESSION_IDLE_MS, SESSION_WINDOW, SESSIONS_MAX } from "./limits.js";
import { EventHistory, type HistoryAnswer } from "./state-machine-history.js";
import { KvStore, type KvPage } from "./state-machine-kv.js";
import { requestDigest, SessionTable } from "./state-machine-sessions.js";
import { encodeSnapshot, formatFor, NO_ACL, SNAPSHOT_READ_SLICE_ROWS, SNAPSHOT_SLICE_ROWS, SnapshotReader, type SnapshotState, SnapshotWriter, snapshotFormatOf } from "./state-machine-snapshot.js";
import { compactInstance, compactInstanceOf, type InstanceState, StringPool } from "./records.js";
import { decide, failbackRefusal, switchoverTarget } from "./failover.js";
import { InstanceMap } from "./instance-map.js";
import { AclTable, type AclRule, type AclToken, BOOTSTRAP_TOKEN_NAME, validateAclToken } from "./acl.js";
import { CONFIG_FIELDS, copyRecord } from "./fields.js";
import {
  type CommandEnvelope,
  type CommandResult,
  DEFAULT_SERVICE_CONFIG,
  type ErrorCode,
  type Health,
  type HealthChange,
  type Instance,
  type InstanceRole,
  type InstanceSpec,
  type MasterReason,
  type MasterState,
  NO_MASTER,
  type PositionReport,
  type KvEntry,
  type KvOp,
  type RegistryCommand,
  type RegistryEvent,
  type Service,
  type ServiceConfig,
} from "./types.js";
import {
  validateHealthChanges,
  validateInitialHealth,
  validateInstanceSpec,
  validateKvKey,
  validateKvPrefix,
  validateKvValue,
  validateMaintenanceReason,
  validateName,
  validatePositions,
  validateServiceConfig,
  validateServiceName,
  validateSession,
  validateTxn,
} from "./validate.js";

/** RegistryStateMachineOptions are the host's hooks; `limits` exist for tests and must be equal on every node. */
export interface RegistryStateMachineOptions {
  /** onEvents receives the events of each applied entry that changed something, after history and applied include them. */
  readonly onEvents?: (events: readonly RegistryEvent[]) => void;
  /** onReset is called after restore(): watches must start again from `index`. */
  readonly onReset?: (index: number) => void;
  readonly limits?: {
    readonly historyEventsMax?: number;
    readonly historyBytesMax?: number;
    readonly sessionsMax?: number;
    readonly sessionIdleMs?: number;
    readonly sessionWindow?: number;
  };
}

/** ServiceView is one service with its master and its instances in id order. */
export interface ServiceView {
  readonly service: Service;
  readonly instances: Instance[];
  readonly master: MasterState;
}

/** HealthCounts counts a service's instances, in all and by health. */
export interface HealthCounts {
  readonly instances: number;
  readonly passing: number;
  readonly warning: number;
  readonly critical: number;
}

/** ServiceSummary is one line of listServices(). */
export interface ServiceSummary {
  readonly service: Service;
  readonly counts: HealthCounts;
  readonly master: MasterState;
}

/** ServiceHealthView is one step of serviceHealth(): a service's mode, master and counts. */
export interface ServiceHealthView {
  readonly name: string;
  readonly mode: string;
  readonly master: string;
  readonly instances: number;
  readonly critical: number;
}

/** RegistryStats counts what the machine holds. */
export interface RegistryStats {
  readonly applied: number;
  readonly services: number;
  readonly instances: number;
  readonly kvKeys: number;
  readonly sessions: number;
  readonly historyEvents: number;
  /** historyBytes is the estimated memory the watch history holds (eventSizeBytes). */
  readonly historyBytes: number;
}

interface ServiceRecord {
  service: Service;
  readonly instances: InstanceMap;
  /** master: the master-slave master and epoch (NO_MASTER for a service that never had one). */
  master: MasterState;
}

type Ok = Extract<CommandResult, { ok: true }>;
type Fields = Omit<Ok, "ok" | "index">;

const ok = (index: number, fields: Fields = {}): CommandResult => ({ ok: true, index, ...fields });
const fail = (index: number, code: ErrorCode, message: string): CommandResult => ({ ok: false, index, code, message });

/** RegistryStateMachine holds services, instances, KV and client sessions, replicated through the log. */
export class RegistryStateMachine implements StateMachine {
  /** applied is the index of the last entry applied or restored. Invariant: entries arrive as applied + 1. */
  applied: LogIndex = 0;
  /**
   * clusterTime is the largest `at` applied (ms of cluster time). Everything that decides with time
   * (session expiry, healthSince, reaping) reads it, never a command's own `at`, so a stamp behind
   * it cannot move time backwards. Invariant: never decreases, also across restore().
   */
  clusterTime = 0;
  /** appliedTerm is the term of the last entry applied; a host hint for stamping (not in snapshots: 0 after restore). */
  appliedTerm = 0;
  private services = new Map<string, ServiceRecord>();
  private instanceCount = 0;
  private kv = new KvStore();
  private readonly acl = new AclTable();
  private sessions: SessionTable;
  private readonly sessionWindow: number;
  private readonly history: EventHistory;
  /** pool shares the repeated strings of instance records (records.ts). */
  private readonly pool = new StringPool();

  constructor(private readonly opts: RegistryStateMachineOptions = {}) {
    const l = opts.limits ?? {};
    this.sessionWindow = l.sessionWindow ?? SESSION_WINDOW;
    this.sessions = this.newSessionTable();
    this.history = new EventHistory(l.historyEventsMax ?? HISTORY_EVENTS_MAX, l.historyBytesMax ?? HISTORY_BYTES_MAX);
  }

  private newSessionTable(): SessionTable {
    const l = this.opts.limits ?? {};
    return new SessionTable(l.sessionsMax ?? SESSIONS_MAX, l.sessionIdleMs ?? SESSION_IDLE_MS, this.sessionWindow);
  }

  /** apply applies one committed entry: no-ops and membership changes only advance applied; commands return their result. */
  apply(entry: Entry): CommandResult | undefined {
    if (entry.index !== this.applied + 1) throw new Error(`registry: entry ${entry.index} applied after ${this.applied} (entries must come in order, without gaps)`);
    this.applied = entry.index;
    this.appliedTerm = entry.term;
    if (entry.kind !== EntryKind.Normal || entry.data.length === 0) return undefined;
    const events: RegistryEvent[] = [];
    const result = this.applyData(entry.data, entry.index, events);
    if (events.length > 0) {
      this.history.append(events);
      this.opts.onEvents?.(events);
    }
    return result;
  }

  private applyData(data: Uint8Array, index: number, events: RegistryEvent[]): CommandResult {
    let env: CommandEnvelope;
    try {
      env = decodeCommand(data);
    } catch (err) {
      // Every node refuses the same bytes the same way: the entry is spent, nothing changes.
      if (err instanceof MalformedCommandError) return fail(index, "invalid-argument", err.message);
      throw err;
    }
    this.clusterTime = Math.max(this.clusterTime, env.at);
    const now = this.clusterTime;
    this.sessions.expire(now);
    const s = env.session;
    if (!s) return this.execute(env.cmd, now, index, events);
    try {
      validateSession(s);
    } catch (err) {
      if (err instanceof ValidationError) return fail(index, "invalid-argument", err.message);
      throw err;
    }
    const digest = requestDigest(env.cmd);
    const seen = this.sessions.lookup(s.client, s.seq, digest);
    if (seen.kind === "duplicate") return seen.result.ok ? { ...seen.result, duplicate: true } : seen.result;
    if (seen.kind === "reused") {
      return fail(index, "failed-precondition", `session.seq: seq ${s.seq} of client ${s.client} already ran a different request; use a new seq for a new write`);
    }
    if (seen.kind === "stale") {
      return fail(index, "stale-session", `client ${s.client} wrote seq ${seen.maxSeq} already; seq ${s.seq} is older than the last ${this.sessionWindow}`);
    }
    const result = this.execute(env.cmd, now, index, events);
    this.sessions.record(s.client, s.seq, result, digest, now);
    return result;
  }

  /**
   * execute runs a command, then settles the master of every master-slave service it touched in
   * the same entry (failover.ts), and gives the entry's instance events their roles after it.
   */
  private execute(cmd: RegistryCommand, at: number, index: number, events: RegistryEvent[]): CommandResult {
    const result = this.executeCommand(cmd, at, index, events);
    if (!result.ok) return result;
    for (const name of [...touchedServices(cmd)].sort()) this.settleMaster(name, at, index, events);
    for (let k = 0; k < events.length; k++) {
      const e = events[k]!;
      // A literal, not `{ ...e, role }`: V8 gave each spread copy a hidden class of its own (~190
      // bytes per event, and the watch history holds 100,000 of them).
      if (e.kind === "instance" && e.type === "put") events[k] = { index: e.index, kind: "instance", type: "put", instance: e.instance, previousHealth: e.previousHealth, role: this.roleOf(e.instance.service, e.instance.id) };
    }
    if (cmd.op !== "failover") return result;
    const m = this.services.get(cmd.service)?.master ?? NO_MASTER;
    return { ...result, master: m.master, epoch: m.epoch };
  }

  /** settleMaster applies the promotion rules to one service's state after an entry's changes. */
  private settleMaster(name: string, at: number, index: number, events: RegistryEvent[]): void {
    const rec = this.services.get(name);
    if (!rec) return;
    const d = decide(rec.master, rec.service.config, rec.instances);
    if (d !== null) this.setMaster(rec, d.master, d.reason, at, index, events);
  }

  private setMaster(rec: ServiceRecord, master: string, reason: MasterReason, at: number, index: number, events: RegistryEvent[]): void {
    const previous = rec.master.master;
    rec.master = { master, epoch: index, since: at };
    events.push({ index, kind: "master", type: "put", service: rec.service.name, master, previous, epoch: index, reason });
  }

  private executeCommand(cmd: RegistryCommand, at: number, index: number, events: RegistryEvent[]): CommandResult {
    try {
      switch (cmd.op) {
        case "service.put":
          return this.putService(cmd.name, cmd.config, index, events);
        case "service.delete":
          return this.deleteService(cmd.name, index, events);
        case "instance.register":
          return this.register(cmd.instance, cmd.health ?? "passing", cmd.note ?? "", at, index, events);
        case "instance.deregister":
          return this.deregister(cmd.service, cmd.id, index, events);
        case "health.set":
          return this.setHealth(cmd.changes, cmd.positions, at, index, events);
        case "instance.reap":
          return this.reap(cmd.service, cmd.id, at, index, events);
        case "instance.maintenance":
          return this.setMaintenance(cmd.service, cmd.id, cmd.on, cmd.reason, index, events);
        case "kv.put":
          return this.kvPut(cmd.key, cmd.value, index, events);
        case "kv.delete":
          return this.kvDelete(cmd.key, cmd.prefix === true, index, events);
        case "kv.txn":
          return this.kvTxn(cmd, index, events);
        case "failover":
          return this.failover(cmd, at, index, events);
        case "acl.token.create":
        case "acl.token.delete":
        case "acl.bootstrap":
          return this.aclCommand(cmd, index);
      }
    } catch (err) {
      // Validators run before any change, so a refused command changed nothing.
      if (err instanceof ValidationError) return fail(index, "invalid-argument", err.message);
      throw err;
    }
  }

  // ------------------------------------------------------------ services and instances

  private putService(name: string, config: ServiceConfig, index: number, events: RegistryEvent[]): CommandResult {
    validateServiceName(name, "name");
    validateServiceConfig(config, name, "config");
    const rec = this.services.get(name);
    if (!rec && this.services.size >= SERVICES_MAX) return fail(index, "resource-exhausted", `the registry holds ${SERVICES_MAX} services already`);
    const service: Service = { name, config: copyConfig(config), createIndex: rec?.service.createIndex ?? index, modIndex: index };
    if (rec) rec.service = service;
    else this.services.set(name, { service, instances: new InstanceMap(), master: NO_MASTER });
    events.push({ index, kind: "service", type: "put", service });
    return ok(index);
  }

  private deleteService(name: string, index: number, events: RegistryEvent[]): CommandResult {
    validateServiceName(name, "name");
    const rec = this.services.get(name);
    if (!rec) return fail(index, "not-found", `service ${name} is not registered`);
    for (const id of [...rec.instances.keys()].sort()) events.push({ index, kind: "instance", type: "delete", service: name, id });
    this.instanceCount -= rec.instances.size;
    if (rec.master.master !== "") this.setMaster(rec, "", "demoted", this.clusterTime, index, events);
    this.services.delete(name);
    events.push({ index, kind: "service", type: "delete", name });
    return ok(index, { deleted: rec.instances.size });
  }

  private register(spec: InstanceSpec, health: Health, note: string, at: number, index: number, events: RegistryEvent[]): CommandResult {
    validateInstanceSpec(spec, "instance", "log");
    validateInitialHealth(health, note);
    let rec = this.services.get(spec.service);
    const prev = rec?.instances.get(spec.id);
    if (!rec && this.services.size >= SERVICES_MAX) return fail(index, "resource-exhausted", `the registry holds ${SERVICES_MAX} services already`);
    if (rec && !prev && rec.instances.size >= INSTANCES_PER_SERVICE_MAX) {
      return fail(index, "resource-exhausted", `service ${spec.service} has ${INSTANCES_PER_SERVICE_MAX} instances already`);
    }
    if (!rec) {
      rec = { service: { name: spec.service, config: DEFAULT_SERVICE_CONFIG, createIndex: index, modIndex: index }, instances: new InstanceMap(), master: NO_MASTER };
      this.services.set(spec.service, rec);
      events.push({ index, kind: "service", type: "put", service: rec.service });
    }
    // A re-registration keeps the position the log recorded: it is the instance's, not the registration's.
    // So is maintenance: an operator drained the instance, and its agent re-registering must not undo that.
    const instance = makeInstance(this.pool, spec, { health, note }, at, prev?.createIndex ?? index, index, prev?.replicationPosition ?? 0, prev);
    rec.instances.set(spec.id, instance);
    if (!prev) this.instanceCount++;
    events.push({ index, kind: "instance", type: "put", instance, previousHealth: prev?.health });
    return ok(index);
  }

  private deregister(service: string, id: string, index: number, events: RegistryEvent[]): CommandResult {
    validateName(service, "service");
    validateName(id, "id");
    if (!this.services.get(service)?.instances.has(id)) return fail(index, "not-found", `instance ${service}/${id} is not registered`);
    this.removeInstance(service, id, index, events);
    return ok(index, { deleted: 1 });
  }

  /** setMaintenance turns an instance's drain on or off; setting what is already set changes nothing (no event). */
  private setMaintenance(service: string, id: string, on: boolean, reason: string, index: number, events: RegistryEvent[]): CommandResult {
    validateName(service, "service");
    validateName(id, "id");
    validateMaintenanceReason(reason);
    const rec = this.services.get(service);
    const inst = rec?.instances.get(id);
    if (!rec || !inst) return fail(index, "not-found", `instance ${service}/${id} is not registered`);
    const maintenanceReason = on ? reason : "";
    if (inst.maintenance === on && inst.maintenanceReason === maintenanceReason) return ok(index);
    const next: Instance = { ...inst, maintenance: on, maintenanceReason, modIndex: index };
    rec.instances.set(id, next);
    events.push({ index, kind: "instance", type: "put", instance: next, previousHealth: inst.health });
    return ok(index);
  }

  private removeInstance(service: string, id: string, index: number, events: RegistryEvent[]): void {
    this.services.get(service)?.instances.delete(id);
    this.instanceCount--;
    events.push({ index, kind: "instance", type: "delete", service, id });
  }

  /**
   * setHealth applies each change whose instance exists and whose ifModIndex holds (0 or equal to
   * the instance's modIndex); `applied` counts those. An instance changes (modIndex, event) only if
   * its health or note differs; healthSince moves only when the health itself changes, so a new
   * note on a critical instance does not postpone its reaping.
   */
  private setHealth(changes: readonly HealthChange[], positions: readonly PositionReport[] | undefined, at: number, index: number, events: RegistryEvent[]): CommandResult {
    validateHealthChanges(changes);
    validatePositions(positions);
    this.recordPositions(positions);
    let applied = 0;
    for (const c of changes) {
      const rec = this.services.get(c.service);
      const inst = rec?.instances.get(c.id);
      if (!rec || !inst || (c.ifModIndex !== 0 && inst.modIndex !== c.ifModIndex)) continue;
      applied++;
      if (inst.health === c.health && inst.note === c.note) continue;
      const healthSince = inst.health === c.health ? inst.healthSince : at;
      const next: Instance = { ...inst, health: c.health, note: c.note, healthSince, modIndex: index };
      rec.instances.set(c.id, next);
      events.push({ index, kind: "instance", type: "put", instance: next, previousHealth: inst.health });
    }
    return ok(index, { applied });
  }

  /**
   * recordPositions stores reported replication positions. A position alone is not an event and
   * does not move modIndex: it would look like a re-registration to the lease tracker and wake
   * every watcher at heartbeat rate; the next event of the instance carries it.
   */
  private recordPositions(positions: readonly PositionReport[] | undefined): void {
    for (const p of positions ?? []) {
      const rec = this.services.get(p.service);
      const inst = rec?.instances.get(p.id);
      if (rec && inst && inst.replicationPosition !== p.position) rec.instances.set(p.id, { ...inst, replicationPosition: p.position });
    }
  }

  /** failover is a switchover or a fail-back: the master role moves to the target in this entry, or nothing changes and the reason is returned. */
  private failover(cmd: Extract<RegistryCommand, { op: "failover" }>, at: number, index: number, events: RegistryEvent[]): CommandResult {
    validateServiceName(cmd.service, "service");
    if (cmd.to !== "") validateName(cmd.to, "to");
    validatePositions(cmd.positions);
    const rec = this.services.get(cmd.service);
    if (!rec) return fail(index, "not-found", `service ${cmd.service} is not registered`);
    this.recordPositions(cmd.positions);
    const instances = [...rec.instances.values()];
    if (cmd.reason === "failback") {
      if (cmd.to !== rec.service.config.failback) return fail(index, "failed-precondition", `no fail-back of ${cmd.service}: ${cmd.to || '""'} is not its failback instance`);
      const why = failbackRefusal(rec.master, rec.service.config, instances, at);
      if (why !== null) return fail(index, "failed-precondition", `no fail-back of ${cmd.service}: ${why}`);
      this.setMaster(rec, rec.service.config.failback, "failback", at, index, events);
      return ok(index);
    }
    const target = switchoverTarget(rec.master, rec.service.config, instances, cmd.to);
    if ("refused" in target) return fail(index, "failed-precondition", `no switchover of ${cmd.service}: ${target.refused}`);
    this.setMaster(rec, target.master, "switchover", at, index, events);
    return ok(index);
  }

  private reap(service: string, id: string, at: number, index: number, events: RegistryEvent[]): CommandResult {
    validateName(service, "service");
    validateName(id, "id");
    const inst = this.services.get(service)?.instances.get(id);
    if (!inst) return fail(index, "not-found", `instance ${service}/${id} is not registered`);
    const after = inst.deregisterCriticalAfterMs;
    if (inst.health !== "critical" || after <= 0 || at - inst.healthSince < after) {
      return fail(index, "failed-precondition", `instance ${service}/${id} is ${inst.health} since ${inst.healthSince}; not reapable at ${at}`);
    }
    this.removeInstance(service, id, index, events);
    return ok(index, { deleted: 1 });
  }

  // ------------------------------------------------------------ KV

  private kvPut(key: string, value: string, index: number, events: RegistryEvent[]): CommandResult {
    validateKvKey(key, "key", "log");
    validateKvValue(value);
    const prev = this.kv.get(key);
    if (!prev && this.kv.size >= KV_KEYS_MAX) return fail(index, "resource-exhausted", `the KV holds ${KV_KEYS_MAX} keys already`);
    const entry = this.kv.put(key, value, index);
    events.push({ index, kind: "kv", type: "put", entry });
    return ok(index, prev ? { prev } : {});
  }

  private kvDelete(key: string, prefix: boolean, index: number, events: RegistryEvent[]): CommandResult {
    if (prefix) {
      validateKvPrefix(key, "key", "log");
      const gone = this.kv.deletePrefix(key);
      for (const e of gone) events.push({ index, kind: "kv", type: "delete", key: e.key, modIndex: index });
      return ok(index, { deleted: gone.length });
    }
    validateKvKey(key, "key", "log");
    const prev = this.kv.delete(key);
    if (!prev) return ok(index, { deleted: 0 });
    events.push({ index, kind: "kv", type: "delete", key, modIndex: index });
    return ok(index, { deleted: 1, prev });
  }

  private kvTxn(cmd: Extract<RegistryCommand, { op: "kv.txn" }>, index: number, events: RegistryEvent[]): CommandResult {
    validateTxn(cmd, "txn", "log");
    const succeeded = cmd.compares.every((c) => this.kv.compare(c));
    const ops = succeeded ? cmd.success : cmd.failure;
    // Counted before any change, so a transaction that would overfill the KV changes nothing.
    const created = new Set(ops.filter((o) => o.op === "put" && !this.kv.get(o.key)).map((o) => o.key));
    if (this.kv.size + created.size > KV_KEYS_MAX) return fail(index, "resource-exhausted", `the KV holds ${this.kv.size} of ${KV_KEYS_MAX} keys`);
    const gets: (KvEntry | null)[] = [];
    let deleted = 0;
    for (const op of ops) deleted += this.applyOp(op, index, events, gets);
    return ok(index, { succeeded, deleted, gets });
  }

  /** applyOp runs one operation of a transaction branch and returns how many keys it deleted. */
  private applyOp(op: KvOp, index: number, events: RegistryEvent[], gets: (KvEntry | null)[]): number {
    if (op.op === "get") {
      gets.push(this.kv.get(op.key) ?? null);
      return 0;
    }
    if (op.op === "put") {
      events.push({ index, kind: "kv", type: "put", entry: this.kv.put(op.key, op.value, index) });
      return 0;
    }
    const gone = op.prefix === true ? this.kv.deletePrefix(op.key) : [this.kv.delete(op.key)].filter((e): e is KvEntry => e !== undefined);
    for (const e of gone) events.push({ index, kind: "kv", type: "delete", key: e.key, modIndex: index });
    return gone.length;
  }

  // ------------------------------------------------------------ access control

  /** aclCommand applies a token change (acl.ts). Tokens are not watch events: nothing outside the ACL reads them. */
  private aclCommand(cmd: Extract<RegistryCommand, { op: `acl.${string}` }>, index: number): CommandResult {
    if (cmd.op === "acl.token.delete") {
      if (!this.acl.delete(cmd.accessor)) return fail(index, "not-found", `token ${cmd.accessor} does not exist`);
      return ok(index, { deleted: 1 });
    }
    const bootstrap = cmd.op === "acl.bootstrap";
    if (bootstrap && this.acl.bootstrapIndex !== 0) return fail(index, "failed-precondition", `access control was bootstrapped already (at index ${this.acl.bootstrapIndex})`);
    const token: AclToken = bootstrap
      ? { accessor: cmd.accessor, secretHash: cmd.secretHash, name: BOOTSTRAP_TOKEN_NAME, rules: [{ role: "admin" }], createIndex: index }
      : { accessor: cmd.accessor, secretHash: cmd.secretHash, name: cmd.name, rules: cmd.rules.map(copyAclRule), createIndex: index };
    validateAclToken(token);
    if (this.acl.get(token.accessor) || this.acl.hasHash(token.secretHash)) return fail(index, "failed-precondition", `token ${token.accessor} exists already`);
    if (this.acl.size >= ACL_TOKENS_MAX) return fail(index, "resource-exhausted", `the cluster holds ${ACL_TOKENS_MAX} tokens already`);
    this.acl.add(token);
    if (bootstrap) this.acl.bootstrapIndex = index;
    return ok(index);
  }

  /** aclTokenBySecretHash is the token whose secret hashes to `hash` (the hex SHA-256). */
  aclTokenBySecretHash(hash: string): AclToken | undefined {
    return this.acl.bySecretHash(hash);
  }

  /** aclTokens lists every token in accessor order (with hashes: callers must not pass these on). */
  aclTokens(): AclToken[] {
    return this.acl.list();
  }

  /** aclBootstrapIndex is the index of the entry that bootstrapped access control (0: not yet). */
  get aclBootstrapIndex(): number {
    return this.acl.bootstrapIndex;
  }

  // ------------------------------------------------------------ reads

  /** getService returns a service with its instances in id order. */
  getService(name: string): ServiceView | undefined {
    const rec = this.services.get(name);
    return rec ? { service: rec.service, instances: sortedInstances(rec), master: rec.master } : undefined;
  }

  /** masterOf is a service's master state (NO_MASTER for an unknown service). */
  masterOf(service: string): MasterState {
    return this.services.get(service)?.master ?? NO_MASTER;
  }

  /** roleOf is an instance's role: master or standby in a master-slave service, "" otherwise. */
  roleOf(service: string, id: string): InstanceRole {
    const rec = this.services.get(service);
    if (rec?.service.config.mode !== "master-slave") return "";
    return rec.master.master === id ? "master" : "standby";
  }

  /** failbacksDue lists the master-slave services whose fail-back may happen at cluster time `now` (the leader proposes them). */
  failbacksDue(now: number): { service: string; to: string }[] {
    const out: { service: string; to: string }[] = [];
    for (const rec of this.services.values()) {
      const c = rec.service.config;
      if (c.mode !== "master-slave" || c.failback === "" || rec.master.master === c.failback) continue;
      if (failbackRefusal(rec.master, c, [...rec.instances.values()], now) === null) out.push({ service: rec.service.name, to: c.failback });
    }
    return out;
  }

  /** listServices returns every service in name order with its instance counts by health. */
  listServices(): ServiceSummary[] {
    return [...this.services.keys()].sort().map((name) => {
      const { service, instances: m, master } = this.services.get(name)!;
      return { service, counts: { instances: m.size, passing: m.passing, warning: m.warning, critical: m.critical }, master };
    });
  }

  /**
   * serviceHealth iterates every service's mode, master and counts, in no particular order, without
   * a copy and without allocating per service (a generator's result objects were ~0.2 MB/s at rest
   * with 1,000 services): the monitoring tick reads it twice a second. The view and the iterator's
   * result object are reused at each step: read them, do not keep them.
   */
  serviceHealth(): Iterable<ServiceHealthView> {
    const records = this.services.values();
    const view = { name: "", mode: "", master: "", instances: 0, critical: 0 };
    const step: IteratorResult<ServiceHealthView, undefined> = { done: false, value: view };
    const end: IteratorResult<ServiceHealthView, undefined> = { done: true, value: undefined };
    const iterator: Iterator<ServiceHealthView, undefined> = {
      next: () => {
        const r = records.next();
        if (r.done) return end;
        const rec = r.value;
        view.name = rec.service.name;
        view.mode = rec.service.config.mode;
        view.master = rec.master.master;
        view.instances = rec.instances.size;
        view.critical = rec.instances.critical;
        return step;
      },
    };
    return { [Symbol.iterator]: () => iterator };
  }

  /** instances returns a service's instances in id order (none for an unknown service). */
  instances(service: string): Instance[] {
    const rec = this.services.get(service);
    return rec ? sortedInstances(rec) : [];
  }

  /** instance returns one instance. */
  instance(service: string, id: string): Instance | undefined {
    return this.services.get(service)?.instances.get(id);
  }

  /**
   * eachInstance yields every instance in no particular order, without the copy and sort of
   * allInstances (a new leader seeds its lease table from it: 100,000 instances).
   */
  *eachInstance(): Generator<Instance> {
    for (const rec of this.services.values()) yield* rec.instances.values();
  }

  /** allInstances returns every instance, by service name then id. */
  allInstances(): Instance[] {
    const out: Instance[] = [];
    for (const name of [...this.services.keys()].sort()) out.push(...sortedInstances(this.services.get(name)!));
    return out;
  }

  /** kvGet returns a key's entry. */
  kvGet(key: string): KvEntry | undefined {
    return this.kv.get(key);
  }

  /** kvList returns up to `limit` (at most LIST_LIMIT_MAX) entries under `prefix` after `startAfter`, in key order. */
  kvList(prefix: string, opts: { startAfter?: string; limit?: number } = {}): KvPage {
    const limit = Math.min(opts.limit ?? LIST_LIMIT_MAX, LIST_LIMIT_MAX);
    return this.kv.list(prefix, opts.startAfter, limit);
  }

  /** eventsSince returns the retained events with index > `index` in order (about `max`, whole indexes), or `compacted` when the history no longer reaches back that far. */
  eventsSince(index: number, max?: number): HistoryAnswer {
    return this.history.since(index, max);
  }

  /** stats counts what the machine holds. */
  stats(): RegistryStats {
    return {
      applied: this.applied,
      services: this.services.size,
      instances: this.instanceCount,
      kvKeys: this.kv.size,
      sessions: this.sessions.size,
      historyEvents: this.history.size,
      historyBytes: this.history.bytes,
    };
  }

  // ------------------------------------------------------------ snapshots

  /**
   * snapshot encodes the whole state but the watch history; the same state gives the same bytes.
   * readMax is the newest format every other member reads (formatFor).
   */
  snapshot(readMax?: number): Uint8Array {
    return encodeSnapshot(this.frozenView(), formatFor(readMax));
  }

  /** snapshotFormat is the format of a snapshot's bytes (snapshotFormatOf): the node sends them only to members that read it. */
  snapshotFormat(data: Uint8Array): number {
    return snapshotFormatOf(data);
  }

  /**
   * beginSnapshot starts a sliced snapshot of the state now (the node's SnapshotJob): it takes a
   * view of arrays of the current records (~5 ms for 100,000 instances: pointers only, no record is
   * copied, since every change replaces a record rather than editing it; the session table copies a
   * record once a view holds it before it changes it, see SessionTable), so the bytes are the state
   * at `applied` whatever is applied between the slices.
   */
  beginSnapshot(readMax?: number, sliceRows = SNAPSHOT_SLICE_ROWS): SnapshotJob {
    return new SnapshotWriter(this.frozenView(), sliceRows, undefined, formatFor(readMax));
  }

  private frozenView(): SnapshotState {
    const services = [...this.services.keys()].sort().map((name) => {
      const rec = this.services.get(name)!;
      return { service: rec.service, master: rec.master, instances: [...rec.instances.values()] };
    });
    return { applied: this.applied, clusterTime: this.clusterTime, services, kv: this.kv.all(), sessions: this.sessions.entries(), acl: this.acl.state() };
  }

  /** restore replaces the whole state with a snapshot's; the watch history starts empty at its index. */
  restore(data: Uint8Array): void {
    runRestoreJob(this.beginRestore(data));
  }

  /**
   * beginRestore replaces the state with a snapshot's a slice at a time (the node's RestoreJob): the
   * snapshot's rows are read, then its instances made compact, sliceRows per step, into new maps;
   * the last step swaps them in, so until then the old state stays whole for readers. The host
   * applies nothing between the steps.
   */
  beginRestore(data: Uint8Array, sliceRows = SNAPSHOT_READ_SLICE_ROWS): RestoreJob {
    const steps = this.restoreSteps(data, sliceRows);
    return { step: () => steps.next().done === true };
  }

  private *restoreSteps(data: Uint8Array, sliceRows: number): Generator<void, void, void> {
    // The reader makes each record compact as it reads it (the pool); a snapshot it cannot read a
    // slice at a time is decoded whole, records not compact: those are made compact here.
    const reader = new SnapshotReader(data, sliceRows, this.pool);
    let s: SnapshotState | undefined;
    while ((s = reader.step()) === undefined) yield;
    const services = new Map<string, ServiceRecord>();
    let count = 0;
    let budget = sliceRows;
    for (const { service, master, instances } of s.services) {
      const byId = new InstanceMap();
      for (const i of instances) {
        byId.set(i.id, reader.compact ? i : compactInstance(i, this.pool));
        if (--budget > 0) continue;
        budget = sliceRows;
        yield;
      }
      services.set(service.name, { service, instances: byId, master });
      count += instances.length;
    }
    // The keys and the sessions are loaded into new tables a step each, and swapped in with the
    // rest: loading them in place took the last step to 9-23 ms with 10,000 of each.
    const kv = new KvStore();
    kv.load(s.kv);
    yield;
    const sessions = this.newSessionTable();
    sessions.load(s.sessions);
    yield;
    this.kv = kv;
    this.services = services;
    this.instanceCount = count;
    this.sessions = sessions;
    this.acl.load(s.acl ?? NO_ACL);
    this.applied = s.applied;
    this.clusterTime = s.clusterTime;
    this.appliedTerm = 0;
    this.history.reset(s.applied);
    this.opts.onReset?.(s.applied);
  }
}

function sortedInstances(rec: ServiceRecord): Instance[] {
  return [...rec.instances.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** copyAclRule keeps a rule's known fields only, in one order, so equal rules store equal bytes. */
function copyAclRule(r: AclRule): AclRule {
  return { role: r.role, ...(r.services !== undefined ? { services: r.services } : {}), ...(r.keys !== undefined ? { keys: r.keys } : {}) };
}

function copyConfig(c: ServiceConfig): ServiceConfig {
  return copyRecord(CONFIG_FIELDS, c);
}

/** makeInstance builds the stored instance with the table's field order and sorted metadata, so equal registrations store equal bytes. */
function makeInstance(
  pool: StringPool,
  spec: InstanceSpec,
  initial: { readonly health: Health; readonly note: string },
  at: number,
  createIndex: number,
  modIndex: number,
  replicationPosition: number,
  prev?: Instance,
): Instance {
  const maintenance = prev?.maintenance ?? false;
  const maintenanceReason = prev?.maintenanceReason ?? "";
  const state: InstanceState = { health: initial.health, note: initial.note, healthSince: at, createIndex, modIndex, replicationPosition, maintenance, maintenanceReason };
  return compactInstanceOf(spec, state, pool);
}

/** touchedServices are the services whose master an applied command may change. */
function touchedServices(cmd: RegistryCommand): Set<string> {
  switch (cmd.op) {
    case "service.put":
      return new Set([cmd.name]);
    case "instance.register":
      return new Set([cmd.instance.service]);
    case "instance.deregister":
    case "instance.reap":
      return new Set([cmd.service]);
    case "health.set":
      return new Set([...cmd.changes.map((c) => c.service), ...(cmd.positions ?? []).map((p) => p.service)]);
    default:
      // failover sets its master itself; service.delete demotes in place; KV touches no service.
      return new Set();
  }
}
