/**
 * Loads raft.proto at runtime with @grpc/proto-loader and exposes the two RaftPeer methods with
 * the hand-written wire types of wire.ts. Loading is lazy and happens once per process.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ServiceDefinition } from "@grpc/grpc-js";
import { loadSync, type MethodDefinition } from "@grpc/proto-loader";
import type { WireAck, WireEnvelope, WireSnapshotChunk } from "./wire.js";

/** RAFT_PROTO_FILE is the peer API's path below the repository's proto/ directory. */
export const RAFT_PROTO_FILE = "raftmesh/raft/v1/raft.proto";

/** PROTO_SEARCH_DEPTH_MAX bounds the walk up from this module to the proto/ directory: src/transport and dist/src/transport are 2 and 3 levels below it. */
const PROTO_SEARCH_DEPTH_MAX = 6;

/** PeerMethods are the RaftPeer methods, typed with the wire shapes. */
export interface PeerMethods {
  readonly service: ServiceDefinition;
  readonly stream: MethodDefinition<WireEnvelope, WireAck>;
  readonly installSnapshot: MethodDefinition<WireSnapshotChunk, WireAck>;
}

let loaded: PeerMethods | undefined;

/** peerMethods loads raft.proto the first time it is called and returns the RaftPeer methods. */
export function peerMethods(): PeerMethods {
  if (loaded) return loaded;
  const definition = loadSync(RAFT_PROTO_FILE, {
    includeDirs: [findProtoDir()],
    keepCase: false,
    longs: Number,
    enums: Number,
    bytes: Buffer,
    defaults: true,
    oneofs: false,
  });
  const service = definition["raftmesh.raft.v1.RaftPeer"] as Record<string, MethodDefinition<object, object>> | undefined;
  if (!service?.Stream || !service.InstallSnapshot) throw new Error(`${RAFT_PROTO_FILE} does not define RaftPeer.Stream and InstallSnapshot`);
  loaded = {
    service: service as ServiceDefinition,
    stream: service.Stream as unknown as MethodDefinition<WireEnvelope, WireAck>,
    installSnapshot: service.InstallSnapshot as unknown as MethodDefinition<WireSnapshotChunk, WireAck>,
  };
  return loaded;
}

/** findProtoDir walks up from this module to the directory that holds proto/raftmesh/raft/v1/raft.proto. */
function findProtoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth <= PROTO_SEARCH_DEPTH_MAX; depth++) {
    const candidate = join(dir, "proto");
    if (existsSync(join(candidate, RAFT_PROTO_FILE))) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`cannot find proto/${RAFT_PROTO_FILE} above ${fileURLToPath(import.meta.url)}`);
}
