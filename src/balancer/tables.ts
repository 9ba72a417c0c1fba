import type { Instance, Service } from "../registry/types.js";
import type { WireTable } from "./messages.js";
import { balancerConfig, DEFAULT_BALANCER_CONFIG } from "./policy/index.js";
import type { BalancerConfig, Endpoint } from "./types.js";

/**
 * endpointOf is an instance as the balancer sees it. An instance in maintenance has weight 0: the
 * eligibility pipeline's drain (no new requests, in-flight ones finish, not counted as usable).
 */
export function endpointOf(i: Instance): Endpoint {
  const weight = i.maintenance ? 0 : i.weight;
  return { id: i.id, address: i.address, port: i.port, weight, priority: i.priority, zone: i.zone, health: i.health };
}

/** MasterOf is a master-slave service's master of the newest epoch ("" none). */
export type MasterOf = { readonly master: string; readonly epoch: number } | undefined;

/**
 * tableOf is a service's routing table, built from the local applied registry. The registry
 * validated the config when it applied it; a config the balancer still refuses (a newer registry)
 * routes with the balancer's defaults rather than not at all.
 */
export function tableOf(service: Service, instances: readonly Instance[], master: MasterOf): WireTable {
  let config: BalancerConfig;
  try {
    config = balancerConfig(service.config as unknown as Partial<Record<keyof BalancerConfig, unknown>>);
  } catch {
    config = DEFAULT_BALANCER_CONFIG;
  }
  // A master-slave service without a master is { id: "", epoch }: nothing routes (types.ts).
  const m = service.config.mode === "master-slave" ? { id: master?.master ?? "", epoch: master?.epoch ?? 0 } : undefined;
  return { name: service.name, mode: service.config.mode, config, endpoints: instances.map(endpointOf), master: m };
}
