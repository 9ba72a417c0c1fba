/**
 * RegistryFeed follows the node's own applied registry (a local watch: no request to the leader)
 * and tells the workers. Every change of a loop turn marks what it touched; at the end of the turn
 * one message goes out: the whole table of each service whose config or master changed (or that
 * the workers have no table of), and for the rest a patch of the instances that changed, read from
 * the registry as they are at the end of the turn. Whole tables per change cost the service's every
 * instance on both threads (a 300-instance table: ~17 µs to build, ~125 µs to clone, the worker's
 * rebuild besides), which made a registration cost several puts. A watch that ends (snapshot
 * installed, lagging) re-lists everything and watches again.
 */
import type { Logger } from "../common/logger.js";
import type { Instance, RegistryEvent, Service } from "../registry/types.js";
import type { WatchHandle, WatchKind } from "../registry/watch-hub.js";
import type { ToWorker, WirePatch, WireTable } from "./messages.js";
import type { Endpoint } from "./types.js";
import { endpointOf, type MasterOf, tableOf } from "./tables.js";

/** FeedSource is what the feed reads of the node (RegistryStateMachine and WatchHub fit it). */
export interface FeedSource {
  readonly registry: {
    readonly applied: number;
    listServices(): readonly { readonly service: Service }[];
    getService(name: string): { readonly service: Service; readonly instances: readonly Instance[] } | undefined;
    /** instance, where the registry has it, is one instance (without it every change sends a whole table). */
    instance?(service: string, id: string): Instance | undefined;
    /** masterOf, where the registry keeps masters, is a master-slave service's master and epoch. */
    masterOf?(service: string): MasterOf;
  };
  readonly hub: {
    watch(
      req: { fromIndex: number; kinds: readonly WatchKind[]; local?: boolean },
      sink: { events(batch: readonly RegistryEvent[], through: number, done: () => void): boolean | undefined; end(err?: Error): void },
    ): WatchHandle;
  };
}

const KINDS: readonly WatchKind[] = ["service", "instance", "master"];

/** RegistryFeed turns registry changes into table messages. */
export class RegistryFeed {
  private handle: WatchHandle | undefined;
  /** whole: services whose whole table goes out at the next flush. */
  private readonly whole = new Set<string>();
  /** changed: per service, the instance ids whose endpoint goes out as a patch at the next flush. */
  private readonly changed = new Map<string, Set<string>>();
  /** tabled: the services the workers hold a whole table of (sent since the last full message); only these get patches. */
  private readonly tabled = new Set<string>();
  /**
   * deleted: services deleted since the last flush. One deleted and created again in the same turn
   * goes out as removed and as a table: a worker given only the new table kept the old one, since
   * the new service's "no master" epoch (0) is older than the deleted one's (found by the patch
   * property test; whole tables had the same gap).
   */
  private readonly deleted = new Set<string>();
  private scheduled = false;
  private closed = false;
  /** masters: the newest master event of each service seen by this feed (for registries without masterOf). */
  private readonly masters = new Map<string, { master: string; epoch: number }>();

  constructor(
    private readonly source: FeedSource,
    private readonly send: (m: ToWorker) => void,
    private readonly logger: Logger,
  ) {}

  /** full is every service's table, as a worker starts from it. */
  full(): Extract<ToWorker, { t: "tables" }> {
    const tables: WireTable[] = [];
    this.tabled.clear();
    for (const { service } of this.source.registry.listServices()) {
      const v = this.source.registry.getService(service.name);
      if (v) {
        tables.push(tableOf(v.service, v.instances, this.masterOf(v.service.name)));
        this.tabled.add(v.service.name);
      }
    }
    return { t: "tables", full: true, tables, removed: [] };
  }

  /** start sends the full tables and follows changes from the applied index on. */
  start(): void {
    if (this.closed) return;
    this.send(this.full());
    this.handle = this.source.hub.watch(
      { fromIndex: this.source.registry.applied, kinds: KINDS, local: true },
      {
        events: (batch, _through, done) => {
          for (const e of batch) {
            if (e.kind === "master") this.masters.set(e.service, { master: e.master, epoch: e.epoch });
            this.mark(e);
          }
          done();
          this.schedule();
          return true;
        },
        end: (err) => {
          this.handle = undefined;
          this.logger.info({ reason: err?.message }, "balancer feed watch ended; re-listing");
          setImmediate(() => this.start());
        },
      },
    );
  }

  /** close stops following. */
  close(): void {
    this.closed = true;
    this.handle?.close();
    this.handle = undefined;
  }

  private masterOf(service: string): MasterOf {
    return this.source.registry.masterOf?.(service) ?? this.masters.get(service);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** mark files an event: an instance change by id, anything else (service, master) as the whole table. */
  private mark(e: RegistryEvent): void {
    const name = serviceOf(e);
    if (e.kind === "service" && e.type !== "put") this.deleted.add(name);
    if (e.kind !== "instance" || this.whole.has(name)) {
      if (e.kind !== "instance") {
        this.whole.add(name);
        this.changed.delete(name);
      }
      return;
    }
    let ids = this.changed.get(name);
    if (ids === undefined) {
      ids = new Set();
      this.changed.set(name, ids);
    }
    ids.add(e.type === "put" ? e.instance.id : e.id);
  }

  private flush(): void {
    this.scheduled = false;
    if (this.closed || (this.whole.size === 0 && this.changed.size === 0)) return;
    const reg = this.source.registry;
    const tables: WireTable[] = [];
    const removed: string[] = [];
    const patches: WirePatch[] = [];
    const wholeTable = (name: string) => {
      const v = reg.getService(name);
      if (v) {
        if (this.deleted.has(name)) removed.push(name);
        tables.push(tableOf(v.service, v.instances, this.masterOf(v.service.name)));
        this.tabled.add(name);
      } else {
        removed.push(name);
        this.tabled.delete(name);
      }
    };
    for (const name of this.whole) wholeTable(name);
    for (const [name, ids] of this.changed) {
      // A service the workers have no table of (new, or a registry without instance()) goes whole.
      if (!this.tabled.has(name) || reg.instance === undefined) {
        wholeTable(name);
        continue;
      }
      const put: Endpoint[] = [];
      const gone: string[] = [];
      for (const id of ids) {
        const i = reg.instance(name, id);
        if (i) put.push(endpointOf(i));
        else gone.push(id);
      }
      patches.push({ name, put, removed: gone });
    }
    this.whole.clear();
    this.changed.clear();
    this.deleted.clear();
    this.send(patches.length > 0 ? { t: "tables", full: false, tables, removed, patches } : { t: "tables", full: false, tables, removed });
  }
}

function serviceOf(e: RegistryEvent): string {
  if (e.kind === "service") return e.type === "put" ? e.service.name : e.name;
  if (e.kind === "instance") return e.type === "put" ? e.instance.service : e.service;
  if (e.kind === "master") return e.service;
  return "";
}
