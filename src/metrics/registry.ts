/**
 * Registry metrics of one node, from its applied state: gauges read at scrape time (services,
 * instances by health, masters and epochs, watchers) and counters fed by the registry's feed
 * (registry/events.ts). Every node applies the same entries, so every node reports the same
 * registry counts; only the counters' start differs (they count from this process's start).
 */
import { Counter as PromCounter, Gauge as PromGauge, type Registry } from "prom-client";
import type { Emitter } from "../common/emitter.js";
import type { RegistryEvents } from "../registry/events.js";
import { LEASE_EXPIRED_NOTE_PREFIX } from "../registry/lease-tracker.js";
import { HEALTH_VALUES, type Instance, type MasterState, type Service } from "../registry/types.js";
import { OTHER_SERVICE, REGISTRY_SERVICE_SERIES_MAX } from "./limits.js";

/** RegistrySource is what the registry metrics read (RegistryStateMachine, its RegistryFeed and WatchHub fit it). */
export interface RegistrySource {
  readonly machine: {
    listServices(): readonly { readonly service: Service }[];
    allInstances(): Iterable<Instance>;
    instance(service: string, id: string): Instance | undefined;
    masterOf(service: string): MasterState;
  };
  readonly feed: Emitter<RegistryEvents>;
  readonly hub: { readonly size: number };
}

/** RegistryMetrics registers the registry series of one node in reg and follows the registry. */
export class RegistryMetrics {
  constructor(reg: Registry, src: RegistrySource) {
    const registers = [reg];
    const { machine } = src;
    new PromGauge({
      name: "raftmesh_registry_services",
      help: "Services in the registry, by mode.",
      labelNames: ["mode"],
      registers,
      collect() {
        const n = { "active-active": 0, "master-slave": 0 };
        for (const { service } of machine.listServices()) n[service.config.mode]++;
        for (const [mode, v] of Object.entries(n)) this.set({ mode }, v);
      },
    });
    new PromGauge({
      name: "raftmesh_registry_instances",
      help: `Instances by service and health (services past ${REGISTRY_SERVICE_SERIES_MAX} are summed in service="${OTHER_SERVICE}").`,
      labelNames: ["service", "health"],
      registers,
      collect() {
        this.reset();
        const named = seriesNames(machine.listServices().map((s) => s.service.name));
        const counts = new Map<string, Record<string, number>>();
        for (const name of new Set(named.values())) counts.set(name, Object.fromEntries(HEALTH_VALUES.map((h) => [h, 0])));
        for (const i of machine.allInstances()) {
          const c = counts.get(named.get(i.service) ?? OTHER_SERVICE);
          if (c) c[i.health] = (c[i.health] ?? 0) + 1;
        }
        for (const [service, c] of counts) for (const [health, v] of Object.entries(c)) this.set({ service, health }, v);
      },
    });
    new PromGauge({
      name: "raftmesh_registry_master_epoch",
      help: `Epoch of each master-slave service's master (services past ${REGISTRY_SERVICE_SERIES_MAX} are left out).`,
      labelNames: ["service"],
      registers,
      collect() {
        this.reset();
        const ms = machine.listServices().filter((s) => s.service.config.mode === "master-slave");
        for (const { service } of ms.slice(0, REGISTRY_SERVICE_SERIES_MAX)) this.set({ service: service.name }, machine.masterOf(service.name).epoch);
      },
    });
    new PromGauge({
      name: "raftmesh_registry_services_without_master",
      help: "Master-slave services that have no master now.",
      registers,
      collect() {
        let n = 0;
        for (const { service } of machine.listServices()) if (service.config.mode === "master-slave" && machine.masterOf(service.name).master === "") n++;
        this.set(n);
      },
    });
    new PromGauge({ name: "raftmesh_registry_watchers", help: "Open watch streams on this node.", registers, collect() { this.set(src.hub.size); } });
    const expiries = new PromCounter({ name: "raftmesh_registry_lease_expiries_total", help: "Instances that turned critical because their heartbeat lease expired (applied entries).", registers });
    const masterChanges = new PromCounter({
      name: "raftmesh_registry_master_changes_total",
      help: "Changes of a service's master in applied entries, by reason (promoted, demoted, no-master, switchover, failback).",
      labelNames: ["reason"],
      registers,
    });
    const failovers = new PromCounter({ name: "raftmesh_registry_failovers_total", help: "Masters replaced by another instance: a promotion after the master was lost, a switchover or a failback (the first master of a service is not a failover).", registers });
    const healthChanges = new PromCounter({ name: "raftmesh_registry_health_changes_total", help: "Instance health changes in applied entries, by new health.", labelNames: ["health"], registers });
    for (const h of HEALTH_VALUES) healthChanges.inc({ health: h }, 0);
    src.feed.on("health", (e) => {
      healthChanges.inc({ health: e.to });
      if (e.to === "critical" && machine.instance(e.service, e.id)?.note.startsWith(LEASE_EXPIRED_NOTE_PREFIX)) expiries.inc();
    });
    // A failover replaces a master, at once (previous set) or after a time without one (a
    // no-master event first): orphaned remembers the services whose master was lost.
    const orphaned = new Set<string>();
    src.feed.on("changes", (events) => {
      for (const e of events) {
        if (e.kind !== "master") continue;
        masterChanges.inc({ reason: e.reason });
        if (e.master === "") {
          if (e.previous !== "") orphaned.add(e.service);
          continue;
        }
        if ((e.previous !== "" && e.previous !== e.master) || orphaned.has(e.service)) failovers.inc();
        orphaned.delete(e.service);
      }
    });
  }
}

/** seriesNames maps each service to its label: its own name for the first REGISTRY_SERVICE_SERIES_MAX (by name), OTHER_SERVICE after. */
export function seriesNames(services: readonly string[]): Map<string, string> {
  const sorted = [...services].sort();
  return new Map(sorted.map((s, i) => [s, i < REGISTRY_SERVICE_SERIES_MAX ? s : OTHER_SERVICE]));
}
