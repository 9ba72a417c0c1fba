/**
 * RouteTable is a worker's copy of the service tables, with one balancer, retry budget and circuit
 * breaker per service. Updates come whole from the feed (messages.ts); the table says which
 * services changed master, so TCP connections to a demoted master can be cut.
 */
import type { ServiceMode } from "../registry/types.js";
import type { WirePatch, WireTable } from "./messages.js";
import { createCircuitBreaker, createRetryBudget, createServiceBalancer } from "./policy/index.js";
import { compareIds, patchInOrder, sortedById } from "./policy/id-order.js";
import { tlsPoolKey, upstreamTlsOf } from "./tls.js";
import { SharedStrings } from "./shared-strings.js";
import { meteredBalancer, meteredBreaker, meteredBudget, NO_METER, RouteMeter } from "./stats.js";
import type { CircuitBreaker, Endpoint, RetryBudget, ServiceBalancer, ServiceTable } from "./types.js";

/** Route is one service as the proxies use it. */
export interface Route {
  table: ServiceTable;
  mode: ServiceMode;
  readonly balancer: ServiceBalancer;
  readonly budget: RetryBudget;
  readonly breaker: CircuitBreaker;
  /** master is the endpoint of the newest epoch in master-slave mode (undefined: none known or not healthy). */
  master: Endpoint | undefined;
  /** epochHeader is the x-raftmesh-epoch value sent to the master. */
  epochHeader: string;
  /** meter counts the service's requests in this worker's stats (NO_METER when metrics are off). */
  meter: RouteMeter;
  /** instanceSlots maps endpoint ids to their stats slots (filled from the table messages' instanceSlots). */
  readonly instanceSlots: Map<string, number>;
  /** sorted: the table's endpoints are in id order (`<`), so a patch can find its endpoints by search. */
  sorted: boolean;
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
  /** strings: one copy of each health and zone for all endpoints (the clone made one per endpoint). */
  private readonly strings = new SharedStrings();
  /**
   * keyRefs counts, per pool key, the endpoints of all routes that use it; a key is live while its
   * count is above 0. Kept as tables change (O(the changed table)), because working the set out
   * afresh from every route after each update made every update cost O(all instances): with
   * 100,000 instances a worker spent as much CPU as the node's Raft thread during registrations,
   * and was still draining the backlog a minute after they ended.
   */
  private readonly keyRefs = new Map<string, number>();
  /** instanceSlots: per service, its instances' stats slots as sent so far; kept across a service's removal (at most STATS_INSTANCES_MAX entries in all). */
  private readonly instanceSlots = new Map<string, Map<string, number>>();
  /** watchers wait for a service's next update (held retries, http-proxy.ts); at most one per held request. */
  private readonly watchers = new Map<string, Set<() => void>>();

  constructor(
    private readonly localZone: string,
    private readonly random: () => number = Math.random,
    private readonly onBadTable: (name: string, err: unknown) => void = () => {},
    /** breakerCounters gives a counter slot's shared counts and this worker's tally (absent: per-worker counts). */
    private readonly breakerCounters?: (slot: number) => { readonly shared: Int32Array; readonly tally: Int32Array },
    /** stats is this worker's counters (stats.ts); undefined counts nothing and wraps nothing. */
    private readonly stats?: Float64Array,
  ) {}

  /** get returns a service's route. */
  get(name: string): Route | undefined {
    return this.routes.get(name);
  }

  /** isLive says whether a pool key (address:port, and the TLS settings of a TLS service) is an endpoint of some service (pools of other keys may close). */
  isLive(key: string): boolean {
    return this.keyRefs.has(key);
  }

  /** liveKeyCount is the number of distinct live pool keys (tests compare it with the routes). */
  get liveKeyCount(): number {
    return this.keyRefs.size;
  }

  /** count adds `delta` (±1) to the count of every pool key of a table's endpoints. */
  private count(table: ServiceTable, delta: 1 | -1): void {
    const tls = tlsPoolKey(upstreamTlsOf(table.config));
    for (const e of table.endpoints) this.countKey(endpointKey(e) + tls, delta);
  }

  private countKey(key: string, delta: 1 | -1): void {
    const n = (this.keyRefs.get(key) ?? 0) + delta;
    if (n > 0) this.keyRefs.set(key, n);
    else this.keyRefs.delete(key);
  }

