/** Limits of the client API. Each is checked on entry and has a test. */

import { KV_VALUE_BYTES_MAX } from "../registry/limits.js";

/** VALUE_BYTES_MAX is the registry's value limit (src/registry/limits.ts), which the validators enforce. */
const VALUE_BYTES_MAX = KV_VALUE_BYTES_MAX;

/** WRITE_WAIT_MS_MAX bounds how long a write waits to be applied when the caller set no shorter deadline. */
export const WRITE_WAIT_MS_MAX = 10_000;

/** READ_WAIT_MS_MAX bounds how long a linearizable read waits for its read index. */
export const READ_WAIT_MS_MAX = 5_000;

/** TRANSFER_WAIT_MS_MAX bounds how long TransferLeader waits for the new leader to take over. */
export const TRANSFER_WAIT_MS_MAX = 5_000;

/**
 * PROMOTE_LAG_ENTRIES_MAX: a learner more than this many entries behind the leader's commit is
 * not promoted: as a voter it could not help form a quorum until it caught up, so a promotion
 * could leave the cluster unavailable.
 */
export const PROMOTE_LAG_ENTRIES_MAX = 1000;

/** API_MESSAGE_BYTES_MAX is the largest request a client may send: a maximal value plus room for the rest. */
export const API_MESSAGE_BYTES_MAX = VALUE_BYTES_MAX + 64 * 1024;

/**
 * API_RESPONSE_BYTES_MAX bounds one answer: a Get carries its value twice (value and kv.value),
 * and a List page is cut at LIST_RESPONSE_BYTES_MAX before it reaches this.
 */
export const API_RESPONSE_BYTES_MAX = 2 * VALUE_BYTES_MAX + 64 * 1024 + 4 * 1024 * 1024;

/** LIST_RESPONSE_BYTES_MAX: a List page stops growing past 4 MiB of keys and values (more = true). */
export const LIST_RESPONSE_BYTES_MAX = 4 * 1024 * 1024;
