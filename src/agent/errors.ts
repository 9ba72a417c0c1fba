import type { NodeId } from "../raft/index.js";

/**
 * ClusterExistsError is thrown by Agent.start when this node's data directory is empty, bootstrap
 * is on, and a member answers that it already holds the cluster's state: this node is most likely
 * a member whose data was lost, and joining again as that voter would forget the votes it cast and
 * the entries it acknowledged. It names the member that answered and the repair procedure.
 */
export class ClusterExistsError extends Error {
  constructor(
    readonly nodeId: NodeId,
    readonly peer: NodeId,
    readonly term: number,
    readonly lastIndex: number,
  ) {
    super(
      `refusing to start: the data directory of ${nodeId} is empty, but member ${peer} already holds this cluster's state ` +
        `(term ${term}, last index ${lastIndex}); a member that lost its data must not rejoin as its old self, having forgotten its votes and log. ` +
        `Repair it (README, "Growing and repairing a cluster"): raftmesh members remove ${nodeId}; start ${nodeId} with --bootstrap false; ` +
        `raftmesh members add ${nodeId} --peer <host:port>; once it has caught up, raftmesh members promote ${nodeId}`,
    );
    this.name = "ClusterExistsError";
  }
}
