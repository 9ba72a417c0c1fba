/**
 * EVENT_RING_MAX is how many recent events a node keeps for replay (the stream's from_seq, the
 * status page, `raftmesh events`). An event is a few hundred bytes, so the ring stays under about
 * half a MiB; 1,024 covers many minutes of a busy cluster's leader changes, health flips and
 * failovers, and health flaps of a large fleet go to watches, not to this stream.
 */
export const EVENT_RING_MAX = 1_024;

/**
 * EVENT_FOLLOWER_QUEUE_MAX is how many events may wait for one stream follower (gRPC or the
 * page's server-sent events) that does not read: past it the follower is ended with a lagging
 * error and resumes from its last seq, replayed from the ring, instead of holding memory.
 * A quarter of the ring, so a follower ended for lagging still finds its seq in the ring.
 */
export const EVENT_FOLLOWER_QUEUE_MAX = 256;

/**
 * BALANCER_SIGNAL_MIN_GAP_MS: a worker reports the same signal (kind, service, instance) at most
 * this often; an overload may refuse thousands of requests a second, and one event per second per
 * subject says all an operator needs.
 */
export const BALANCER_SIGNAL_MIN_GAP_MS = 1_000;

/** REACHABILITY_CHECK_MS is how often a node looks at its peers' reachability (and evaluates alert rules). */
export const REACHABILITY_CHECK_MS = 500;
