/**
 * The one place the runner chooses its cluster: `netns` is the real harness (five agents in
 * network namespaces with nftables partitions), `loopback` is for developing the runner only.
 */
import { createJepsenCluster } from "../harness/cluster.js";
import type { JepsenCluster, JepsenClusterOptions } from "../harness/types.js";
import { LoopbackCluster } from "./loopback-cluster.js";

/** CLUSTER_KINDS are the values of --cluster. */
export const CLUSTER_KINDS = ["netns", "loopback"] as const;

/** ClusterKind is one of CLUSTER_KINDS. */
export type ClusterKind = (typeof CLUSTER_KINDS)[number];

/** ClusterFactory creates a cluster with every agent started. */
export type ClusterFactory = (opts: JepsenClusterOptions) => Promise<JepsenCluster>;

/** CLUSTER_FACTORIES maps --cluster to its factory. */
export const CLUSTER_FACTORIES: Record<ClusterKind, ClusterFactory> = {
  netns: createJepsenCluster,
  loopback: LoopbackCluster.create,
};
