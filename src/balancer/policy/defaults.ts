/**
 * The balancer's defaults and limits, each with the reason for its number. Where Envoy or nginx
 * has a default for the same knob we take theirs, so operators meet no surprises.
 */

/** OUTLIER_CONSECUTIVE_FAILURES_DEFAULT: Envoy's consecutive_5xx default; five in a row is rarely bad luck. */
export const OUTLIER_CONSECUTIVE_FAILURES_DEFAULT = 5;

/** OUTLIER_BASE_EJECTION_MS_DEFAULT: Envoy's base_ejection_time (30 s), long enough for a restart, short enough to come back soon. */
export const OUTLIER_BASE_EJECTION_MS_DEFAULT = 30_000;

/** OUTLIER_MAX_EJECTION_PERCENT_DEFAULT: Envoy's max_ejection_percent (10 %); at least one endpoint may still be ejected. */
export const OUTLIER_MAX_EJECTION_PERCENT_DEFAULT = 10;

/** OUTLIER_MAX_EJECTION_MS: Envoy's max_ejection_time (300 s) caps base × ejections, so a flapping endpoint still gets retried. */
export const OUTLIER_MAX_EJECTION_MS = 300_000;

/**
 * OUTLIER_DECAY_MS: Envoy's outlier interval (10 s). An endpoint's ejection count drops by one for
 * every interval it spends back in service, so an old ejection does not lengthen a new one forever.
 */
export const OUTLIER_DECAY_MS = 10_000;

/** PANIC_THRESHOLD_PERCENT_DEFAULT: Envoy's healthy_panic_threshold (50 %); below it health checks are likelier wrong than the endpoints. */
export const PANIC_THRESHOLD_PERCENT_DEFAULT = 50;

/**
 * OVERPROVISIONING_FACTOR: Envoy's default (1.4). A priority level keeps all its traffic while
 * 1/1.4 ≈ 71 % of its endpoints are healthy, assuming capacity was provisioned with that headroom.
 */
export const OVERPROVISIONING_FACTOR = 1.4;

/** ZONE_MIN_HEALTHY_PERCENT_DEFAULT: 71 %, 1/OVERPROVISIONING_FACTOR rounded (as the registry's default): the zone spills over where a priority level would. */
export const ZONE_MIN_HEALTHY_PERCENT_DEFAULT = 71;

/** RETRY_BUDGET_PERCENT_DEFAULT: Envoy's retry budget_percent (20 %), also the registry's default. */
export const RETRY_BUDGET_PERCENT_DEFAULT = 20;

/** RETRY_BUDGET_MIN_CONCURRENCY: Envoy's min_retry_concurrency (3), so a quiet service can still retry. */
export const RETRY_BUDGET_MIN_CONCURRENCY = 3;

/** RETRIES_DEFAULT: the registry's default of 2 retries, as Envoy's retry policies commonly set num_retries. */
export const RETRIES_DEFAULT = 2;

/** CIRCUIT_MAX_CONNECTIONS_DEFAULT: Envoy's circuit breaker default (1024 each for connections, pending and requests). */
export const CIRCUIT_MAX_CONNECTIONS_DEFAULT = 1024;
/** CIRCUIT_MAX_PENDING_REQUESTS_DEFAULT: Envoy's default, see CIRCUIT_MAX_CONNECTIONS_DEFAULT. */
export const CIRCUIT_MAX_PENDING_REQUESTS_DEFAULT = 1024;
/** CIRCUIT_MAX_REQUESTS_DEFAULT: Envoy's default, see CIRCUIT_MAX_CONNECTIONS_DEFAULT. */
export const CIRCUIT_MAX_REQUESTS_DEFAULT = 1024;

/**
 * RING_VNODES_PER_ENDPOINT: ketama's 160 points per server (a share's spread is about 1/sqrt(160),
 * 8 % of itself). Points are per unit of weight (after dividing by the weights' gcd), not a share of
 * a fixed ring size as in Envoy, so removing an endpoint leaves every other endpoint's points where
 * they were and only the removed endpoint's keys move.
 */
export const RING_VNODES_PER_ENDPOINT = 160;
/** RING_SIZE_MAX: 2^20 points (8 MiB in two Int32Arrays) per level, 6,553 endpoints at 160 points each; past it points are scaled down. */
export const RING_SIZE_MAX = 1 << 20;

/** MAGLEV_TABLE_SIZE_MIN: Envoy's default table size, prime; Maglev wants size ≥ 100 × endpoints for ≤ 1 % imbalance. */
export const MAGLEV_TABLE_SIZE_MIN = 65_537;
/** MAGLEV_SLOTS_PER_ENDPOINT: the paper's 100 × endpoints rule; tables grow to the next prime above it. */
export const MAGLEV_SLOTS_PER_ENDPOINT = 100;

/** ENDPOINTS_MAX bounds one service's endpoints per table: tables stay at a few MiB and rebuilds at milliseconds. */
export const ENDPOINTS_MAX = 10_000;

/** WEIGHT_MAX: the registry's largest weight (src/registry/limits.ts WEIGHT_RANGE); sums stay exact in doubles. */
export const WEIGHT_MAX = 10_000;
