import type { RestoreJob } from "../../src/node/state-machine.js";
import type { Entry, LogIndex } from "../../src/raft/index.js";
import { KvMachine } from "./kv-machine.js";
import { RegistrySimMachine } from "./registry-machine.js";

/** MachineKind selects the state machine simulated nodes run: the small KV map or the registry. */
export type MachineKind = "kv" | "registry";

/** SimMachine is what the simulator needs of a state machine: apply in order, a hash chain of what was applied, snapshots. */
export interface SimMachine {
  readonly applied: LogIndex;
  readonly chain: number;
  apply(e: Entry): void;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
  /** beginRestore (optional) restores a slice at a time, as the node's RestoreJob. */
  beginRestore?(data: Uint8Array): RestoreJob;
}

/** makeMachine builds a fresh machine of a kind. */
export function makeMachine(kind: MachineKind): SimMachine {
  return kind === "registry" ? new RegistrySimMachine() : new KvMachine();
}
