/**
 * Limits of the node's local agent. Each number says why it is that number; each has a test at
 * the limit (test/unit/local/).
 */

/**
 * LOCAL_NOTE_BYTES_MAX is the longest note the local agent sends with a heartbeat: the registry's
 * NOTE_BYTES_MAX (src/registry/limits.ts), which refuses a longer one. It is repeated here because
 * src/local talks to the node only through the client API and imports no server module; a unit
 * test holds the two equal.
 */
export const LOCAL_NOTE_BYTES_MAX = 1_024;

/**
 * CHECK_OUTPUT_BYTES_MAX bounds what a script check keeps of its stdout and stderr together: a
 * note holds at most LOCAL_NOTE_BYTES_MAX, so reading more only costs memory. The rest is drained
 * (the script is never blocked on a full pipe) and dropped.
 */
export const CHECK_OUTPUT_BYTES_MAX = LOCAL_NOTE_BYTES_MAX;

/** HTTP_BODY_BYTES_MAX bounds how much of an HTTP check's answer is read to look for the expected body: a health page, not a download. */
export const HTTP_BODY_BYTES_MAX = 64 * 1024;

/** DEFINITION_FILE_BYTES_MAX: a definition file describes a few services; a bigger file is a mistake (a log or binary in the directory). */
export const DEFINITION_FILE_BYTES_MAX = 1024 * 1024;

/** DEFINITION_FILES_MAX bounds the files read from the services directory in one load. */
export const DEFINITION_FILES_MAX = 1_000;

/**
 * LOCAL_INSTANCES_MAX bounds the instances one node runs on behalf of others: each costs a
 * heartbeat every TTL/3 and its checks; a thousand keeps the loopback traffic small.
 */
export const LOCAL_INSTANCES_MAX = 1_000;

/** CHECKS_PER_INSTANCE_MAX: a handful is normal (Consul users rarely go past three); 32 leaves room and bounds the work. */
export const CHECKS_PER_INSTANCE_MAX = 32;

/** CHECK_INTERVAL_MS_RANGE: under 100 ms a check becomes load on what it checks; over an hour it says nothing. */
export const CHECK_INTERVAL_MS_RANGE = [100, 3_600_000] as const;
/** CHECK_INTERVAL_MS_DEFAULT: Consul's and HAProxy's usual cadence is a few seconds; 2 s sees a failure within the default TTL. */
export const CHECK_INTERVAL_MS_DEFAULT = 2_000;

/** CHECK_TIMEOUT_MS_RANGE: a check gets at least 10 ms and at most 5 minutes (a slow script), after which it is killed and critical. */
export const CHECK_TIMEOUT_MS_RANGE = [10, 300_000] as const;
/** CHECK_TIMEOUT_MS_DEFAULT: 1 s, HAProxy's `timeout check` habit; a health endpoint slower than that is unhealthy. */
export const CHECK_TIMEOUT_MS_DEFAULT = 1_000;

/** RISE_FALL_RANGE: HAProxy's rise/fall; 1 reacts to every result, 100 is beyond any sensible damping. */
export const RISE_FALL_RANGE = [1, 100] as const;
/** RISE_DEFAULT and FALL_DEFAULT are HAProxy's defaults (rise 2, fall 3). */
export const RISE_DEFAULT = 2;
export const FALL_DEFAULT = 3;

/** JITTER_MS_MAX bounds the random delay added to each check's interval so checks do not align (an hour, the longest interval). */
export const JITTER_MS_MAX = 3_600_000;

/** ADMIN_BODY_BYTES_MAX bounds a definition sent to the admin endpoint: the same as a file. */
export const ADMIN_BODY_BYTES_MAX = DEFINITION_FILE_BYTES_MAX;
