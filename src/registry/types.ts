/**
 * The registry's data model and its commands. Commands are what the leader proposes (JSON in the
 * log); apply() is deterministic: time enters only as `at`, the cluster time (cluster-clock.ts)
 * stamped by the leader when it proposes.
 * Every change is identified by the Raft index of the entry that made it (the global index).
 */
import type { AclRule } from "./acl.js";
import {
  CIRCUIT_MAX_DEFAULT,
  FAILBACK_HOLD_DOWN_MS_DEFAULT,
  FALLBACK_STATUS_DEFAULT,
  MAX_LAG_ON_FAILOVER_DEFAULT,
  OUTLIER_BASE_EJECTION_MS_DEFAULT,
  OUTLIER_CONSECUTIVE_FAILURES_DEFAULT,
  OUTLIER_MAX_EJECTION_PERCENT_DEFAULT,
  PANIC_THRESHOLD_PERCENT_DEFAULT,
  ZONE_MIN_HEALTHY_PERCENT_DEFAULT,
} from "./limits.js";

export type Health = "passing" | "warning" | "critical";
export const HEALTH_VALUES: readonly Health[] = ["passing", "warning", "critical"];

export type ServiceMode = "active-active" | "master-slave";
export const SERVICE_MODES: readonly ServiceMode[] = ["active-active", "master-slave"];

export type BalancePolicy = "round-robin" | "random" | "weighted" | "least-connections" | "p2c" | "hash";
export const BALANCE_POLICIES: readonly BalancePolicy[] = ["round-robin", "random", "weighted", "least-connections", "p2c", "hash"];

/** HashMethod is how policy "hash" maps a key to an instance: a consistent-hash ring (ketama) or Maglev's table. */
export type HashMethod = "ring" | "maglev";
export const HASH_METHODS: readonly HashMethod[] = ["ring", "maglev"];

/** InstanceRole is an instance's role: master or standby in a master-slave service, "" in an active-active one. */
export type InstanceRole = "master" | "standby" | "";

/** MasterReason says why a master-slave service's master changed. */
export type MasterReason = "promoted" | "demoted" | "no-master" | "switchover" | "failback";
export const MASTER_REASONS: readonly MasterReason[] = ["promoted", "demoted", "no-master", "switchover", "failback"];

/**
 * MasterState is a master-slave service's master, replicated. epoch is the global index of the
 * entry that last changed it (to an instance or to none): it only grows, and is the fencing token.
 * since is the cluster time of that entry (fail-back waits a hold-down after it).
 */
export interface MasterState {
  /** master is the master's instance id, "" for none. */
  readonly master: string;
  readonly epoch: number;
  readonly since: number;
}

/** NO_MASTER is the state of a service that never had a master (and of every active-active one). */
export const NO_MASTER: MasterState = { master: "", epoch: 0, since: 0 };

