import type { LeaseDriver } from "../agent/lease-driver.js";
import type { UnsafeSwitches } from "../agent/unsafe.js";
import type { ClusterStateMachine } from "../node/cluster-state-machine.js";
import type { RaftNode } from "../node/raft-node.js";
import type { HeartbeatBatcher } from "../registry/heartbeat-batcher.js";
import type { RegistryStateMachine } from "../registry/state-machine.js";
import type { WatchHub } from "../registry/watch-hub.js";
import type { Forwarder } from "./forwarder.js";
import type { HeartbeatRequestMsg, RenewResultMsg } from "../common/messages.js";

/** ApiContext is what the client API services need from the agent that hosts them. */
export interface ApiContext {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly version: string;
  readonly node: RaftNode;
  readonly cluster: ClusterStateMachine;
  readonly registry: RegistryStateMachine;
  readonly leases: LeaseDriver;
  readonly hub: WatchHub;
  /** batcher sends a follower's heartbeats to the leader in batches. */
  readonly batcher: HeartbeatBatcher<HeartbeatRequestMsg, RenewResultMsg>;
  readonly forwarder: Forwarder;
  /** clusterTime stamps commands: the cluster time for this node's current term (src/registry/cluster-clock.ts). */
  readonly clusterTime: { now(): number };
  /** unsafe are the negative-control switches of the fault-injection suite (all off in normal use). */
  readonly unsafe: UnsafeSwitches;
  /** addressOf is a member's addresses: recorded in the log, else from this node's configuration. */
  addressOf(id: string): { peer: string; api: string } | undefined;
}
