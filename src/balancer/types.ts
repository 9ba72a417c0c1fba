/**
 * The contract between the balancer's pure decision half (src/balancer/policy: which endpoint,
 * may this retry go, may this request start) and its data plane (listeners, proxying, pools, the
 * registry feed), which runs in worker threads and owns all I/O and time. Nothing here does I/O,
 * reads a clock or draws random numbers: time comes in as `nowMs`, randomness as `random()`.
 *
 * BalancerConfig is the balancer's own view of a service's replicated ServiceConfig
 * (src/registry/types.ts); the data plane fills it with balancerConfig() (policy/config.ts), which
 * documents the field-by-field mapping and supplies the defaults for fields the registry lacks.
 */

/** Health is an endpoint's health as the registry reports it. */
export type Health = "passing" | "warning" | "critical";

/** BalancePolicy names a picker: how one endpoint is chosen among the eligible ones. */
export type BalancePolicy = "round-robin" | "random" | "weighted" | "least-connections" | "p2c" | "hash";

/** HashMethod is the consistent-hash table of policy "hash": a ring of virtual nodes, or Maglev's lookup table. */
export type HashMethod = "ring" | "maglev";

/** BalancerConfig is one service's balancing settings, as the pickers, outlier detection, retry budget and circuit breaker read them. */
export interface BalancerConfig {
  readonly policy: BalancePolicy;
  /**
   * hashOn says what the data plane hashes for policy "hash": "header:<name>", "cookie:<name>"
   * or "source" (the client's address); "" with other policies. The policy half only sees the
   * resulting PickRequest.hashKey.
   */
  readonly hashOn: string;
  readonly hashMethod: HashMethod;
  /** retries is the most retries of one request (only where retrying is safe). */
  readonly retries: number;
  /** retryOn5xx retries a 5xx answer even for a non-idempotent method (the service says it is safe). */
  readonly retryOn5xx: boolean;
  /** retryBudgetPercent caps retries in flight at this share of requests in flight (with RETRY_BUDGET_MIN_CONCURRENCY as a floor). */
  readonly retryBudgetPercent: number;
  /** perTryTimeoutMs bounds one attempt; 0 means the request's own deadline. */
  readonly perTryTimeoutMs: number;
  /** fallback is the service to use when this one has no eligible endpoint ("" for none). */
  readonly fallback: string;
  /** fallbackStatus, when not 0, is the static answer's status when there is no endpoint and no fallback service. */
  readonly fallbackStatus: number;
  /** fallbackBody is the static answer's body. */
  readonly fallbackBody: string;
  /** outlierConsecutiveFailures ejects an endpoint after this many failures in a row; 0 turns ejection off. */
  readonly outlierConsecutiveFailures: number;
  /** outlierBaseEjectionMs is the first ejection's length; the n-th lasts n times as long (capped). */
  readonly outlierBaseEjectionMs: number;
  /** outlierMaxEjectionPercent is the largest share of a service's endpoints ejected at once (at least one may be, never the last). */
  readonly outlierMaxEjectionPercent: number;
  /** panicThresholdPercent: below this share of healthy endpoints, route to all of them regardless of health; 0 turns panic off. */
  readonly panicThresholdPercent: number;
  /** zoneMinHealthyPercent: traffic stays in the local zone while at least this share of its endpoints is healthy. */
  readonly zoneMinHealthyPercent: number;
  /** upstreamTls: tries dial the endpoints over TLS (the worker's upstream CA and client certificate). */
  readonly upstreamTls: boolean;
  /** upstreamTlsServerName is the SNI and the name checked in the endpoint's certificate ("": the endpoint's address). */
  readonly upstreamTlsServerName: string;
  /** upstreamTlsVerify: the endpoint's certificate must verify (false: encrypted, not authenticated). */
  readonly upstreamTlsVerify: boolean;
  /** maxConnections bounds upstream connections of the service (per circuit breaker); 0 means no bound. */
  readonly maxConnections: number;
  /** maxPendingRequests bounds requests waiting for a connection; 0 means no bound. */
  readonly maxPendingRequests: number;
  /** maxRequests bounds concurrent requests to the service; 0 means no bound. */
  readonly maxRequests: number;
}

/** Endpoint is one instance of a service as the balancer routes to it. */
export interface Endpoint {
  /** id is the instance id, unique within the service; state (load, ejections) follows it across updates. */
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** weight is the endpoint's relative share for weighted policies; a positive integer. */
  readonly weight: number;
  /** priority: the lowest value is the first level; higher levels take traffic only when it is short of healthy endpoints. */
  readonly priority: number;
  readonly zone: string;
  readonly health: Health;
}

