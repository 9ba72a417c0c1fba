/** Limits of the client API. Each is checked on entry and has a test. */

/** API_MESSAGE_BYTES_MAX and API_RESPONSE_BYTES_MAX are in src/common/limits.ts: the client sets them too. */
export { API_MESSAGE_BYTES_MAX, API_RESPONSE_BYTES_MAX } from "../common/limits.js";

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

/** LIST_RESPONSE_BYTES_MAX: a List page stops growing past 4 MiB of keys and values (more = true). */
export const LIST_RESPONSE_BYTES_MAX = 4 * 1024 * 1024;

/**
 * API_KEEPALIVE_TIME_MS and API_KEEPALIVE_TIMEOUT_MS: the client API server pings each connection
 * this often and closes one whose answer does not come in time. A peer that stopped inside an
 * HTTP/2 frame (a frame header declaring 16 MiB, then silence) held its connection and descriptor
 * open for ever otherwise (the HTTP/2 frame fuzz found it); every gRPC client answers pings by
 * itself, so live clients, idle watches included, are never cut. 30 s + 10 s bounds how long a dead
 * or stalled connection lives while costing one ping per half minute per connection.
 */
export const API_KEEPALIVE_TIME_MS = 30_000;
export const API_KEEPALIVE_TIMEOUT_MS = 10_000;

/**
 * API_STREAMS_PER_CONNECTION_MAX: one client connection runs at most this many calls at once (the
 * server's HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); more wait in the client until one ends, watches
 * included. HTTP/2 HEADERS frames are not flow-controlled, so without a bound one socket read
 * brought a whole burst — 3,000 linearizable reads — into one event-loop turn: ~450 ms of stream
 * set-up with no Raft tick, and the leader lost its term every time (test/bench/raft/burst.ts: 2 of
 * 2 bursts; with 1,000, 0 of 3, largest loop delay 195 ms). A client that needs more than 1,000
 * watches at once opens a second connection (a second RaftmeshClient: each has its own).
 */
export const API_STREAMS_PER_CONNECTION_MAX = 1_000;

/** API_CONNECTIONS_MAX and API_MEMBER_CONNECTIONS_RESERVED live beside the other shared limits (the config's default is the first). */
export { API_CONNECTIONS_MAX, API_MEMBER_CONNECTIONS_RESERVED } from "../common/limits.js";

/** API_CONNECTION_IDLE_MS: a connection with no call for this long is closed (GOAWAY); its client reconnects on its next call. */
export const API_CONNECTION_IDLE_MS = 5 * 60_000;
