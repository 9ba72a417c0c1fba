import { Emitter } from "../common/emitter.js";
import type { RegistryStateMachineOptions } from "./state-machine.js";
import type { Health, Instance, RegistryEvent } from "./types.js";

/** HealthChanged says that an instance's health changed in an applied entry (from is undefined for a new instance). */
export interface HealthChanged {
  readonly index: number;
  readonly service: string;
  readonly id: string;
  readonly from: Health | undefined;
  readonly to: Health;
}

/** RegistryEvents are what the applied registry tells its followers (the watch hub, the lease driver; later metrics, the event stream and alerts). */
export interface RegistryEvents {
  [name: string]: unknown;
  /** changes: the events of one applied entry that changed something, after the registry includes them. */
  changes: readonly RegistryEvent[];
  /** reset: a snapshot replaced the registry's state at this index. */
  reset: number;
  /** health: one instance's health changed (after the changes of its entry were emitted). */
  health: HealthChanged;
}

/**
 * RegistryFeed is the registry's typed emitter: the state machine's hooks feed it, and each
 * follower subscribes on its own, so the registry can be built before the parts that follow it.
 * It keeps the last health of every instance to tell a change of health from any other update;
 * after a reset it takes them again from the registry it follows (follow()).
 */
export class RegistryFeed extends Emitter<RegistryEvents> {
  private readonly health = new Map<string, Health>();
  private registry: { allInstances(): Iterable<Instance> } | undefined;

  /** hooks are the state machine options that feed this emitter. */
  hooks(): Pick<RegistryStateMachineOptions, "onEvents" | "onReset"> {
    return { onEvents: (events) => this.changed(events), onReset: (index) => this.replaced(index) };
  }

  /** follow names the registry the hooks were given to, so a reset can reread its instances. */
  follow(registry: { allInstances(): Iterable<Instance> }): void {
    this.registry = registry;
    this.reseed();
  }

  private changed(events: readonly RegistryEvent[]): void {
    this.emit("changes", events);
    for (const e of events) {
      if (e.kind !== "instance") continue;
      if (e.type === "delete") {
        this.health.delete(key(e.service, e.id));
        continue;
      }
      const k = key(e.instance.service, e.instance.id);
      const from = this.health.get(k);
      if (from === e.instance.health) continue;
      this.health.set(k, e.instance.health);
      this.emit("health", { index: e.index, service: e.instance.service, id: e.instance.id, from, to: e.instance.health });
    }
  }

  private replaced(index: number): void {
    this.reseed();
    this.emit("reset", index);
  }

  private reseed(): void {
    this.health.clear();
    for (const i of this.registry?.allInstances() ?? []) this.health.set(key(i.service, i.id), i.health);
  }
}

const key = (service: string, id: string) => `${service}\u0000${id}`;
