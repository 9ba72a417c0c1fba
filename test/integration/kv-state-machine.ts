import { type Entry, EntryKind, type LogIndex } from "../../src/raft/index.js";
import type { StateMachine } from "../../src/node/state-machine.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** KvCommand is a write to the small KV that serves until the registry state machine lands. */
export type KvCommand = { op: "put"; key: string; value: string } | { op: "delete"; key: string };

/** KvResult is what applying a KvCommand returns: the index it was applied at and the previous value. */
export interface KvResult {
  readonly index: LogIndex;
  readonly previous: string | undefined;
}

/** encodeKvCommand turns a command into entry data. */
export function encodeKvCommand(cmd: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

/**
 * KvStateMachine is a deterministic string map for tests of the host loop (the agent runs the registry). A malformed entry (which no node would propose)
 * is skipped with the same result everywhere, so it can never make replicas diverge.
 */
export class KvStateMachine implements StateMachine {
  applied: LogIndex = 0;
  private kv = new Map<string, string>();

  apply(entry: Entry): KvResult | undefined {
    this.applied = entry.index;
    if (entry.kind !== EntryKind.Normal || entry.data.length === 0) return undefined;
    let cmd: KvCommand;
    try {
      cmd = JSON.parse(decoder.decode(entry.data)) as KvCommand;
    } catch {
      return undefined;
    }
    const previous = this.kv.get(cmd.key);
    if (cmd.op === "put") this.kv.set(cmd.key, cmd.value);
    else if (cmd.op === "delete") this.kv.delete(cmd.key);
    return { index: entry.index, previous };
  }

  /** get reads a key from local state. */
  get(key: string): string | undefined {
    return this.kv.get(key);
  }

  /** size is the number of keys. */
  size(): number {
    return this.kv.size;
  }

  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify({ version: 1, applied: this.applied, kv: [...this.kv] }));
  }

  restore(data: Uint8Array): void {
    const s = JSON.parse(decoder.decode(data)) as { version: number; applied: number; kv: [string, string][] };
    if (s.version !== 1) throw new Error(`kv snapshot version ${s.version} is not supported`);
    this.applied = s.applied;
    this.kv = new Map(s.kv);
  }
}
