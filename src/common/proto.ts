/**
 * Loads the client API protos (proto/raftmesh/v1/*.proto) once per process and exposes their
 * service definitions, for the servers in src/api and the client in src/client alike (so it lives
 * in common: the client must not import the server).
 */
import { type GrpcObject, loadPackageDefinition, type ServiceClientConstructor } from "@grpc/grpc-js";
import { loadSync, type PackageDefinition } from "@grpc/proto-loader";
import { findProtoDir } from "./proto-dir.js";

/** CLIENT_PROTO_FILES are the client API's files below proto/. */
export const CLIENT_PROTO_FILES = ["raftmesh/v1/cluster.proto", "raftmesh/v1/kv.proto", "raftmesh/v1/registry.proto", "raftmesh/v1/events.proto", "raftmesh/v1/acl.proto"] as const;

/** ClientApi holds one client constructor per service; `.service` on each is its server definition. */
export interface ClientApi {
  readonly Cluster: ServiceClientConstructor;
  readonly KV: ServiceClientConstructor;
  readonly Registry: ServiceClientConstructor;
  readonly Internal: ServiceClientConstructor;
  readonly Events: ServiceClientConstructor;
  readonly Acl: ServiceClientConstructor;
}

let loaded: ClientApi | undefined;
let definition: PackageDefinition | undefined;

/** clientPackageDefinition is the loaded definition of every client API proto (for reflection). */
export function clientPackageDefinition(): PackageDefinition {
  clientApi();
  return definition as PackageDefinition;
}

/** clientApi loads the client API protos the first time it is called. */
export function clientApi(): ClientApi {
  if (loaded) return loaded;
  definition = loadSync([...CLIENT_PROTO_FILES], {
    includeDirs: [findProtoDir(import.meta.url, CLIENT_PROTO_FILES[0])],
    keepCase: false,
    longs: Number,
    enums: String,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
  });
  const root = loadPackageDefinition(definition) as GrpcObject;
  const v1 = (root.raftmesh as GrpcObject).v1 as GrpcObject;
  loaded = {
    Cluster: v1.Cluster as ServiceClientConstructor,
    KV: v1.KV as ServiceClientConstructor,
    Registry: v1.Registry as ServiceClientConstructor,
    Internal: v1.Internal as ServiceClientConstructor,
    Events: v1.Events as ServiceClientConstructor,
    Acl: v1.Acl as ServiceClientConstructor,
  };
  return loaded;
}

