/**
 * transport carries Raft messages between nodes over gRPC: one long-lived stream per peer for
 * ordinary messages, InstallSnapshot in chunks for snapshots, identity checked on every call.
 */
export {
  ForeignClusterError,
  ImpossiblePeerMessageError,
  MissingIdentityError,
  PeerRefusedError,
  SnapshotBusyError,
  SnapshotIntegrityError,
  statusOf,
  TransportClosedError,
  TransportError,
  UnknownPeerError,
  WireFormatError,
  WrongPeerAddressError,
  WrongTargetError,
} from "./errors.js";
export { identityMetadata, mayBeMember, METADATA_CLUSTER_ID, METADATA_NODE_ID, METADATA_TARGET_ID, verifyPeerIdentity } from "./identity.js";
export * from "./limits.js";
export { STDERR_LOGGER, type TransportLogger } from "./logger.js";
export type { PeerStats } from "./peer-client.js";
export type { ProbeAnswer } from "./probe.js";
export { RAFT_PROTO_FILE } from "./proto.js";
export type { SnapshotReport } from "./snapshot-sender.js";
export { GrpcTransport, type GrpcTransportOptions, PEER_SERVER_OPTIONS, type TransportStats } from "./transport.js";
