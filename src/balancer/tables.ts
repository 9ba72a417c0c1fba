import type { Instance, Service } from "../registry/types.js";
import type { Endpoint, ServiceTable } from "./interim-policy.js";

/** endpointOf is an instance as the balancer sees it. */
export function endpointOf(i: Instance): Endpoint {
  return { id: i.id, address: i.address, port: i.port, weight: i.weight, priority: i.priority, zone: i.zone, health: i.health };
}

/** tableOf is a service's routing table, built from the local applied registry. */
export function tableOf(service: Service, instances: readonly Instance[]): ServiceTable {
  return { name: service.name, config: service.config, endpoints: instances.map(endpointOf) };
}
