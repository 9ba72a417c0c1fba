import { Emitter } from "../common/emitter.js";
import type { RegistryStateMachineOptions } from "./state-machine.js";
import type { RegistryEvent } from "./types.js";

/** RegistryEvents are what the applied registry tells its followers (the watch hub, the lease driver, later metrics and alerts). */
export interface RegistryEvents {
  [name: string]: unknown;
  /** changes: the events of one applied entry that changed something, after the registry includes them. */
  changes: readonly RegistryEvent[];
  /** reset: a snapshot replaced the registry's state at this index. */
  reset: number;
}

/**
 * RegistryFeed is the registry's typed emitter: the state machine's hooks feed it, and each
 * follower subscribes on its own, so the registry can be built before the parts that follow it.
 */
export class RegistryFeed extends Emitter<RegistryEvents> {
  /** hooks are the state machine options that feed this emitter. */
  hooks(): Pick<RegistryStateMachineOptions, "onEvents" | "onReset"> {
    return { onEvents: (events) => this.emit("changes", events), onReset: (index) => this.emit("reset", index) };
  }
}
