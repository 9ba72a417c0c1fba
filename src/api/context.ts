import type { ClusterStateMachine } from "../node/cluster-state-machine.js";
import type { KvStateMachine } from "../node/kv-state-machine.js";
import type { RaftNode } from "../node/raft-node.js";
import type { Forwarder } from "./forwarder.js";

/** ApiContext is what the client API services need from the agent that hosts them. */
export interface ApiContext {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly version: string;
  readonly node: RaftNode;
  readonly cluster: ClusterStateMachine;
  readonly kv: KvStateMachine;
  readonly forwarder: Forwarder;
  /** addressOf is a member's addresses: recorded in the log, else from this node's configuration. */
  addressOf(id: string): { peer: string; api: string } | undefined;
}
