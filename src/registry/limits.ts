/**
 * Limits of the registry. Each is a named number with its reason, checked where input enters
 * (the API validates requests; the state machine re-checks what it must never hold), with a test.
 */

/** NAME_BYTES_MAX: service names and instance ids are DNS-label-like; 128 bytes leaves room for namespacing prefixes. */
export const NAME_BYTES_MAX = 128;
/** NAME_PATTERN: letters, digits, '.', '_', '-'; starts with a letter or digit. Names appear in hostnames, metrics and URLs. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/**
 * ADDRESS_PATTERN: a host name, an IPv4 or IPv6 literal (with brackets or a %zone): letters,
 * digits and . - _ : % [ ]. No spaces, NUL or line breaks: an address is dialled by the balancer
 * and written into logs and HTTP headers, where such bytes cut or forge what follows.
 */
export const ADDRESS_PATTERN = /^[A-Za-z0-9._:%[\]-]+$/;
/** CONTROL_CHARS: C0 controls and DEL. Refused in tags and KV keys, which end up in terminals, logs and header values. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this pattern finds.
export const CONTROL_CHARS = /[\x00-\x1f\x7f]/;
/** TAGS_MAX and TAG_BYTES_MAX bound what every watch event and list answer carries per instance. */
export const TAGS_MAX = 32;
export const TAG_BYTES_MAX = 128;
/** METADATA_ENTRIES_MAX, METADATA_KEY_BYTES_MAX, METADATA_VALUE_BYTES_MAX bound instance metadata (Consul allows 64 pairs of 128/512 bytes). */
export const METADATA_ENTRIES_MAX = 64;
export const METADATA_KEY_BYTES_MAX = 128;
export const METADATA_VALUE_BYTES_MAX = 512;
/** INSTANCES_PER_SERVICE_MAX: one service's instance list travels in one answer and one balancer table. */
export const INSTANCES_PER_SERVICE_MAX = 10_000;
/** SERVICES_MAX bounds the registry as a whole (100,000 instances is the measured target; services stay well below). */
export const SERVICES_MAX = 10_000;
/** WEIGHT_RANGE: weights feed smooth weighted round-robin; 0 drains an instance, 10,000 allows fine ratios. */
export const WEIGHT_RANGE = [0, 10_000] as const;
/** PRIORITY_RANGE: a lower number is preferred when a standby is promoted. */
export const PRIORITY_RANGE = [0, 1_000_000] as const;
/** TTL_MS_RANGE: below 1 s heartbeats would flood the leader; above 1 h a dead instance stays passing for too long. */
export const TTL_MS_RANGE = [1_000, 3_600_000] as const;
/** DEREGISTER_CRITICAL_AFTER_MS_RANGE: 0 disables; at least 10 s so a short outage does not lose registrations; at most 7 days. */
export const DEREGISTER_CRITICAL_AFTER_MS_RANGE = [0, 7 * 24 * 3_600_000] as const;
/** NOTE_BYTES_MAX bounds the status note a heartbeat may carry. */
export const NOTE_BYTES_MAX = 1_024;
/** KV_KEY_BYTES_MAX: keys are names. KV_VALUE_BYTES_MAX (src/common/limits.ts) is shared with the client. */
export const KV_KEY_BYTES_MAX = 1_024;
export { KV_VALUE_BYTES_MAX } from "../common/limits.js";
/** KV_KEYS_MAX bounds the KV as a whole, so a snapshot stays within memory and transfer budgets. */
export const KV_KEYS_MAX = 1_000_000;
/** TXN_OPS_MAX bounds compares plus operations of one transaction (etcd allows 128). */
export const TXN_OPS_MAX = 128;
/** LIST_LIMIT_MAX bounds one list answer; callers page with a start key. */
export const LIST_LIMIT_MAX = 10_000;
/** HISTORY_EVENTS_MAX: watches can resume from any of the last this-many changes; older indexes get OUT_OF_RANGE. */
export const HISTORY_EVENTS_MAX = 100_000;

