/**
 * Expected failures of the benchmark harness. Each class says when it is thrown; callers branch on
 * the class, never on the message.
 */

/** BenchError is the base of every expected failure of the benchmark harness. */
export class BenchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BenchError";
  }
}

/** EtcdCallError is thrown by EtcdMemberClient when a gRPC call fails or passes its deadline; code is the gRPC status code. */
export class EtcdCallError extends BenchError {
  constructor(
    readonly member: string,
    readonly method: string,
    readonly code: number,
    options?: { cause?: unknown },
  ) {
    super(`etcd ${method} on ${member} failed with gRPC code ${code}`, options);
    this.name = "EtcdCallError";
  }
}

/** EtcdExitedError is thrown when an etcd member the cluster did not kill has exited; logTail holds the end of its log. */
export class EtcdExitedError extends BenchError {
  constructor(
    readonly member: string,
    readonly exit: string,
    readonly logTail: string,
  ) {
    super(`etcd member ${member} exited unexpectedly (${exit}); last log lines:\n${logTail}`);
    this.name = "EtcdExitedError";
  }
}

/** ClusterUnhealthyError is thrown when a cluster does not become healthy within its deadline; reason is the last check that failed. */
export class ClusterUnhealthyError extends BenchError {
  constructor(
    readonly waitedMs: number,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cluster not healthy after ${waitedMs} ms: ${reason}`, options);
    this.name = "ClusterUnhealthyError";
  }
}

/** NoLeaderError is thrown by Cluster.leader when no live member is reported as leader by a majority. */
export class NoLeaderError extends BenchError {
  constructor(readonly detail: string) {
    super(`no leader agreed by a majority: ${detail}`);
    this.name = "NoLeaderError";
  }
}

/** UnknownMemberError is thrown when a member id is not part of the cluster, or no member is left to send to. */
export class UnknownMemberError extends BenchError {
  constructor(readonly member: string) {
    super(`unknown or unusable member "${member}"`);
    this.name = "UnknownMemberError";
  }
}

/** FailoverTimeoutError is thrown by runFailover when no write sent after the kill is acknowledged in time. */
export class FailoverTimeoutError extends BenchError {
  constructor(
    readonly round: number,
    readonly waitedMs: number,
  ) {
    super(`failover round ${round}: no write acknowledged within ${waitedMs} ms of killing the leader`);
    this.name = "FailoverTimeoutError";
  }
}
