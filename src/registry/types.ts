/**
 * The registry's data model and its commands. Commands are what the leader proposes (JSON in the
 * log); apply() is deterministic: time enters only as `at`, the cluster time (cluster-clock.ts)
 * stamped by the leader when it proposes.
 * Every change is identified by the Raft index of the entry that made it (the global index).
 */

export type Health = "passing" | "warning" | "critical";
export const HEALTH_VALUES: readonly Health[] = ["passing", "warning", "critical"];

export type ServiceMode = "active-active" | "master-slave";
export const SERVICE_MODES: readonly ServiceMode[] = ["active-active", "master-slave"];

export type BalancePolicy = "round-robin" | "random" | "weighted" | "least-connections" | "p2c";
export const BALANCE_POLICIES: readonly BalancePolicy[] = ["round-robin", "random", "weighted", "least-connections", "p2c"];

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
}

export const DEFAULT_SERVICE_CONFIG: ServiceConfig = {
  policy: "round-robin",
  mode: "active-active",
  retries: 2,
  retryBudgetPercent: 20,
  perTryTimeoutMs: 0,
  fallback: "",
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
  | { readonly op: "instance.register"; readonly instance: InstanceSpec }
  | { readonly op: "instance.deregister"; readonly service: string; readonly id: string }
  | { readonly op: "health.set"; readonly changes: readonly HealthChange[] }
  /** instance.reap removes an instance only if it is still critical and has been for its deregisterCriticalAfterMs (of cluster time). */
  | { readonly op: "instance.reap"; readonly service: string; readonly id: string }
  | { readonly op: "kv.put"; readonly key: string; readonly value: string }
  | { readonly op: "kv.delete"; readonly key: string; readonly prefix?: boolean }
  | {
      readonly op: "kv.txn";
      readonly compares: readonly KvCompare[];
      readonly success: readonly KvOp[];
      readonly failure: readonly KvOp[];
    };

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
    }
  | { readonly ok: false; readonly index: number; readonly code: ErrorCode; readonly message: string };

/** RegistryEvent is one change, as watches deliver it. Events of one entry share its index. */
export type RegistryEvent =
  | { readonly index: number; readonly kind: "service"; readonly type: "put"; readonly service: Service }
  | { readonly index: number; readonly kind: "service"; readonly type: "delete"; readonly name: string }
  | { readonly index: number; readonly kind: "instance"; readonly type: "put"; readonly instance: Instance }
  | { readonly index: number; readonly kind: "instance"; readonly type: "delete"; readonly service: string; readonly id: string }
  | { readonly index: number; readonly kind: "kv"; readonly type: "put"; readonly entry: KvEntry }
  | { readonly index: number; readonly kind: "kv"; readonly type: "delete"; readonly key: string; readonly modIndex: number };