/**
 * HISTORY_BYTES_MAX: and at most this many bytes of them (estimated). At ~1 KiB per ordinary
 * change, 100,000 changes fit many times over; the bound only engages for large KV values, which
 * the history would otherwise keep long after they were overwritten (100,000 × 512 KiB = 50 GiB).
 * 256 MiB keeps a few hundred maximal values replayable (a watch from 0 over 300 values of up to
 * 512 KiB still sees them all); the watch layer's shared encodings can double it at most.
 */
export const HISTORY_BYTES_MAX = 256 * 1024 * 1024;
/** SESSIONS_MAX bounds the at-most-once table; the least recently used client is forgotten first. */
export const SESSIONS_MAX = 10_000;
/** SESSION_IDLE_MS: a client silent this long (by leader-stamped time) is forgotten; its retries after that may apply twice. */
export const SESSION_IDLE_MS = 60 * 60 * 1_000;
/** CLIENT_ID_BYTES_MAX bounds session client ids. */
export const CLIENT_ID_BYTES_MAX = 64;
/** DEREGISTER_CRITICAL_AFTER_MS_MIN: a non-zero deregisterCriticalAfterMs is at least 10 s (see DEREGISTER_CRITICAL_AFTER_MS_RANGE: 0 disables). */
export const DEREGISTER_CRITICAL_AFTER_MS_MIN = 10_000;
/** ADDRESS_BYTES_MAX: a host name is at most 253 bytes; 255 also fits any IPv6 literal with a zone. */
export const ADDRESS_BYTES_MAX = 255;
/** ZONE_BYTES_MAX: zones are short labels ("eu-west-1a"); they appear in every balancer table. */
export const ZONE_BYTES_MAX = 64;
/** SERVICE_RETRIES_MAX: more than 10 retries of one request only multiplies an overload. */
export const SERVICE_RETRIES_MAX = 10;
/** RETRY_BUDGET_PERCENT_MAX: the retry budget is a share of requests. */
export const RETRY_BUDGET_PERCENT_MAX = 100;
/** PER_TRY_TIMEOUT_MS_MAX: one attempt longer than 10 minutes is a stuck request, not a slow one. */
export const PER_TRY_TIMEOUT_MS_MAX = 600_000;
/** HEALTH_CHANGES_MAX bounds one health.set command (the lease tracker sends at most 1,000; operators fewer). */
export const HEALTH_CHANGES_MAX = 10_000;
/** SESSION_WINDOW (src/common/limits.ts): the session table's window, shared with the client that keeps its writes within it. */
export { SESSION_WINDOW } from "../common/limits.js";

// ------------------------------------------------------------ failover (master-slave services)

/** MAX_LAG_ON_FAILOVER_DEFAULT: 0, no lag rule. Positions are opaque (bytes of WAL, transaction ids, …), so no default lag fits all; Patroni's 1 MiB is for PostgreSQL LSNs. */
export const MAX_LAG_ON_FAILOVER_DEFAULT = 0;
/** REPLICATION_POSITION_MAX: positions travel as uint64 but are JS numbers (src/common/proto.ts loads longs as Number); above 2^53 - 1 they would silently round, so they are refused. */
export const REPLICATION_POSITION_MAX = Number.MAX_SAFE_INTEGER;
/** FAILBACK_HOLD_DOWN_MS_DEFAULT: 30 s, several TTLs of the default 5 s lease, so an instance that flaps is not handed the master role back and forth. */
export const FAILBACK_HOLD_DOWN_MS_DEFAULT = 30_000;
/** FAILBACK_HOLD_DOWN_MS_RANGE: at least 1 s (one minimal TTL, or fail-back could chase every heartbeat); at most a day. */
export const FAILBACK_HOLD_DOWN_MS_RANGE = [1_000, 86_400_000] as const;

// ------------------------------------------------------------ balancing (carried for src/balancer)