  /**
   * watch calls fn once, after the next update that carries service name (or removes it), when the
   * whole update is applied; the function returned cancels. fn must look at the route itself: an
   * update may change nothing it waits for.
   */
  watch(name: string, fn: () => void): () => void {
    let set = this.watchers.get(name);
    if (!set) this.watchers.set(name, (set = new Set()));
    const mine = set;
    mine.add(fn);
    return () => {
      mine.delete(fn);
      if (mine.size === 0 && this.watchers.get(name) === mine) this.watchers.delete(name);
    };
  }

  /** apply applies one feed message and returns the changes it made. */
  apply(msg: { readonly full: boolean; readonly tables: readonly WireTable[]; readonly removed: readonly string[]; readonly patches?: readonly WirePatch[] }): RouteChange[] {
    const changes: RouteChange[] = [];
    if (msg.full) {
      const keep = new Set(msg.tables.map((t) => t.name));
      for (const name of [...this.routes.keys()]) if (!keep.has(name)) changes.push(this.remove(name));
    }
    for (const name of msg.removed) if (this.routes.has(name)) changes.push(this.remove(name));
    for (const t of msg.tables) {
      this.strings.share(t.endpoints);
      try {
        changes.push(this.put(t));
      } catch (err) {
        this.onBadTable(t.name, err);
      }
    }
    for (const p of msg.patches ?? []) {
      const r = this.routes.get(p.name);
      // The feed patches only services it sent a table of since the last full message.
      if (!r) {
        this.onBadTable(p.name, new Error(`a patch for service ${JSON.stringify(p.name)}, which has no table`));
        continue;
      }
      this.strings.share(p.put);
      try {
        changes.push(this.patch(r, p));
      } catch (err) {
        this.onBadTable(p.name, err);
      }
    }
    // The table is whole again: wake what waited for these services (a watcher may watch anew).
    if (this.watchers.size > 0) {
      for (const c of changes) {
        const set = this.watchers.get(c.service);
        if (!set) continue;
        this.watchers.delete(c.service);
        for (const fn of set) fn();
      }
    }
    return changes;
  }

  private put(wire: WireTable): RouteChange {
    const { mode, counterSlot, ...table } = wire;
    const prev = this.routes.get(table.name);
    const master = masterOf(table, mode);
    const epochHeader = String(table.master?.epoch ?? 0);
    if (!prev) {
      const c = table.config;
      const balancer = createServiceBalancer(table, { random: this.random, localZone: this.localZone });
      const budget = createRetryBudget(c.retryBudgetPercent);
      const views = counterSlot !== undefined ? this.breakerCounters?.(counterSlot) : undefined;
      const breaker = createCircuitBreaker(c, views?.shared, views?.tally);
      const meter = this.meterOf(wire);
      // A service deleted and registered again keeps its instances' slots (the node's StatsSlots
      // gives a slot once and sends it once; a fresh map here lost them: found by feed-patches.test).
      let instanceSlots = this.instanceSlots.get(table.name);
      if (instanceSlots === undefined) {
        instanceSlots = new Map();
        this.instanceSlots.set(table.name, instanceSlots);
      }
      for (const [id, slot] of wire.instanceSlots ?? []) instanceSlots.set(id, slot);
      this.count(table, 1);
      if (!this.stats) {
        this.routes.set(table.name, { table, mode, balancer, budget, breaker, master, epochHeader, meter, instanceSlots, sorted: sortedById(table.endpoints, endpointId) });
        return { service: table.name, masterLost: undefined };
      }
      // The route's decisions count themselves: the proxies need only call meter.finished/retried.
      const route: Route = {
        table,
        mode,
        balancer: meteredBalancer(balancer, () => route.meter, () => route.instanceSlots),
        budget: meteredBudget(budget, () => route.meter),
        breaker: meteredBreaker(breaker, () => route.meter),
        master,
        epochHeader,
        meter,
        instanceSlots,
        sorted: sortedById(table.endpoints, endpointId),
      };
      this.routes.set(table.name, route);
      return { service: table.name, masterLost: undefined };
    }
    // A master of an older epoch than the one routed to is stale news: keep routing to the newer.
    if (prev.table.master && table.master && table.master.epoch < prev.table.master.epoch) return { service: table.name, masterLost: undefined };
    prev.balancer.update(table);
    prev.budget.setPercent(table.config.retryBudgetPercent);
    prev.breaker.setLimits(table.config);
    const before = prev.master;
    this.count(table, 1);
    this.count(prev.table, -1);
    prev.table = table;
    prev.sorted = sortedById(table.endpoints, endpointId);
    prev.mode = mode;
    prev.master = master;
    prev.epochHeader = epochHeader;
    if (this.stats) {
      if (prev.meter.slot !== wire.slot) prev.meter = this.meterOf(wire);
      for (const [id, slot] of wire.instanceSlots ?? []) prev.instanceSlots.set(id, slot);
    }
    const lost = before && (!master || master.id !== before.id || endpointKey(master) !== endpointKey(before)) ? before.id : undefined;
    return { service: table.name, masterLost: lost };
  }

