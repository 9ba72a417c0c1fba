/**
 * The gRPC metadata keys of the client API that the server sets and the client reads. They live
 * here so the client does not import the server to read them.
 */

/** METADATA_LEADER carries the leader's id, when known, on UNAVAILABLE answers. */
export const METADATA_LEADER = "x-raftmesh-leader";
/** METADATA_LEADER_API carries the leader's client API address, when known. */
export const METADATA_LEADER_API = "x-raftmesh-leader-api";

/**
 * METADATA_NOT_APPLIED is set on an error when the server knows the request did not take effect
 * (no leader, not the leader, a limit hit before proposing), so a client may send it again.
 */
export const METADATA_NOT_APPLIED = "x-raftmesh-not-applied";
