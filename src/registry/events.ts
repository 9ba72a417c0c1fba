import { Emitter } from "../common/emitter.js";
import type { RegistryStateMachineOptions } from "./state-machine.js";
import type { Health, RegistryEvent } from "./types.js";

/** HealthChanged says that an instance's health changed in an applied entry (from is undefined for a new instance). */
export interface HealthChanged {
  readonly index: number;
  readonly service: string;
  readonly id: string;
  readonly from: Health | undefined;
  readonly to: Health;
  /** note is the instance's note after the change (why it is critical, for one). */
  readonly note: string;
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
 * A change of health is told from any other update by the health the instance had before the
 * event (previousHealth, which the state machine sets), so the feed keeps no copy of its own.
 */
export class RegistryFeed extends Emitter<RegistryEvents> {
  /** hooks are the state machine options that feed this emitter. */
  hooks(): Pick<RegistryStateMachineOptions, "onEvents" | "onReset"> {
    return { onEvents: (events) => this.changed(events), onReset: (index) => this.emit("reset", index) };
  }

  private changed(events: readonly RegistryEvent[]): void {
    this.emit("changes", events);
    for (const e of events) {
      if (e.kind !== "instance" || e.type !== "put" || e.previousHealth === e.instance.health) continue;
      this.emit("health", { index: e.index, service: e.instance.service, id: e.instance.id, from: e.previousHealth, to: e.instance.health, note: e.instance.note });
    }
  }
}
