/** The typed client of the raftmesh client API, used by the CLI, the tests and applications. */
export { CALL_DEADLINE_MS_DEFAULT, type CallOptions, type InstanceInput, type MeshEventMsg, RaftmeshClient, type RegisterOptions } from "./client.js";
export { RaftmeshError } from "./errors.js";
export { TlsError } from "../common/errors.js";
export { type ClientTlsOptions, tlsFromEnv } from "../common/tls.js";
export {
  clientHeartbeat,
  type DemotionReason,
  type HeartbeatAnswer,
  type HeartbeatCall,
  HEARTBEATS_PER_TTL,
  MasterSession,
  type MasterSessionOptions,
  type MasterRole,
  MONOTONIC_CLOCK,
  nudgeOnMasterEvents,
  SELF_DEMOTION_CLOCK_RATE_BOUND,
  SELF_DEMOTION_SCHEDULING_MS,
  type SessionClock,
  selfDemotionMarginMs,
  startMasterSession,
} from "./master-session.js";
