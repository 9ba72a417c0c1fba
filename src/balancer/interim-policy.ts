/**
 * Interim stand-in for policy/ and types.ts (round-robin over passing endpoints): the data plane
 * codes against the same contract until the pickers land, then this file goes.
 */
import type { Health, ServiceConfig } from "../registry/types.js";

/** Endpoint is one instance as the balancer sees it. */
export interface Endpoint {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly priority: number;
  readonly zone: string;
  readonly health: Health;
}

/** ServiceTable is one service's routing input. */
export interface ServiceTable {
  readonly name: string;
  readonly config: ServiceConfig;
  readonly endpoints: readonly Endpoint[];
  readonly master?: { readonly id: string; readonly epoch: number };
}

/** ServiceBalancer picks endpoints for one service. */
export interface ServiceBalancer {
  update(table: ServiceTable): void;
  pick(exclude?: ReadonlySet<string>): Endpoint | undefined;
  onStart(ep: Endpoint): void;
  onEnd(ep: Endpoint, ok: boolean): void;
}

/** createServiceBalancer makes the interim round-robin balancer. */
export function createServiceBalancer(table: ServiceTable, _opts: { random: () => number; localZone: string }): ServiceBalancer {
  let eligible: Endpoint[] = [];
  let next = 0;
  const b: ServiceBalancer = {
    update(t) {
      const passing = t.endpoints.filter((e) => e.health === "passing");
      eligible = passing.length > 0 ? passing : t.endpoints.filter((e) => e.health === "warning");
    },
    pick(exclude) {
      for (let k = 0; k < eligible.length; k++) {
        const ep = eligible[next++ % eligible.length]!;
        if (!exclude?.has(ep.id)) return ep;
      }
      return undefined;
    },
    onStart() {},
    onEnd() {},
  };
  b.update(table);
  return b;
}

/** RetryBudget allows a retry while retries in flight stay within a share of active requests. */
export class RetryBudget {
  private retriesActive = 0;
  constructor(
    private readonly percent: number,
    private readonly minRetries = 3,
  ) {}
  /** tryAcquire takes a retry from the budget; release() gives it back when the retry ends. */
  tryAcquire(active: number): boolean {
    const cap = Math.max(this.minRetries, Math.floor((active * this.percent) / 100));
    if (this.retriesActive >= cap) return false;
    this.retriesActive++;
    return true;
  }
  release(): void {
    this.retriesActive--;
  }
}

/** CircuitBreaker bounds a service's concurrent requests. */
export class CircuitBreaker {
  private active = 0;
  constructor(private readonly maxRequests = 1024) {}
  tryEnter(): boolean {
    if (this.active >= this.maxRequests) return false;
    this.active++;
    return true;
  }
  leave(): void {
    this.active--;
  }
  get inFlight(): number {
    return this.active;
  }
}
