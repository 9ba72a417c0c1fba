/**
 * The metrics module's numbers: histogram buckets (upper bounds, in base units) and the
 * cardinality limits of labelled series, each with the reason for it.
 */

/** PROPOSAL_BUCKETS_SECONDS: a write's propose-to-apply time; a LAN commit takes about a millisecond plus fsyncs, the deadline is seconds. */
export const PROPOSAL_BUCKETS_SECONDS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** FSYNC_BUCKETS_SECONDS: one synced LevelDB batch; tmpfs takes tens of microseconds, an SSD under a millisecond, a slow disk 100 ms and more. */
export const FSYNC_BUCKETS_SECONDS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** APPEND_RTT_BUCKETS_SECONDS: an append's round trip to a peer, which includes the peer's fsync; loopback is sub-millisecond, a WAN link 100 ms. */
export const APPEND_RTT_BUCKETS_SECONDS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** APPEND_PENDING_MS_MAX: an append unanswered this long (past the top bucket) is forgotten and timing starts again with the next one. */
export const APPEND_PENDING_MS_MAX = 2_000;

/** SNAPSHOT_DURATION_BUCKETS_SECONDS: writing a snapshot file and compacting the log; small registries take milliseconds, 100,000 instances about a second. */
export const SNAPSHOT_DURATION_BUCKETS_SECONDS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** SNAPSHOT_SIZE_BUCKETS_BYTES: 1 KiB to 1 GiB by factors of 4 (SNAPSHOT_DATA_BYTES_MAX is below the top). */
export const SNAPSHOT_SIZE_BUCKETS_BYTES: readonly number[] = Array.from({ length: 11 }, (_, i) => 1024 * 4 ** i);

/** API_BUCKETS_SECONDS: a client call, from a local read (~100 µs) to a write waiting out its deadline (seconds). */
export const API_BUCKETS_SECONDS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * REGISTRY_SERVICE_SERIES_MAX is the cardinality limit of the per-service registry series
 * (instances by service and health, master epochs): the registry may hold SERVICES_MAX (10,000)
 * services, which would be 40,000 series per scrape; past this many services the rest are summed
 * into service="_other". The same number as the balancer's STATS_SERVICES_MAX, for one reason.
 */
export const REGISTRY_SERVICE_SERIES_MAX = 256;

/** OTHER_SERVICE is the label value of the services past REGISTRY_SERVICE_SERIES_MAX. */
export const OTHER_SERVICE = "_other";