/** HASH_ON_BYTES_MAX: "header:" or "cookie:" plus a header or cookie name; 128 bytes is far above real names. */
export const HASH_ON_BYTES_MAX = 128;
/** TLS_SERVER_NAME_BYTES_MAX: a DNS name is at most 253 bytes in text form (RFC 1035 §2.3.4). */
export const TLS_SERVER_NAME_BYTES_MAX = 253;
/** FALLBACK_STATUS_DEFAULT: 503 Service Unavailable, what nginx and Envoy answer when no upstream is healthy. */
export const FALLBACK_STATUS_DEFAULT = 503;
/** FALLBACK_STATUS_RANGE: a static answer is a final HTTP status (no 1xx). */
export const FALLBACK_STATUS_RANGE = [200, 599] as const;
/** FALLBACK_BODY_BYTES_MAX: the body travels in every service event and snapshot row; 4 KiB fits an error page. */
export const FALLBACK_BODY_BYTES_MAX = 4_096;
/** OUTLIER_CONSECUTIVE_FAILURES_DEFAULT: Envoy's consecutive_5xx default. 0 turns outlier ejection off. */
export const OUTLIER_CONSECUTIVE_FAILURES_DEFAULT = 5;
/** OUTLIER_CONSECUTIVE_FAILURES_MAX: beyond 1,000 in a row an instance is not an outlier but down (health checks catch it). */
export const OUTLIER_CONSECUTIVE_FAILURES_MAX = 1_000;
/** OUTLIER_BASE_EJECTION_MS_DEFAULT: Envoy's base_ejection_time, 30 s (multiplied by the number of ejections). */
export const OUTLIER_BASE_EJECTION_MS_DEFAULT = 30_000;
/** OUTLIER_BASE_EJECTION_MS_RANGE: at least 100 ms (shorter is no ejection), at most 1 h (longer and an instance is lost, not resting). */
export const OUTLIER_BASE_EJECTION_MS_RANGE = [100, 3_600_000] as const;
/** OUTLIER_MAX_EJECTION_PERCENT_DEFAULT: Envoy's max_ejection_percent, 10 %. */
export const OUTLIER_MAX_EJECTION_PERCENT_DEFAULT = 10;
/** PANIC_THRESHOLD_PERCENT_DEFAULT: Envoy's healthy_panic_threshold, 50 % (0 never panics). */
export const PANIC_THRESHOLD_PERCENT_DEFAULT = 50;
/** CIRCUIT_MAX_DEFAULT: Envoy's circuit-breaker defaults for max_connections, max_pending_requests and max_requests, 1,024 each. */
export const CIRCUIT_MAX_DEFAULT = 1_024;
/** CIRCUIT_MAX_RANGE: at least 1 (0 would refuse everything), at most 1,000,000 (above that the process runs out of descriptors first). */
export const CIRCUIT_MAX_RANGE = [1, 1_000_000] as const;
/** ZONE_MIN_HEALTHY_PERCENT_DEFAULT: Envoy spills out of a locality when fewer than 1/1.4 (its overprovisioning factor) ≈ 71 % are healthy. */
export const ZONE_MIN_HEALTHY_PERCENT_DEFAULT = 71;
/** PERCENT_RANGE: shares of instances or requests. */
export const PERCENT_RANGE = [0, 100] as const;

// ------------------------------------------------------------ access control (acl.ts)

/** ACL_TOKENS_MAX bounds the tokens of a cluster: one per application or operator is hundreds; 10,000 (Consul's tokens are also kept in memory) keeps every node's table and snapshot small. */
export const ACL_TOKENS_MAX = 10_000;
/** ACL_RULES_PER_TOKEN_MAX: a token is checked rule by rule on every call; 32 rules cover a service and its keys many times over. */
export const ACL_RULES_PER_TOKEN_MAX = 32;
/** ACL_NAME_BYTES_MAX: a token name says whose it is ("orders deployer"); it is listed, never matched. */
export const ACL_NAME_BYTES_MAX = 128;
/** ACL_SCOPE_BYTES_MAX: a service scope is a name (NAME_BYTES_MAX) plus "*"; a key scope a key prefix, well below KV_KEY_BYTES_MAX in practice. */
export const ACL_SCOPE_BYTES_MAX = 1_024;
