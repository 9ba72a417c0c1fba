/**
 * The identity every peer call carries in its metadata, and the receiver's check of it. The check
 * is pure so that it is tested without sockets.
 */
import { isIP } from "node:net";
import type { PeerCertificate } from "node:tls";
import { Metadata } from "@grpc/grpc-js";
import { certificateMembers } from "../common/tls.js";
import { type NodeId, nodeId } from "../raft/types.js";
import { ForeignClusterError, MissingIdentityError, PeerCertificateError, type TransportError, UnknownPeerError, WrongPeerAddressError, WrongTargetError } from "./errors.js";

/** METADATA_CLUSTER_ID carries the sender's cluster id. */
export const METADATA_CLUSTER_ID = "x-raftmesh-cluster-id";
/** METADATA_NODE_ID carries the sender's node id. */
export const METADATA_NODE_ID = "x-raftmesh-node-id";
/** METADATA_TARGET_ID carries the node id the sender meant to reach, so a wrong address map is caught at once. */
export const METADATA_TARGET_ID = "x-raftmesh-target-id";
/**
 * METADATA_SNAPSHOT_READ_MAX carries the newest snapshot format the sender's build reads, so that a
 * leader never sends a member a snapshot it would refuse (during a rolling upgrade). Builds before
 * it do not send it, and a receiver takes its absence to mean such a build.
 */
export const METADATA_SNAPSHOT_READ_MAX = "x-raftmesh-snapshot-read-max";
/** SNAPSHOT_READ_MAX_LIMIT bounds the format a peer may claim to read; a larger or malformed claim counts as none. */
export const SNAPSHOT_READ_MAX_LIMIT = 1_000;

/** CallIdentity is who is calling whom, as the sender states it. */
export interface CallIdentity {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  readonly targetId: NodeId;
  /** snapshotReadMax is the newest snapshot format the sender reads (undefined: it did not say, as builds before the field do not). */
  readonly snapshotReadMax?: number;
}

/** LocalIdentity is what a receiver checks a call against; `isPeer` reflects the current membership. */
export interface LocalIdentity {
  readonly clusterId: string;
  readonly selfId: NodeId;
  isPeer(id: NodeId): boolean;
  /** addressOf is a peer's configured peer address "host:port" (undefined: none known). */
  addressOf(id: NodeId): string | undefined;
}

/** PeerCall is the part of an incoming gRPC call the identity checks look at. */
export interface PeerCall {
  /** getPeer is the connection's remote address as gRPC reports it: "1.2.3.4:5", "[::1]:5". */
  getPeer(): string;
}

/** identityMetadata builds the metadata a sender attaches to every call. */
export function identityMetadata(identity: CallIdentity): Metadata {
  const md = new Metadata();
  md.set(METADATA_CLUSTER_ID, identity.clusterId);
  md.set(METADATA_NODE_ID, identity.nodeId);
  md.set(METADATA_TARGET_ID, identity.targetId);
  if (identity.snapshotReadMax !== undefined) md.set(METADATA_SNAPSHOT_READ_MAX, String(identity.snapshotReadMax));
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
  const snapshotReadMax = readSnapshotReadMax(md.get(METADATA_SNAPSHOT_READ_MAX)[0]);
  return snapshotReadMax === undefined ? { clusterId, nodeId: nodeId(node), targetId: nodeId(target) } : { clusterId, nodeId: nodeId(node), targetId: nodeId(target), snapshotReadMax };
}

/**
 * readSnapshotReadMax reads the claim of METADATA_SNAPSHOT_READ_MAX: a decimal integer in
 * [1, SNAPSHOT_READ_MAX_LIMIT]. Anything else counts as no claim, which is the cautious reading
 * (the sender is then treated as a build that reads only the formats before the field existed);
 * the call itself is not refused for it.
 */
export function readSnapshotReadMax(value: unknown): number | undefined {
  if (typeof value !== "string" || !/^[1-9][0-9]{0,3}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= SNAPSHOT_READ_MAX_LIMIT ? n : undefined;
}

/**
 * checkIdentity returns why a receiver must refuse a call, or undefined when it may accept it.
 * Cluster first, because a foreign cluster's node ids mean nothing here.
 */
export function checkIdentity(remote: CallIdentity, local: Pick<LocalIdentity, "clusterId" | "selfId" | "isPeer">): TransportError | undefined {
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
 * verifyPeerIdentity checks that a call claiming to come from member `claimedId` (already known to
 * be a peer by checkIdentity) comes from that member. With TLS on (`requireCertificate`), the proof
 * is the client certificate: it must name the claimed member (SAN URI raftmesh://member/<id>; the
 * cluster CA was already checked by the handshake). Without TLS, the one thing a receiver can check
 * is that the connection comes from the host of the member's configured peer address. That is
 * checked only when the address is an IP literal (a host name may resolve to several addresses, or
 * differently here), and it proves little when members share a host: any process on that host may
 * claim any of their ids. With a certificate the address is not checked (NAT and container
 * networks may show another source address; the certificate is the stronger proof).
 */
export function verifyPeerIdentity(
  call: PeerCall & { getAuthContext?(): { sslPeerCertificate?: PeerCertificate } | null },
  claimedId: NodeId,
  local: Pick<LocalIdentity, "addressOf">,
  requireCertificate = false,
): TransportError | undefined {
  if (requireCertificate) {
    const cert = call.getAuthContext?.()?.sslPeerCertificate;
    const named = cert ? certificateMembers(cert) : [];
    return named.includes(claimedId) ? undefined : new PeerCertificateError(claimedId, named);
  }
  const configured = local.addressOf(claimedId);
  if (configured === undefined) return undefined;
  const configuredHost = normalizeHost(hostOf(configured));
  if (isIP(configuredHost) === 0) return undefined;
  const remoteHost = normalizeHost(hostOf(call.getPeer()));
  if (remoteHost === configuredHost) return undefined;
  return new WrongPeerAddressError(claimedId, remoteHost, configuredHost);
}

/**
 * mayBeMember says whether a caller at remote ("ipv4:10.0.0.2:5000" as grpc-js names peers) may be
 * one of the members at memberAddresses, by the rule verifyPeerIdentity uses without TLS: its host
 * is a member's IP literal, or some member is named by a host name, which cannot be checked here
 * (then the caller is given the benefit of the doubt, as it was before the check).
 */
export function mayBeMember(remote: string, memberAddresses: Iterable<string>): boolean {
  const remoteHost = normalizeHost(hostOf(remote.replace(/^ipv[46]:/, "")));
  for (const a of memberAddresses) {
    const h = normalizeHost(hostOf(a));
    if (isIP(h) === 0 || h === remoteHost) return true;
  }
  return false;
}

/** hostOf is the host part of "host:port", "[v6]:port" or a bare host. */
export function hostOf(address: string): string {
  if (address.startsWith("[")) {
    const end = address.indexOf("]");
    return end < 0 ? address : address.slice(1, end);
  }
  const colon = address.lastIndexOf(":");
  // More than one colon without brackets is a bare IPv6 address, not host:port.
  if (colon < 0 || address.indexOf(":") !== colon) return address;
  return address.slice(0, colon);
}

/** normalizeHost writes an IPv4-mapped IPv6 address (how a dual-stack listener sees IPv4 callers) as IPv4, and lowercases. */
function normalizeHost(host: string): string {
  const lower = host.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  return mapped?.[1] ?? lower;
}

/** isLoopbackHost says whether a host is this machine only: 127.0.0.0/8, ::1 or "localhost". */
export function isLoopbackHost(host: string): boolean {
  const h = normalizeHost(host);
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}
