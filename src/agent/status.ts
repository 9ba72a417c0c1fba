import type { NodeStatusMsg } from "../common/messages.js";
import type { RaftNode } from "../node/raft-node.js";
import { Role } from "../raft/index.js";

/** StatusSources are what a node's status is assembled from. */
export interface StatusSources {
  readonly node: Pick<RaftNode, "status" | "snapshotIndex" | "appliedIndex">;
  readonly clusterId: string;
  readonly version: string;
  readonly addressOf: (id: string) => { api: string } | undefined;
}

/** nodeStatus is this node's own view, as Cluster.Status and the admin endpoint report it. */
export function nodeStatus(src: StatusSources): NodeStatusMsg {
  const st = src.node.status();
  const learner = st.learners.includes(st.id);
  return {
    id: st.id,
    clusterId: src.clusterId,
    role: learner && st.role === Role.Follower ? "learner" : st.role,
    leader: st.lead,
    term: st.term,
    commit: st.commit,
    // The machine's, not the core's: during a snapshot install the core's runs ahead of the state (a
    // learner reported the leader's commit as applied 2 s before its registry held it).
    applied: src.node.appliedIndex(),
    lastIndex: st.lastIndex,
    voters: [...st.voters],
    learners: [...st.learners],
    api: src.addressOf(st.id)?.api ?? "",
    snapshotIndex: src.node.snapshotIndex(),
    version: src.version,
  };
}
