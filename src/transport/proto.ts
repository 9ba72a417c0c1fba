/**
 * Loads raft.proto at runtime with @grpc/proto-loader and exposes the RaftPeer methods with
 * the hand-written wire types of wire.ts and probe.ts. Loading is lazy and happens once per process.
 */
import type { ServiceDefinition } from "@grpc/grpc-js";
import { loadSync, type MethodDefinition } from "@grpc/proto-loader";
import { findProtoDir } from "../common/proto-dir.js";
import { decodeEnvelope, encodeEnvelope } from "./envelope-codec.js";
import type { WireProbeRequest, WireProbeResponse } from "./probe.js";
import type { WireAck, WireEnvelope, WireSnapshotChunk } from "./wire.js";

/** RAFT_PROTO_FILE is the peer API's path below the repository's proto/ directory. */
export const RAFT_PROTO_FILE = "raftmesh/raft/v1/raft.proto";

/** PeerMethods are the RaftPeer methods, typed with the wire shapes. */
export interface PeerMethods {
  readonly service: ServiceDefinition;
  readonly stream: MethodDefinition<WireEnvelope, WireAck>;
  readonly installSnapshot: MethodDefinition<WireSnapshotChunk, WireAck>;
  readonly probe: MethodDefinition<WireProbeRequest, WireProbeResponse>;
}

/**
 * PEER_PROTO_OPTIONS are proto-loader's options for raft.proto: the decoded shapes of wire.ts
 * (longs as Number, bytes as Buffer, defaults filled in). Nodes of older builds read the Stream
 * call's frames with them; envelope-codec.ts gives the same shapes.
 */
export const PEER_PROTO_OPTIONS = { keepCase: false, longs: Number, enums: Number, bytes: Buffer, defaults: true, oneofs: false } as const;

let loaded: PeerMethods | undefined;

/** peerMethods loads raft.proto the first time it is called and returns the RaftPeer methods. */
export function peerMethods(): PeerMethods {
  if (loaded) return loaded;
  const definition = loadSync(RAFT_PROTO_FILE, { includeDirs: [findProtoDir(import.meta.url, RAFT_PROTO_FILE)], ...PEER_PROTO_OPTIONS });
  const service = definition["raftmesh.raft.v1.RaftPeer"] as Record<string, MethodDefinition<object, object>> | undefined;
  if (!service?.Stream || !service.InstallSnapshot || !service.Probe) {
    throw new Error(`${RAFT_PROTO_FILE} does not define RaftPeer.Stream, InstallSnapshot and Probe`);
  }
  // The Stream call's frames (every heartbeat, append and response) go through the hand-written
  // codec of the same wire format (envelope-codec.ts); the rest keeps proto-loader's.
  const stream = { ...(service.Stream as unknown as MethodDefinition<WireEnvelope, WireAck>), requestSerialize: encodeEnvelope, requestDeserialize: decodeEnvelope };
  loaded = {
    service: { ...service, Stream: stream } as ServiceDefinition,
    stream,
    installSnapshot: service.InstallSnapshot as unknown as MethodDefinition<WireSnapshotChunk, WireAck>,
    probe: service.Probe as unknown as MethodDefinition<WireProbeRequest, WireProbeResponse>,
  };
  return loaded;
}
