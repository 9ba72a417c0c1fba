import { Server, ServerCredentials } from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import { clusterService } from "./cluster-service.js";
import type { ApiContext } from "./context.js";
import { kvService } from "./kv-service.js";
import { API_MESSAGE_BYTES_MAX, API_RESPONSE_BYTES_MAX } from "./limits.js";
import { clientApi, clientPackageDefinition } from "../common/proto.js";
import { failoverService } from "./failover-service.js";
import { internalService, registryService } from "./registry-service.js";
import { watchServiceDefinition } from "./watch-stream.js";

/** HEALTH_SERVICES are the names grpc.health.v1 answers for: "" is the whole server. */
const HEALTH_SERVICES = ["", "raftmesh.v1.Registry", "raftmesh.v1.KV", "raftmesh.v1.Cluster"];

/** API_SHUTDOWN_GRACE_MS: calls in flight get this long to finish before the API server is forced down. */
export const API_SHUTDOWN_GRACE_MS = 2_000;

/** ApiServer is the client API gRPC server of one node: KV and Cluster. */
export class ApiServer {
  private readonly server = new Server({
    "grpc.max_receive_message_length": API_MESSAGE_BYTES_MAX,
    "grpc.max_send_message_length": API_RESPONSE_BYTES_MAX,
  });

  private readonly health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((s) => [s, "NOT_SERVING"])));

  constructor(ctx: ApiContext) {
    const api = clientApi();
    this.server.addService(api.KV.service, kvService(ctx));
    this.server.addService(api.Cluster.service, clusterService(ctx));
    this.server.addService(watchServiceDefinition(api.Registry.service), { ...registryService(ctx), ...failoverService(ctx) });
    this.server.addService(api.Internal.service, internalService(ctx));
    // grpc.health.v1 and server reflection, so grpcurl and standard health probes work.
    this.health.addToServer(this.server);
    new ReflectionService(clientPackageDefinition()).addToServer(this.server);
  }

  /** setServing reports SERVING (a leader is known) or NOT_SERVING through grpc.health.v1. */
  setServing(serving: boolean): void {
    for (const s of HEALTH_SERVICES) this.health.setStatus(s, serving ? "SERVING" : "NOT_SERVING");
  }

  /** listen binds "host:port" (port 0 picks one) and returns the bound port. */
  listen(address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
    });
  }

  /** close stops accepting calls, waits up to the grace period for calls in flight, then forces the rest. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, API_SHUTDOWN_GRACE_MS);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
