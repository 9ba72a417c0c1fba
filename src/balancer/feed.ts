/**
 * RegistryFeed follows the node's own applied registry (a local watch: no request to the leader)
 * and tells the workers. Every change of a loop turn marks its services; at the end of the turn
 * the full tables of those services go out in one message (a service's table is small: whole
 * tables keep the workers free of delta bookkeeping, and cost microseconds per change). A watch
 * that ends (snapshot installed, lagging) re-lists everything and watches again.
 */
import type { Logger } from "../common/logger.js";
import type { Instance, RegistryEvent, Service } from "../registry/types.js";
import type { WatchHandle, WatchKind } from "../registry/watch-hub.js";
import type { ToWorker, WireTable } from "./messages.js";
import { type MasterOf, tableOf } from "./tables.js";

/** FeedSource is what the feed reads of the node (RegistryStateMachine and WatchHub fit it). */
export interface FeedSource {
  readonly registry: {
    readonly applied: number;
    listServices(): readonly { readonly service: Service }[];
    getService(name: string): { readonly service: Service; readonly instances: readonly Instance[] } | undefined;
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
  private readonly dirty = new Set<string>();
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
    for (const { service } of this.source.registry.listServices()) {
      const v = this.source.registry.getService(service.name);
      if (v) tables.push(tableOf(v.service, v.instances, this.masterOf(v.service.name)));
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
            this.dirty.add(serviceOf(e));
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

  private flush(): void {
    this.scheduled = false;
    if (this.closed || this.dirty.size === 0) return;
    const tables: WireTable[] = [];
    const removed: string[] = [];
    for (const name of this.dirty) {
      const v = this.source.registry.getService(name);
      if (v) tables.push(tableOf(v.service, v.instances, this.masterOf(v.service.name)));
      else removed.push(name);
    }
    this.dirty.clear();
    this.send({ t: "tables", full: false, tables, removed });
  }
}

function serviceOf(e: RegistryEvent): string {
  if (e.kind === "service") return e.type === "put" ? e.service.name : e.name;
  if (e.kind === "instance") return e.type === "put" ? e.instance.service : e.service;
  if (e.kind === "master") return e.service;
  return "";
}
