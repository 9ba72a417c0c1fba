/**
 * The contract between the Jepsen-style cluster harness (network namespaces, processes, nemesis)
 * and the runner (workloads, history, checkers, report). Node ids are n1..n5.
 */

/** JepsenCluster is five real agents, each in its own network namespace. */
export interface JepsenCluster {
  readonly nodes: readonly string[];
  /** apiAddress is "ip:port" of a node's client API, reachable from the root namespace. */
  apiAddress(node: string): string;
  /** balancerAddress is "ip:port" of a node's balancing endpoint, reachable from the root namespace. */
  balancerAddress(node: string): string;
  /** start (re)starts a node's agent on its data directory; resolves once the process is spawned. */
  start(node: string): Promise<void>;
  /** kill sends SIGKILL and waits for the process to exit. */
  kill(node: string): Promise<void>;
  /** pause sends SIGSTOP; resume sends SIGCONT. */
  pause(node: string): Promise<void>;
  resume(node: string): Promise<void>;
  isRunning(node: string): boolean;
  /**
   * partition drops packets between groups: every node in one group stops receiving from every
   * node of another (nftables drop on the receiving side). Nodes not listed keep all links.
   * Replaces any earlier partition.
   */
  partition(groups: readonly (readonly string[])[]): Promise<void>;
  /** cutOneWay drops packets from `from` as received by `to` only (asymmetric). Adds to the current cuts. */
  cutOneWay(from: string, to: string): Promise<void>;
  /** heal removes every cut. */
  heal(): Promise<void>;
  /** leader asks the nodes (with a short deadline) and returns the leader most of them report, if any. */
  leader(): Promise<string | undefined>;
  /** wipe deletes a stopped node's data directory (membership faults); optional: loopback clusters lack it. */
  wipe?(node: string): void;
  /** startEmpty starts a wiped node with bootstrap off, so it waits for `members add`; optional like wipe. */
  startEmpty?(node: string): Promise<void>;
  /** memberAddresses are the peer and API addresses the cluster should record when node is added back. */
  memberAddresses?(node: string): { peer: string; api: string };
  /** adminAddress is "ip:port" of a node's admin HTTP endpoint (clock faults); optional like wipe. */
  adminAddress?(node: string): string;
  /** logPath is where a node's stdout/stderr go. */
  logPath(node: string): string;
  /** cleanup kills every process, removes every namespace, link, rule and data directory it made. */
  cleanup(): Promise<void>;
}

/** JepsenClusterOptions configure the harness. */
export interface JepsenClusterOptions {
  /** runDir holds data directories and logs. */
  readonly runDir: string;
  /** extraEnv is added to every agent's environment (e.g. RAFTMESH_TEST_UNSAFE for negative controls). */
  readonly extraEnv?: Record<string, string>;
  readonly size?: number;
}