/** ServiceConfig is how the balancer and failover treat a service. */
export interface ServiceConfig {
  readonly policy: BalancePolicy;
  readonly mode: ServiceMode;
  /** retries is the most retries of one request (only where retrying is safe). */
  readonly retries: number;
  /** retryBudgetPercent caps retries at this share of requests, so retries cannot multiply an overload. */
  readonly retryBudgetPercent: number;
  /** perTryTimeoutMs bounds one attempt; 0 means the request's own deadline. */
  readonly perTryTimeoutMs: number;
  /** fallback is the service to use when this one has no healthy instance ("" for none). */
  readonly fallback: string;
  /** maxLagOnFailover: a standby more than this behind the best known replication position is not promoted (0: no lag rule). */
  readonly maxLagOnFailover: number;
  /** failback is the preferred master ("" for none), given the role back after failbackHoldDownMs. */
  readonly failback: string;
  /** failbackHoldDownMs: the preferred instance must have passed, and the master held, this long (cluster time) before fail-back. */
  readonly failbackHoldDownMs: number;
  /** hashOn is policy hash's key: "header:<name>", "cookie:<name>" or "source" ("" with other policies). */
  readonly hashOn: string;
  readonly hashMethod: HashMethod;
  /** retryOn5xx retries a 5xx answer also for non-idempotent methods. */
  readonly retryOn5xx: boolean;
  /** fallbackStatus and fallbackBody are the static answer when no instance is healthy and there is no fallback service. */
  readonly fallbackStatus: number;
  readonly fallbackBody: string;
  /** outlierConsecutiveFailures ejects an instance after this many failures in a row (0: never). */
  readonly outlierConsecutiveFailures: number;
  readonly outlierBaseEjectionMs: number;
  readonly outlierMaxEjectionPercent: number;
  /** panicThresholdPercent: below this share of healthy instances the balancer uses all of them. */
  readonly panicThresholdPercent: number;
  /** maxConnections, maxPendingRequests, maxRequests: circuit breaking per endpoint node. */
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  /** zoneMinHealthyPercent: below this share of healthy instances in the caller's zone, traffic spills to other zones. */
  readonly zoneMinHealthyPercent: number;
  /** upstreamTls: the balancer dials the instances over TLS (presenting the node's certificate when an instance asks for one). */
  readonly upstreamTls: boolean;
  /** upstreamTlsServerName is the name sent (SNI) and checked in the instance's certificate ("": the instance's address). */
  readonly upstreamTlsServerName: string;
  /** upstreamTlsVerify: the instance's certificate must verify against the upstream CA (false: encrypted but not authenticated). */
  readonly upstreamTlsVerify: boolean;
}

export const DEFAULT_SERVICE_CONFIG: ServiceConfig = {
  policy: "round-robin",
  mode: "active-active",
  retries: 2,
  retryBudgetPercent: 20,
  perTryTimeoutMs: 0,
  fallback: "",
  maxLagOnFailover: MAX_LAG_ON_FAILOVER_DEFAULT,
  failback: "",
  failbackHoldDownMs: FAILBACK_HOLD_DOWN_MS_DEFAULT,
  hashOn: "",
  hashMethod: "ring",
  retryOn5xx: false,
  fallbackStatus: FALLBACK_STATUS_DEFAULT,
  fallbackBody: "",
  outlierConsecutiveFailures: OUTLIER_CONSECUTIVE_FAILURES_DEFAULT,
  outlierBaseEjectionMs: OUTLIER_BASE_EJECTION_MS_DEFAULT,
  outlierMaxEjectionPercent: OUTLIER_MAX_EJECTION_PERCENT_DEFAULT,
  panicThresholdPercent: PANIC_THRESHOLD_PERCENT_DEFAULT,
  maxConnections: CIRCUIT_MAX_DEFAULT,
  maxPendingRequests: CIRCUIT_MAX_DEFAULT,
  maxRequests: CIRCUIT_MAX_DEFAULT,
  zoneMinHealthyPercent: ZONE_MIN_HEALTHY_PERCENT_DEFAULT,
  upstreamTls: false,
  upstreamTlsServerName: "",
  upstreamTlsVerify: true,
};

export interface Service {
  readonly name: string;
  readonly config: ServiceConfig;
  readonly createIndex: number;
  readonly modIndex: number;
}

/** InstanceSpec is what a registration says about an instance. */
export interface InstanceSpec {
  readonly id: string;
  readonly service: string;
  readonly address: string;
  readonly port: number;
  readonly tags: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly weight: number;
  readonly priority: number;
  readonly zone: string;
  /** ttlMs is the heartbeat lease: no heartbeat for this long and the instance turns critical. */
  readonly ttlMs: number;
  /** deregisterCriticalAfterMs removes an instance critical for this long (0: never). */
  readonly deregisterCriticalAfterMs: number;
}

