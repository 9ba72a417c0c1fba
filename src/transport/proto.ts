/**
 * Loads raft.proto at runtime with @grpc/proto-loader and exposes the RaftPeer methods with
 * the hand-written wire types of wire.ts and probe.ts. Loading is lazy and happens once per process.
 */
import type { ServiceDefinition } from "@grpc/grpc-js";
import { loadSync, type MethodDefinition } from "@grpc/proto-loader";
import { findProtoDir } from "../common/proto-dir.js";
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

let loaded: PeerMethods | undefined;

/** peerMethods loads raft.proto the first time it is called and returns the RaftPeer methods. */
export function peerMethods(): PeerMethods {
  if (loaded) return loaded;
  const definition = loadSync(RAFT_PROTO_FILE, {
    includeDirs: [findProtoDir(import.meta.url, RAFT_PROTO_FILE)],
    keepCase: false,
    longs: Number,
    enums: Number,
    bytes: Buffer,
    defaults: true,
    oneofs: false,
  });
  const service = definition["raftmesh.raft.v1.RaftPeer"] as Record<string, MethodDefinition<object, object>> | undefined;
  if (!service?.Stream || !service.InstallSnapshot || !service.Probe) {
    throw new Error(`${RAFT_PROTO_FILE} does not define RaftPeer.Stream, InstallSnapshot and Probe`);
  }
  loaded = {
    service: service as ServiceDefinition,
    stream: service.Stream as unknown as MethodDefinition<WireEnvelope, WireAck>,
    installSnapshot: service.InstallSnapshot as unknown as MethodDefinition<WireSnapshotChunk, WireAck>,
    probe: service.Probe as unknown as MethodDefinition<WireProbeRequest, WireProbeResponse>,
  };
  return loaded;
}