/** EndpointChange is a patch's content: endpoints added or replaced by id, and ids removed. */
export interface EndpointChange {
  readonly put: readonly Endpoint[];
  readonly removed: readonly string[];
}

/** ServiceTable is everything the balancer knows of one service at one moment. */
export interface ServiceTable {
  readonly name: string;
  readonly config: BalancerConfig;
  readonly endpoints: readonly Endpoint[];
  /**
   * master is set for master-slave services: only this endpoint receives traffic. The data plane
   * passes the master of the newest epoch it has seen; the balancer also ignores an update whose
   * master has an older epoch than the one it routes to. A master-slave service without a master
   * passes { id: "", epoch }: nothing is eligible. Leaving master out means active-active, where
   * every endpoint may take traffic, so it must never stand for "no master".
   */
  readonly master?: { readonly id: string; readonly epoch: number };
}

/** PickRequest is what one pick may depend on besides the table. */
export interface PickRequest {
  /** hashKey is the value hashed by policy "hash" (a header, a cookie, the source address); ignored by other policies. */
  readonly hashKey?: string;
  /** exclude lists endpoint ids already tried by this request, so a retry goes elsewhere. */
  readonly exclude?: ReadonlySet<string>;
}

/** Outcome is how a request to an endpoint ended, as far as outlier detection is concerned. */
export type Outcome = "success" | "failure";

/**
 * ServiceBalancer picks endpoints of one service; each worker keeps one per service. Calls are
 * synchronous and cheap; pick() allocates nothing on its hot path.
 */
export interface ServiceBalancer {
  /** update replaces the table (endpoint set or config changed); endpoints that survive by id keep their state. */
  update(table: ServiceTable): void;
  /**
   * patch is update for a change of a few endpoints: `endpoints` is the table's new endpoints in
   * id order, `change` the endpoints put (added or replaced by id) and the ids removed to get
   * there. It costs O(the change), where update costs O(the table); it throws BalancerConfigError,
   * changing nothing, for an endpoint update would refuse.
   */
  patch(endpoints: readonly Endpoint[], change: EndpointChange): void;
  /** pick chooses an endpoint for one try, or undefined when no endpoint is eligible (fallback or 503). */
  pick(req: PickRequest, nowMs: number): Endpoint | undefined;
  /** onStart records that a request to endpoint `id` began (least-connections, p2c). Unknown ids are ignored. */
  onStart(id: string): void;
  /** onEnd records that a request to `id` ended; a failure feeds outlier detection (true: it ejected the endpoint). Each onStart has exactly one onEnd. */
  onEnd(id: string, outcome: Outcome, nowMs: number): boolean;
}

/** BalancerDeps is what a balancer needs from its host: randomness in [0, 1) and the node's own zone. */
export interface BalancerDeps {
  random(): number;
  readonly localZone: string;
}

/** CreateServiceBalancer is the type of createServiceBalancer (src/balancer/policy/index.ts). */
export type CreateServiceBalancer = (table: ServiceTable, deps: BalancerDeps) => ServiceBalancer;

/**
 * RetryBudget bounds retries in flight of one service, Envoy-style: a retry may start while
 * retries in flight < max(minConcurrency, budgetPercent × requests in flight). Pure counters.
 */
export interface RetryBudget {
  /** onRequestStart counts a request (its first try) in flight. */
  onRequestStart(): void;
  /** onRequestEnd counts it out. */
  onRequestEnd(): void;
  /** tryStartRetry reserves a retry if the budget allows; true means it must be matched by onRetryEnd. */
  tryStartRetry(): boolean;
  /** onRetryEnd releases a retry reserved by tryStartRetry. */
  onRetryEnd(): void;
  /** setPercent changes the budget share (config update). */
  setPercent(percent: number): void;
}

/** BreakerLimit names the circuit breaker's limits, for the 503 body and metrics. */
export type BreakerLimit = "connections" | "pending" | "requests";

/**
 * CircuitBreaker bounds one service's upstream connections, requests waiting for a connection and
 * requests in flight. Each try* that returns true must be matched by its release.
 */
export interface CircuitBreaker {
  tryOpenConnection(): boolean;
  onConnectionClosed(): void;
  tryEnqueuePending(): boolean;
  onPendingDequeued(): void;
  tryStartRequest(): boolean;
  onRequestEnd(): void;
  /** setLimits changes the limits (config update); counts in flight are kept and drain. */
  setLimits(limits: { readonly maxConnections: number; readonly maxPendingRequests: number; readonly maxRequests: number }): void;
  /** counts returns the current counts, for metrics and tests. */
  counts(): { readonly connections: number; readonly pending: number; readonly requests: number };
}