/** Instance is a registered instance with its replicated health. */
export interface Instance extends InstanceSpec {
  readonly health: Health;
  readonly note: string;
  /** healthSince is the cluster time (ms, see cluster-clock.ts; not a wall-clock date) of the last health change. */
  readonly healthSince: number;
  readonly createIndex: number;
  readonly modIndex: number;
  /**
   * replicationPosition is the instance's last reported position (e.g. an LSN; 0: none) as recorded
   * in the log. Positions ride on the entries that may choose a master (see failover.ts), so between
   * those it may lag what the instance reports; a change of it alone is not an event.
   */
  readonly replicationPosition: number;
  /**
   * maintenance drains the instance: balancers send it no new requests (in-flight ones finish) and
   * a failover does not choose it, while it stays registered and heartbeated. An operator sets it
   * (`instance.maintenance`); a re-registration keeps it.
   */
  readonly maintenance: boolean;
  /** maintenanceReason says why, for the operator who finds it drained ("" when none was given). */
  readonly maintenanceReason: string;
}

/** PositionReport is one instance's replication position, as the leader last heard it in a heartbeat. */
export interface PositionReport {
  readonly service: string;
  readonly id: string;
  readonly position: number;
}

/** KvEntry is one key with its value (base64 in JSON) and indexes, as etcd and Consul report them. */
export interface KvEntry {
  readonly key: string;
  /** value is base64-encoded bytes. */
  readonly value: string;
  readonly createIndex: number;
  readonly modIndex: number;
  /** version counts puts since the key was created (1 after the first). */
  readonly version: number;
}

/** KvCompare is one condition of a transaction; a missing key has value "", indexes 0 and version 0. */
export interface KvCompare {
  readonly key: string;
  readonly target: "value" | "mod" | "create" | "version";
  readonly op: "==" | "!=" | "<" | ">";
  /** value (base64) for target "value". */
  readonly value?: string;
  /** number for targets "mod", "create" and "version". */
  readonly number?: number;
}

/** KvOp is one operation of a transaction branch. */
export type KvOp =
  | { readonly op: "put"; readonly key: string; readonly value: string }
  | { readonly op: "delete"; readonly key: string; readonly prefix?: boolean }
  | { readonly op: "get"; readonly key: string };

/** HealthChange is one instance's new health, proposed by the leader (expiry, heartbeat status, operator). */
export interface HealthChange {
  readonly service: string;
  readonly id: string;
  readonly health: Health;
  readonly note: string;
  /**
   * ifModIndex makes the change conditional: it applies only if the instance was not modified
   * since (so an expiry decided before a re-registration does not hit the new registration). 0: always.
   */
  readonly ifModIndex: number;
}

export type RegistryCommand =
  | { readonly op: "service.put"; readonly name: string; readonly config: ServiceConfig }
  | { readonly op: "service.delete"; readonly name: string }
  /**
   * instance.register creates or replaces an instance. health and note, when present, are the health
   * it starts with (absent: passing, ""): an instance whose checks already fail registers critical,
   * so no read between its registration and its first heartbeat sees it passing. Left out when
   * they are the defaults, so such an entry has the bytes it had before the fields existed.
   */
  | { readonly op: "instance.register"; readonly instance: InstanceSpec; readonly health?: Health; readonly note?: string }
  | { readonly op: "instance.deregister"; readonly service: string; readonly id: string }
  /** health.set may carry the leader's latest replication positions of the master-slave services it touches (see failover.ts). */
  | { readonly op: "health.set"; readonly changes: readonly HealthChange[]; readonly positions?: readonly PositionReport[] }
  /**
   * failover hands a master-slave service's master role to `to` ("" the best eligible standby):
   * a switchover an operator asked for, or a fail-back the leader proposes once the hold-down passed.
   */
  | {
      readonly op: "failover";
      readonly service: string;
      readonly to: string;
      readonly reason: "switchover" | "failback";
      readonly positions?: readonly PositionReport[];
    }
  /** instance.maintenance turns an instance's maintenance (drain) on or off, with a reason. */
  | { readonly op: "instance.maintenance"; readonly service: string; readonly id: string; readonly on: boolean; readonly reason: string }
  /** instance.reap removes an instance only if it is still critical and has been for its deregisterCriticalAfterMs (of cluster time). */
  | { readonly op: "instance.reap"; readonly service: string; readonly id: string }
  | { readonly op: "kv.put"; readonly key: string; readonly value: string }
  | { readonly op: "kv.delete"; readonly key: string; readonly prefix?: boolean }
  | {
      readonly op: "kv.txn";
      readonly compares: readonly KvCompare[];
      readonly success: readonly KvOp[];
      readonly failure: readonly KvOp[];
    }
  /** acl.token.create adds a token (acl.ts): the secret's hash only, never the secret. */
  | { readonly op: "acl.token.create"; readonly accessor: string; readonly secretHash: string; readonly name: string; readonly rules: readonly AclRule[] }
  | { readonly op: "acl.token.delete"; readonly accessor: string }
  /** acl.bootstrap adds the first admin token; it applies once per cluster (the state records that it did). */
  | { readonly op: "acl.bootstrap"; readonly accessor: string; readonly secretHash: string };

