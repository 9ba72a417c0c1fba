/**
 * Limits of the Raft core. Each is a default the host may lower or raise through RaftOptions; each
 * says why it has the number it has.
 */

/** MESSAGE_BYTES_MAX bounds the entries in one append: 1 MiB keeps a single gRPC frame well under grpc-js's 4 MiB default and lets heartbeats interleave. */
export const MESSAGE_BYTES_MAX = 1024 * 1024;

/** INFLIGHT_MESSAGES_MAX bounds unacknowledged appends per follower: 256 pipelined batches cover a 50 ms round trip at 5,000 batches/s. */
export const INFLIGHT_MESSAGES_MAX = 256;

/** INFLIGHT_BYTES_MAX bounds unacknowledged append bytes per follower, so a slow follower costs the leader at most 32 MiB of buffers. */
export const INFLIGHT_BYTES_MAX = 32 * 1024 * 1024;

/** UNCOMMITTED_BYTES_MAX bounds the uncommitted tail of the leader's log; past it proposals fail fast instead of queuing while there is no quorum. */
export const UNCOMMITTED_BYTES_MAX = 64 * 1024 * 1024;

/** COMMITTED_BYTES_PER_READY_MAX bounds the entries handed to the state machine in one ready, so one apply step stays short. */
export const COMMITTED_BYTES_PER_READY_MAX = 16 * 1024 * 1024;

/** PENDING_READS_MAX bounds reads waiting for a quorum round on a leader; a partitioned leader must not gather reads without limit. */
export const PENDING_READS_MAX = 100_000;

/**
 * PENDING_READ_TICKS_MAX bounds how long a leader holds a read that no quorum round has confirmed:
 * 1,000 ticks is 10 s at the default 10 ms tick, twice the longest a client read waits (5 s), so
 * only reads whose callers have given up are dropped. Hosts with another tick length set it from
 * their own read timeout.
 */
export const PENDING_READ_TICKS_MAX = 1_000;

/** ENTRY_OVERHEAD_BYTES is what an entry costs beyond its data (term, index, kind, framing) when sizes are counted. */
export const ENTRY_OVERHEAD_BYTES = 24;

/** ELECTION_TICK_MIN is the smallest election timeout in ticks the core accepts: it must exceed the heartbeat interval. */
export const ELECTION_TICK_MIN = 2;

/**
 * EARLY_CAMPAIGN_SLOT_DIVISOR: after its leader's connection ends, a follower campaigns in the
 * slot of its rank among the other voters (sorted by id, the old leader left out): rank r after
 * 1 + r·slot ticks, a slot being electionTick/6 (50 ms at the defaults). Every follower of a
 * crashed leader sees its connection end at about the same instant. With a random delay (it was
 * 1..electionTick/3 ticks) two followers drew pre-votes close enough to grant each other's about
 * one round in fifteen on a loaded machine, both then campaigned in the same term, split the vote
 * and waited out a whole election timeout (a 550-790 ms failover instead of ~150). In rank order
 * the first campaigns at the next tick and the next one a slot later, which is longer than a
 * pre-vote's round trip plus the spread of the followers' notices (10-45 ms measured), so the
 * first's pre-vote has made it a candidate before the second asks. A first whose log is behind is
 * refused, and the next wins a slot later. The order is the same each time, which only decides
 * which live node leads, never whether an election is safe.
 */
export const EARLY_CAMPAIGN_SLOT_DIVISOR = 6;
