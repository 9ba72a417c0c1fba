import { status } from "@grpc/grpc-js";
import type { NodeId } from "../raft/types.js";

/** TransportError is the base of every expected failure of the peer transport. */
export class TransportError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TransportError";
  }
}

/**
 * ForeignClusterError is raised by a receiver when a caller belongs to another cluster: two
 * clusters that share addresses must never exchange Raft messages. It names both clusters.
 */
export class ForeignClusterError extends TransportError {
  constructor(
    readonly localClusterId: string,
    readonly localNodeId: NodeId,
    readonly remoteClusterId: string,
    readonly remoteNodeId: string,
  ) {
    super(
      `cluster id mismatch: node "${remoteNodeId}" is in cluster "${remoteClusterId}" ` +
        `but node "${localNodeId}" is in cluster "${localClusterId}"`,
    );
    this.name = "ForeignClusterError";
  }
}

/** UnknownPeerError is raised by a receiver when the caller's node id is not in its peer set (or is its own id). */
export class UnknownPeerError extends TransportError {
  constructor(
    readonly remoteNodeId: string,
    readonly localNodeId: NodeId,
    readonly clusterId: string,
  ) {
    super(
      remoteNodeId === localNodeId
        ? `node id "${remoteNodeId}" is this node's own id in cluster "${clusterId}": two nodes share an id`
        : `node id "${remoteNodeId}" is not a known peer of node "${localNodeId}" in cluster "${clusterId}"`,
    );
    this.name = "UnknownPeerError";
  }
}

/** WrongTargetError is raised by a receiver when the caller meant another node: its address map is wrong. */
export class WrongTargetError extends TransportError {
  constructor(
    readonly localNodeId: NodeId,
    readonly targetNodeId: string,
    readonly remoteNodeId: string,
  ) {
    super(`node "${remoteNodeId}" dialled node "${targetNodeId}" but reached node "${localNodeId}"`);
    this.name = "WrongTargetError";
  }
}

/**
 * WrongPeerAddressError is raised by a receiver when a caller claims a member's id but connects from
 * a host other than that member's configured peer address (checked when that address is an IP).
 */
export class WrongPeerAddressError extends TransportError {
  constructor(
    readonly remoteNodeId: string,
    readonly remoteHost: string,
    readonly configuredHost: string,
  ) {
    super(`a call claiming node id "${remoteNodeId}" comes from ${remoteHost}, but that member's peer address is on ${configuredHost}`);
    this.name = "WrongPeerAddressError";
  }
}

/**
 * ImpossiblePeerMessageError ends a peer's stream after it sent a message no correct peer sends
 * (the Raft core's ImpossibleMessageError): the message was dropped and this node carries on.
 */
export class ImpossiblePeerMessageError extends TransportError {
  constructor(
    readonly peerId: NodeId,
    readonly reason: string,
  ) {
    super(`node "${peerId}" sent an impossible message, dropped with its stream: ${reason}`);
    this.name = "ImpossiblePeerMessageError";
  }
}

/** MissingIdentityError is raised by a receiver when a call lacks one of the identity metadata keys. */
export class MissingIdentityError extends TransportError {
  constructor(readonly key: string) {
    super(`peer call is missing metadata "${key}"`);
    this.name = "MissingIdentityError";
  }
}

/**
 * PeerCertificateError is raised by a receiver with TLS on when the caller's certificate does not
 * name the member it claims to be (or there is no certificate): the identity in the metadata is
 * only believed when the certificate says the same.
 */
export class PeerCertificateError extends TransportError {
  constructor(
    readonly claimedNodeId: string,
    readonly certificateMembers: readonly string[],
  ) {
    super(
      certificateMembers.length === 0
        ? `caller claims to be node "${claimedNodeId}" but presented no certificate naming a member`
        : `caller claims to be node "${claimedNodeId}" but its certificate names ${certificateMembers.map((m) => `"${m}"`).join(", ")}`,
    );
    this.name = "PeerCertificateError";
  }
}

/** WireFormatError is thrown by the wire decoders when a frame does not describe a valid Raft message. */
export class WireFormatError extends TransportError {
  constructor(reason: string) {
    super(`invalid peer message: ${reason}`);
    this.name = "WireFormatError";
  }
}

/** SnapshotIntegrityError is raised by a receiver when snapshot chunks are out of shape, too large, or fail the hash. */
export class SnapshotIntegrityError extends TransportError {
  constructor(readonly reason: string) {
    super(`snapshot refused: ${reason}`);
    this.name = "SnapshotIntegrityError";
  }
}

/**
 * SnapshotBusyError is raised when a second snapshot between the same two nodes starts while one is
 * still in flight: a sender reports it for the second Snap message, a receiver refuses the call.
 */
export class SnapshotBusyError extends TransportError {
  constructor(readonly peerId: NodeId) {
    super(`a snapshot transfer with node "${peerId}" is already in progress`);
    this.name = "SnapshotBusyError";
  }
}

/** TransportClosedError ends calls that are open when the transport closes, and is thrown by listen() after close(). */
export class TransportClosedError extends TransportError {
  constructor() {
    super("peer transport is closed");
    this.name = "TransportClosedError";
  }
}

/**
 * PeerRefusedError is what a sender logs when a peer refused its call for identity reasons; it
 * carries the gRPC code and the receiver's explanation, which names the ids involved.
 */
export class PeerRefusedError extends TransportError {
  constructor(
    readonly peerId: NodeId,
    readonly code: status,
    readonly details: string,
  ) {
    super(`peer "${peerId}" refused the connection (${status[code]}): ${details}`);
    this.name = "PeerRefusedError";
  }
}

/** statusOf maps a transport error to the gRPC status a receiver answers with; this is the only place that mapping lives. */
export function statusOf(error: TransportError): status {
  if (error instanceof ForeignClusterError || error instanceof UnknownPeerError || error instanceof WrongPeerAddressError) return status.PERMISSION_DENIED;
  if (error instanceof PeerCertificateError) return status.UNAUTHENTICATED;
  if (error instanceof WrongTargetError || error instanceof MissingIdentityError) return status.FAILED_PRECONDITION;
  if (error instanceof WireFormatError || error instanceof ImpossiblePeerMessageError) return status.INVALID_ARGUMENT;
  if (error instanceof SnapshotIntegrityError) return status.DATA_LOSS;
  if (error instanceof SnapshotBusyError) return status.RESOURCE_EXHAUSTED;
  if (error instanceof TransportClosedError) return status.UNAVAILABLE;
  return status.INTERNAL;
}

/** isRefusal tells whether a status a sender got back means "you are not welcome here" rather than a network fault. */
export function isRefusal(code: status): boolean {
  return code === status.PERMISSION_DENIED || code === status.FAILED_PRECONDITION || code === status.UNAUTHENTICATED;
}
