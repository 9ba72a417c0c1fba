/**
 * RouteTable is a worker's copy of the service tables, with one balancer per service. Updates come
 * whole from the feed (messages.ts); the table says which endpoints went away and which services
 * changed master, so pools can drain and TCP connections to a demoted master can be cut.
 */
import {
  CircuitBreaker,
  createServiceBalancer,
  type Endpoint,
  RetryBudget,
  type ServiceBalancer,
  type ServiceTable,
} from "./interim-policy.js";
import type { ToWorker } from "./messages.js";

/** Route is one service as the proxies use it. */
export interface Route {
  table: ServiceTable;
  readonly balancer: ServiceBalancer;
  readonly budget: RetryBudget;
  readonly breaker: CircuitBreaker;
  /** master is the endpoint of the newest epoch in master-slave mode (undefined: none known). */
  master: Endpoint | undefined;
}

/** RouteChange is what one update did to a service, for the proxies to act on. */
export interface RouteChange {
  readonly service: string;
  /** masterLost: the master the service had before this update, when it is no longer the master. */
  readonly masterLost: string | undefined;
}

/** RouteTable holds the services of one worker. */
export class RouteTable {
  private readonly routes = new Map<string, Route>();

  constructor(
    private readonly localZone: string,
    private readonly random: () => number = Math.random,
  ) {}

  /** get returns a service's route. */
  get(name: string): Route | undefined {
    return this.routes.get(name);
  }

  /** liveKeys lists address:port of every endpoint of every service (pools outside it may close). */
  liveKeys(): Set<string> {
    const out = new Set<string>();
    for (const r of this.routes.values()) for (const e of r.table.endpoints) out.add(endpointKey(e));
    return out;
  }

  /** apply applies one feed message and returns the changes it made. */
  apply(msg: Extract<ToWorker, { t: "tables" }>): RouteChange[] {
    const changes: RouteChange[] = [];
    if (msg.full) {
      const keep = new Set(msg.tables.map((t) => t.name));
      for (const name of [...this.routes.keys()]) if (!keep.has(name)) changes.push(this.remove(name));
    }
    for (const name of msg.removed) if (this.routes.has(name)) changes.push(this.remove(name));
    for (const t of msg.tables) changes.push(this.put(t));
    return changes;
  }

  private put(table: ServiceTable): RouteChange {
    const prev = this.routes.get(table.name);
    const master = masterOf(table);
    if (!prev) {
      const budget = new RetryBudget(table.config.retryBudgetPercent);
      const balancer = createServiceBalancer(table, { random: this.random, localZone: this.localZone });
      this.routes.set(table.name, { table, balancer, budget, breaker: new CircuitBreaker(), master });
      return { service: table.name, masterLost: undefined };
    }
    const before = prev.master;
    prev.table = table;
    prev.master = master;
    prev.balancer.update(table);
    const lost = before && (!master || endpointKey(master) !== endpointKey(before) || master.id !== before.id) ? before.id : undefined;
    return { service: table.name, masterLost: lost };
  }

  private remove(name: string): RouteChange {
    const r = this.routes.get(name);
    this.routes.delete(name);
    return { service: name, masterLost: r?.master?.id };
  }
}

/** endpointKey names an endpoint's address, the key of its connection pool. */
export function endpointKey(e: Pick<Endpoint, "address" | "port">): string {
  return `${e.address}:${e.port}`;
}

/** masterOf is the endpoint the master-slave service routes to: the master of the newest epoch, if it is registered and not critical. */
function masterOf(t: ServiceTable): Endpoint | undefined {
  if (t.config.mode !== "master-slave" || !t.master) return undefined;
  const id = t.master.id;
  return t.endpoints.find((e) => e.id === id && e.health !== "critical");
}
