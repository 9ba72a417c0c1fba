/** The client API's messages as the proto loader presents them (camelCase, uint64 as number, bytes as Buffer). */

export type ConsistencyName = "CONSISTENCY_LINEARIZABLE" | "CONSISTENCY_STALE";

export interface NodeStatusMsg {
  id: string;
  clusterId: string;
  role: string;
  leader: string;
  term: number;
  commit: number;
  applied: number;
  lastIndex: number;
  voters: string[];
  learners: string[];
  api: string;
  snapshotIndex: number;
  version: string;
}

export interface MemberMsg {
  id: string;
  peer: string;
  api: string;
  learner: boolean;
  match: number;
}

export interface MembersResponseMsg {
  members: MemberMsg[];
  leader: string;
  index: number;
}

export interface AddMemberRequestMsg {
  id: string;
  peer: string;
  api: string;
  learner: boolean;
  /** force skips the check that the change leaves a live quorum (disaster recovery). */
  force?: boolean;
}

export interface MemberRequestMsg {
  id: string;
  /** force skips the check that the change leaves a live quorum (disaster recovery). */
  force?: boolean;
}

export interface MemberChangeResponseMsg {
  members: MemberMsg[];
  index: number;
}

export interface TransferLeaderRequestMsg {
  id: string;
}

export interface TransferLeaderResponseMsg {
  leader: string;
  term: number;
}

export interface GetRequestMsg {
  key: string;
  consistency: ConsistencyName;
}

export interface WriteSessionMsg {
  clientId: string;
  seq: number;
}

export interface KeyValueMsg {
  key: string;
  value: Buffer;
  createIndex: number;
  modIndex: number;
  version: number;
}

export interface GetResponseMsg {
  found: boolean;
  value: Buffer;
  index: number;
  kv?: KeyValueMsg | null;
}

export interface PutRequestMsg {
  key: string;
  value: Buffer;
  session?: WriteSessionMsg | null;
}

export interface PutResponseMsg {
  index: number;
  hadPrevious: boolean;
  prev?: KeyValueMsg | null;
  duplicate?: boolean;
}

export interface DeleteRequestMsg {
  key: string;
  prefix?: boolean;
  session?: WriteSessionMsg | null;
}

export interface DeleteResponseMsg {
  index: number;
  existed: boolean;
  deleted?: number;
  duplicate?: boolean;
}

export interface ListRequestMsg {
  prefix: string;
  startAfter: string;
  limit: number;
  consistency: ConsistencyName;
}

export interface ListResponseMsg {
  kvs: KeyValueMsg[];
  more: boolean;
  index: number;
}

export interface CompareMsg {
  key: string;
  target: string;
  op: string;
  value: Buffer;
  number: number;
}

export interface TxnOpMsg {
  op: string;
  key: string;
  value: Buffer;
  prefix: boolean;
}

export interface TxnRequestMsg {
  compares: CompareMsg[];
  success: TxnOpMsg[];
  failure: TxnOpMsg[];
  session?: WriteSessionMsg | null;
}

export interface TxnResponseMsg {
  succeeded: boolean;
  index: number;
  results: { kv?: KeyValueMsg | null; found: boolean }[];
  duplicate?: boolean;
}

/**
 * ServiceConfigMsg: the fields after `fallback` are proto3 `optional`: absent (undefined or null)
 * means the default, so a meaningful zero is not mistaken for "unset".
 */
export interface ServiceConfigMsg {
  policy: string;
  mode: string;
  retries: number;
  retryBudgetPercent: number;
  perTryTimeoutMs: number;
  fallback: string;
  maxLagOnFailover?: number | null;
  failback?: string | null;
  failbackHoldDownMs?: number | null;
  hashOn?: string | null;
  hashMethod?: string | null;
  /** retry_on_5xx: the proto loader's camelCase keeps the underscore before a digit. */
  retryOn_5xx?: boolean | null;
  fallbackStatus?: number | null;
  fallbackBody?: string | null;
  outlierConsecutiveFailures?: number | null;
  outlierBaseEjectionMs?: number | null;
  outlierMaxEjectionPercent?: number | null;
  panicThresholdPercent?: number | null;
  maxConnections?: number | null;
  maxPendingRequests?: number | null;
  maxRequests?: number | null;
  zoneMinHealthyPercent?: number | null;
  upstreamTls?: boolean | null;
  upstreamTlsServerName?: string | null;
  upstreamTlsVerify?: boolean | null;
}

