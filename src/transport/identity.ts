/**
 * The identity every peer call carries in its metadata, and the receiver's check of it. The check
 * is pure so that it is tested without sockets.
 */
import type { PeerCertificate } from "node:tls";
import { Metadata } from "@grpc/grpc-js";
import { certificateMembers } from "../common/tls.js";
import { type NodeId, nodeId } from "../raft/types.js";
import { ForeignClusterError, MissingIdentityError, PeerCertificateError, type TransportError, UnknownPeerError, WrongTargetError } from "./errors.js";

/** METADATA_CLUSTER_ID carries the sender's cluster id. */
export const METADATA_CLUSTER_ID = "x-raftmesh-cluster-id";
/** METADATA_NODE_ID carries the sender's node id. */
export const METADATA_NODE_ID = "x-raftmesh-node-id";
/** METADATA_TARGET_ID carries the node id the sender meant to reach, so a wrong address map is caught at once. */
export const METADATA_TARGET_ID = "x-raftmesh-target-id";

/** CallIdentity is who is calling whom, as the sender states it. */
export interface CallIdentity {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  readonly targetId: NodeId;
}

/** LocalIdentity is what a receiver checks a call against; `isPeer` reflects the current membership. */
export interface LocalIdentity {
  readonly clusterId: string;
  readonly selfId: NodeId;
  isPeer(id: NodeId): boolean;
}

/** identityMetadata builds the metadata a sender attaches to every call. */
export function identityMetadata(identity: CallIdentity): Metadata {
  const md = new Metadata();
  md.set(METADATA_CLUSTER_ID, identity.clusterId);
  md.set(METADATA_NODE_ID, identity.nodeId);
  md.set(METADATA_TARGET_ID, identity.targetId);
  return md;
}

/** readIdentity returns the identity in a call's metadata, or a MissingIdentityError naming the first key that is absent. */
export function readIdentity(md: Metadata): CallIdentity | MissingIdentityError {
  const values: string[] = [];
  for (const key of [METADATA_CLUSTER_ID, METADATA_NODE_ID, METADATA_TARGET_ID]) {
    const value = md.get(key)[0];
    if (typeof value !== "string" || value === "") return new MissingIdentityError(key);
    values.push(value);
  }
  const [clusterId, node, target] = values as [string, string, string];
  return { clusterId, nodeId: nodeId(node), targetId: nodeId(target) };
}

/**
 * checkIdentity returns why a receiver must refuse a call, or undefined when it may accept it.
 * Cluster first, because a foreign cluster's node ids mean nothing here.
 */
export function checkIdentity(remote: CallIdentity, local: LocalIdentity): TransportError | undefined {
  if (remote.clusterId !== local.clusterId) {
    return new ForeignClusterError(local.clusterId, local.selfId, remote.clusterId, remote.nodeId);
  }
  if (remote.nodeId === local.selfId || !local.isPeer(remote.nodeId)) {
    return new UnknownPeerError(remote.nodeId, local.selfId, local.clusterId);
  }
  if (remote.targetId !== local.selfId) return new WrongTargetError(local.selfId, remote.targetId, remote.nodeId);
  return undefined;
}

/**
 * verifyPeerIdentity, with TLS on (`required`), refuses a call whose client certificate does not
 * name the member the metadata claims (SAN URI raftmesh://member/<id>; the CA was already checked
 * by the TLS handshake). Without TLS there is no certificate to check and it accepts.
 */
export function verifyPeerIdentity(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null }, claimed: NodeId, required: boolean): TransportError | undefined {
  if (!required) return undefined;
  const cert = call.getAuthContext()?.sslPeerCertificate;
  const named = cert ? certificateMembers(cert) : [];
  return named.includes(claimed) ? undefined : new PeerCertificateError(claimed, named);
}
