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

/**
 * METADATA_FINAL is set on an error that sending the same request again cannot change: a sessioned
 * write whose seq fell out of the session window (the node no longer knows whether an earlier try
 * applied, and will answer every resend the same). The code still says the outcome is unknown; the
 * client stops at once instead of resending until its deadline, and must read before writing again.
 */
export const METADATA_FINAL = "x-raftmesh-final";
