/**
 * Limits the client and the server must agree on. They live here, not in src/api or
 * src/registry, so the client can use them without importing the server; the server's own
 * limit files re-export or build on them, so each is still one number.
 */

/** KV_VALUE_BYTES_MAX: values are small config blobs (etcd's default request limit is 1.5 MiB). The registry enforces it. */
export const KV_VALUE_BYTES_MAX = 512 * 1024;

/** API_MESSAGE_BYTES_MAX is the largest request a client may send: a maximal value plus room for the rest. */
export const API_MESSAGE_BYTES_MAX = KV_VALUE_BYTES_MAX + 64 * 1024;

/**
 * API_RESPONSE_BYTES_MAX bounds one answer: a Get carries its value twice (value and kv.value),
 * and a List page is cut at LIST_RESPONSE_BYTES_MAX (src/api/limits.ts) before it reaches this.
 */
export const API_RESPONSE_BYTES_MAX = 2 * KV_VALUE_BYTES_MAX + 64 * 1024 + 4 * 1024 * 1024;

/**
 * SESSION_WINDOW: how many of a client's most recent sequence numbers the registry's session
 * table remembers. A client may have this many sessioned writes in flight at once, and they may
 * apply in any order; a seq older than the newest minus the window is refused as stale. The
 * bundled client keeps its writes in flight within it.
 */
export const SESSION_WINDOW = 128;

/** CLIENT_WRITE_RATE_DEFAULT: writes per second per client address (src/api/rate-limit.ts); a 3-node cluster commits some thousands a second in all, so one client gets a large share, not all of it. */
export const CLIENT_WRITE_RATE_DEFAULT = 5_000;

/** CLIENT_WATCH_RATE_DEFAULT: new watches per second per client address; a client opens its watches at start and after a reconnect, not continuously. */
export const CLIENT_WATCH_RATE_DEFAULT = 200;

/**
 * API_CONNECTIONS_MAX: by default (--api-connections-max) a node holds at most this many client API
 * connections at once; one more is closed as it is accepted (its client sees UNAVAILABLE and, with
 * more than one endpoint, tries the next node), counted in raftmesh_api_connections_refused_total.
 * A connection costs the node ~20 KB of native memory whether it carries calls or not (HTTP/2
 * session and socket state: 10,000 clients of their own added ~200 MiB to a leader's RSS,
 * test/bench/registry/agent-memory.ts), so the bound caps that at ~200 MiB and the node's file
 * descriptors at a known number. Clients that want many sessions over few sockets share one
 * (RaftmeshClient's connection: "shared").
 */
export const API_CONNECTIONS_MAX = 10_000;

/**
 * API_MEMBER_CONNECTIONS_RESERVED: past API_CONNECTIONS_MAX, connections from an address that may
 * be a member's (the cluster's own nodes forward writes and heartbeats to the leader's client API)
 * are still taken, up to this many more. Clients filling the bound must not cut a follower off
 * from its leader. The check is by address only, so where members are configured by host name
 * every address may be a member's and only the hard bound (the two together) holds.
 */
export const API_MEMBER_CONNECTIONS_RESERVED = 64;