/** MasterRefMsg is a master-slave service's master ("" none) and epoch (the fencing token). */
export interface MasterRefMsg {
  instanceId: string;
  epoch: number;
}

/** MasterReasonName is why a master changed. */
export type MasterReasonName = "promoted" | "demoted" | "no-master" | "switchover" | "failback";

/** MasterChangeMsg is a `master` watch event's body. */
export interface MasterChangeMsg {
  service: string;
  master: string;
  epoch: number;
  reason: string;
  previous: string;
}

export interface FailoverRequestMsg {
  service: string;
  to: string;
  session?: WriteSessionMsg | null;
}

export interface FailoverResponseMsg {
  master: string;
  epoch: number;
  index: number;
  duplicate: boolean;
}

export interface ServiceMsg {
  name: string;
  config?: ServiceConfigMsg | null;
  createIndex: number;
  modIndex: number;
  instances: number;
  passing: number;
  warning: number;
  critical: number;
  /** master: for a master-slave service only. */
  master?: MasterRefMsg | null;
}

export interface InstanceMsg {
  id: string;
  service: string;
  address: string;
  port: number;
  tags: string[];
  metadata: Record<string, string>;
  weight: number;
  priority: number;
  zone: string;
  ttlMs: number;
  deregisterCriticalAfterMs: number;
  health: string;
  note: string;
  healthSinceMs: number;
  createIndex: number;
  modIndex: number;
  /** role: "master" | "standby" in a master-slave service, "" otherwise (output only). */
  role?: string;
  /** replicationPosition: the last position recorded in the log (output only). */
  replicationPosition?: number;
  /** maintenance: the instance is drained (output only; set with SetMaintenance). */
  maintenance?: boolean;
  maintenanceReason?: string;
}

export interface RegisterRequestMsg {
  instance?: InstanceMsg | null;
  session?: WriteSessionMsg | null;
  health?: string;
  note?: string;
}

export interface HeartbeatRequestMsg {
  service: string;
  id: string;
  status: string;
  note: string;
  /** replicationPosition: an opaque position such as an LSN (0: none), at most 2^53 - 1. */
  replicationPosition?: number;
  /** masterEpoch: the epoch the instance acts as master of when it sends this (0: none). */
  masterEpoch?: number;
  /** processToken: the process this heartbeat speaks for ("" none; see src/common/process-token.ts). */
  processToken?: string;
  /** exitedProcess: with status critical, a supervisor's report that the process with this token exited. */
  exitedProcess?: string;
}

export interface HeartbeatResponseMsg {
  service: string;
  id: string;
  ttlMs: number;
  health: string;
  index: number;
  /** role: "master" | "standby" in a master-slave service, "" otherwise. */
  role?: string;
  /** epoch: the service's current epoch (master-slave), else 0. */
  epoch?: number;
}

export interface EventMsg {
  index: number;
  kind: string;
  type: string;
  service?: ServiceMsg | null;
  instance?: InstanceMsg | null;
  kv?: KeyValueMsg | null;
  name: string;
  id: string;
  key: string;
  /** master: for kind "master". */
  master?: MasterChangeMsg | null;
}

export interface WatchRequestMsg {
  fromIndex: number;
  service: string;
  keyPrefix: string;
  kinds: string[];
}

export interface WatchResponseMsg {
  events: EventMsg[];
  index: number;
}

export interface RenewResultMsg {
  code: string;
  response?: HeartbeatResponseMsg | null;
}

/** AclRuleMsg is one rule of a token; "" services or keys means the rule has no such scope. */
export interface AclRuleMsg {
  role: string;
  services: string;
  keys: string;
}

export interface AclTokenMsg {
  accessor: string;
  name: string;
  rules: AclRuleMsg[];
  createIndex: number;
}

export interface AclTokenSecretMsg {
  token: AclTokenMsg;
  secret: string;
  index: number;
}

export interface CreateTokenRequestMsg {
  name: string;
  rules: AclRuleMsg[];
}

export interface ListTokensResponseMsg {
  tokens: AclTokenMsg[];
  index: number;
}
