/**
 * Limits of the registry. Each is a named number with its reason, checked where input enters
 * (the API validates requests; the state machine re-checks what it must never hold), with a test.
 */

/** NAME_BYTES_MAX: service names and instance ids are DNS-label-like; 128 bytes leaves room for namespacing prefixes. */
export const NAME_BYTES_MAX = 128;
/** NAME_PATTERN: letters, digits, '.', '_', '-'; starts with a letter or digit. Names appear in hostnames, metrics and URLs. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
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