  /**
   * patch applies a patch to a route in O(its endpoints × log of the table), memory moves aside:
   * the keys counted and the balancer's states change for the patched endpoints alone. Working
   * the whole table again per patch (as put does) cost a registration O(the service's instances)
   * in every worker: 0.5 ms at 1,000 instances, 5 ms at 10,000 (test/bench/balancer/patch-bench.ts).
   * A table not in id order (never one from the feed) takes the whole path.
   */
  private patch(r: Route, p: WirePatch): RouteChange {
    const { table } = r;
    if (!r.sorted) {
      const inOrder = [...table.endpoints].sort((a, b) => compareIds(a.id, b.id));
      return this.put({ ...table, mode: r.mode, slot: r.meter.slot, endpoints: patched(inOrder, p), ...(p.instanceSlots ? { instanceSlots: p.instanceSlots } : {}) });
    }
    const out: Endpoint[] = [];
    const endpoints = patched(table.endpoints, p, out);
    // The balancer checks the patch before it changes anything: a refused patch leaves the route as it was.
    r.balancer.patch(endpoints, p);
    const tls = tlsPoolKey(upstreamTlsOf(table.config));
    for (const e of out) this.countKey(endpointKey(e) + tls, -1);
    for (const e of p.put) this.countKey(endpointKey(e) + tls, 1);
    const next: ServiceTable = { ...table, endpoints };
    const before = r.master;
    r.table = next;
    r.master = masterOf(next, r.mode);
    if (this.stats) for (const [id, slot] of p.instanceSlots ?? []) r.instanceSlots.set(id, slot);
    const lost = before && (!r.master || r.master.id !== before.id || endpointKey(r.master) !== endpointKey(before)) ? before.id : undefined;
    return { service: table.name, masterLost: lost };
  }

  private meterOf(wire: WireTable): RouteMeter {
    return this.stats ? new RouteMeter(this.stats, wire.slot ?? 0) : NO_METER;
  }

  private remove(name: string): RouteChange {
    const r = this.routes.get(name);
    if (r) this.count(r.table, -1);
    this.routes.delete(name);
    return { service: name, masterLost: r?.master?.id };
  }
}

/**
 * patched is a table's endpoints with a patch applied: ids in `removed` dropped, `put` endpoints
 * replacing the ones of their id or added, kept in id order (`<`, as the feed's whole tables are;
 * endpoints must be in that order). The endpoints removed or replaced are pushed to `replaced`.
 */
export function patched(endpoints: readonly Endpoint[], p: Pick<WirePatch, "put" | "removed">, replaced?: Endpoint[]): Endpoint[] {
  const out = endpoints.slice();
  patchInOrder(out, p, {
    idOf: endpointId,
    removed: (e) => replaced?.push(e),
    replace: (old, e) => {
      replaced?.push(old);
      return e;
    },
    create: (e) => e,
  });
  return out;
}

const endpointId = (e: Endpoint): string => e.id;

/** endpointKey names an endpoint's address, the key of its connection pool. */
export function endpointKey(e: Pick<Endpoint, "address" | "port">): string {
  return `${e.address}:${e.port}`;
}

/** masterOf is the endpoint a master-slave service routes to: the master of the newest epoch, if registered and not critical. */
function masterOf(t: ServiceTable, mode: ServiceMode): Endpoint | undefined {
  if (mode !== "master-slave" || !t.master) return undefined;
  const id = t.master.id;
  return t.endpoints.find((e) => e.id === id && e.health !== "critical");
}
