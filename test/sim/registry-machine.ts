import type { Entry, LogIndex } from "../../src/raft/index.js";
import { decodeCommand } from "../../src/registry/codec.js";
import { RegistryStateMachine } from "../../src/registry/state-machine.js";
import type { CommandResult, RegistryEvent } from "../../src/registry/types.js";
import { SafetyViolation } from "./checker.js";
import { chainHash } from "./kv-machine.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** foldText folds a string into a running chain hash (as an entry with no term, so it reuses chainHash). */
function foldText(chain: number, text: string): number {
  return chainHash(chain, { term: 0, index: 0, kind: 0, data: encoder.encode(text) } as Entry);
}

/**
 * RegistrySimMachine drives the RegistryStateMachine in the simulator. Its chain hash folds each
 * entry, then the command's result and the events it emitted, so two nodes with equal chains
 * applied the same entries and changed their registries the same way. It also checks at-most-once
 * application against its own record of each client's highest applied seq (carried in snapshots).
 */
export class RegistrySimMachine {
  chain = 0;
  private events: RegistryEvent[] = [];
  private registry = this.makeRegistry();
  /** appliedSeq is each client's highest seq whose command ran (not a duplicate, not stale). */
  private appliedSeq = new Map<string, number>();
  /** lastResult is what the last apply returned (undefined for no-ops). */
  lastResult: CommandResult | undefined;

  get applied(): LogIndex {
    return this.registry.applied;
  }

  private makeRegistry(): RegistryStateMachine {
    return new RegistryStateMachine({ onEvents: (e) => this.events.push(...e) });
  }

  apply(e: Entry): void {
    if (e.index !== this.applied + 1) throw new Error(`apply gap: ${this.applied} then ${e.index}`);
    this.events = [];
    const result = this.registry.apply(e);
    this.lastResult = result;
    this.chain = chainHash(this.chain, e);
    if (!result) return;
    this.chain = foldText(this.chain, JSON.stringify(result));
    if (this.events.length > 0) this.chain = foldText(this.chain, JSON.stringify(this.events));
    this.checkAtMostOnce(e, result);
  }

  private checkAtMostOnce(e: Entry, result: CommandResult): void {
    let session: { client: string; seq: number } | undefined;
    try {
      session = decodeCommand(e.data).session;
    } catch {
      return;
    }
    if (!session) return;
    const done = this.appliedSeq.get(session.client) ?? 0;
    if (!result.ok && result.code === "stale-session") {
      if (session.seq >= done) throw new SafetyViolation("at-most-once", `seq ${session.seq} of ${session.client} refused as stale at ${e.index}, but only ${done} ran`);
      return;
    }
    // A retry's answer is the first application's result (a failure too), which carries its index.
    if (result.index !== e.index || (result.ok && result.duplicate)) {
      if (session.seq !== done || result.index >= e.index) {
        throw new SafetyViolation("at-most-once", `${session.client} seq ${session.seq} answered as a retry at ${e.index}, last ran ${done}`);
      }
      return;
    }
    if (session.seq <= done) throw new SafetyViolation("at-most-once", `${session.client} seq ${session.seq} ran again at ${e.index} (last ran ${done})`);
    this.appliedSeq.set(session.client, session.seq);
  }

  /** state is the registry's own snapshot (for checks). */
  registrySnapshot(): Uint8Array {
    return this.registry.snapshot();
  }

  snapshot(): Uint8Array {
    const app = Buffer.from(this.registry.snapshot()).toString("base64");
    return encoder.encode(JSON.stringify({ chain: this.chain, seqs: [...this.appliedSeq], app }));
  }

  restore(data: Uint8Array): void {
    const s = JSON.parse(decoder.decode(data)) as { chain: number; seqs: [string, number][]; app: string };
    this.registry = this.makeRegistry();
    this.registry.restore(Buffer.from(s.app, "base64"));
    this.chain = s.chain;
    this.appliedSeq = new Map(s.seqs);
    this.lastResult = undefined;
  }
}