/** Session identifies a client's write for at-most-once application (Raft dissertation §6.3). */
export interface Session {
  readonly client: string;
  /** seq grows by one per write of this client; a retry reuses it. */
  readonly seq: number;
}

/** CommandEnvelope is the data of one registry log entry. */
export interface CommandEnvelope {
  /** v is the command format version. */
  readonly v: 1;
  /**
   * at is the cluster time (ms) when the leader proposed the command: its monotonic count from
   * the cluster time it found applied (cluster-clock.ts), never its wall clock. Entries written
   * before cluster time carry the leader's wall clock; the cluster time carries on from them.
   */
  readonly at: number;
  readonly session?: Session;
  readonly cmd: RegistryCommand;
}

/** ErrorCode says why a command did not apply (the API maps it to a gRPC status). */
export type ErrorCode = "not-found" | "failed-precondition" | "resource-exhausted" | "invalid-argument" | "stale-session";

/** CommandResult is what apply() returns for one command (the proposer gets it back). */
export type CommandResult =
  | {
      readonly ok: true;
      readonly index: number;
      /** duplicate: a retried sessioned write; this is the first application's result. */
      readonly duplicate?: boolean;
      /** succeeded: for kv.txn, whether the compares held (the success branch ran). */
      readonly succeeded?: boolean;
      /** prev: the previous KV entry of kv.put / kv.delete (one key). */
      readonly prev?: KvEntry;
      /** deleted: number of keys or instances removed. */
      readonly deleted?: number;
      /** gets: results of "get" operations of a transaction, in order. */
      readonly gets?: readonly (KvEntry | null)[];
      /** applied: for health.set, how many changes took effect (conditional ones may not). */
      readonly applied?: number;
      /** master and epoch: for failover, the service's master after it. */
      readonly master?: string;
      readonly epoch?: number;
    }
  | { readonly ok: false; readonly index: number; readonly code: ErrorCode; readonly message: string };

/** RegistryEvent is one change, as watches deliver it. Events of one entry share its index. */
export type RegistryEvent =
  | { readonly index: number; readonly kind: "service"; readonly type: "put"; readonly service: Service }
  | { readonly index: number; readonly kind: "service"; readonly type: "delete"; readonly name: string }
  /**
   * role: the instance's role after the entry (master-slave services), "" otherwise.
   * previousHealth: the instance's health just before this change, undefined for a new instance
   * (so followers need not keep a copy of every instance's health to tell a change of health).
   */
  | { readonly index: number; readonly kind: "instance"; readonly type: "put"; readonly instance: Instance; readonly previousHealth: Health | undefined; readonly role?: InstanceRole }
  | { readonly index: number; readonly kind: "instance"; readonly type: "delete"; readonly service: string; readonly id: string }
  | { readonly index: number; readonly kind: "kv"; readonly type: "put"; readonly entry: KvEntry }
  | { readonly index: number; readonly kind: "kv"; readonly type: "delete"; readonly key: string; readonly modIndex: number }
  /** A master-slave service's master changed: `master` ("" none) since epoch = index. */
  | {
      readonly index: number;
      readonly kind: "master";
      readonly type: "put";
      readonly service: string;
      readonly master: string;
      readonly previous: string;
      readonly epoch: number;
      readonly reason: MasterReason;
    };
