import { joinChunks, type RestoreJob, type SnapshotJob } from "../../src/node/state-machine.js";
import type { Entry, LogIndex } from "../../src/raft/index.js";
import { decodeCommand } from "../../src/registry/codec.js";
import type { LeaseRegistry } from "../../src/registry/lease-driver.js";
import { RegistryStateMachine } from "../../src/registry/state-machine.js";
import type { CommandResult, RegistryEvent } from "../../src/registry/types.js";
import { SafetyViolation } from "./checker.js";
import { chainHash } from "./kv-machine.js";

/** SIM_SESSION_WINDOW is the registry's session window in the simulator: small, so stale retries happen. */
export const SIM_SESSION_WINDOW = 4;

/** SIM_SNAPSHOT_SLICE_ROWS: a few rows per slice, so a simulated registry's snapshot takes several slices. */
const SIM_SNAPSHOT_SLICE_ROWS = 3;

/** RESULTS_KEPT: a lease proposal's promise resolves right after its entry applies, long before 64 more entries do. */
const RESULTS_KEPT = 64;

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
  /** ran is, per client, the seqs whose command ran (not a duplicate, not stale), within the session window. */
  private ran = new Map<string, number[]>();
  /** epochs: each service's last epoch seen by this node (epochs never go back; a service deleted and made again starts above). */
  private epochs = new Map<string, number>();
  /** lastResult is what the last apply returned (undefined for no-ops). */
  lastResult: CommandResult | undefined;
  /** results keeps the last RESULTS_KEPT results by index, so a lease driver's proposal reads its own result. */
  private readonly results = new Map<number, CommandResult>();
  /** onEvents and onReset are the node's lease-driver feed (as RegistryFeed feeds it in the agent). */
  onEvents: ((events: RegistryEvent[]) => void) | undefined;
  onReset: (() => void) | undefined;

  /** resultAt is the result of the entry at index, while it is among the last RESULTS_KEPT applied. */
  resultAt(index: number): CommandResult | undefined {
    return this.results.get(index);
  }

  /** leaseView is the applied registry as the lease driver reads it; it follows restores, which replace the registry. */
  leaseView(): LeaseRegistry {
    return {
      eachInstance: () => this.registry.eachInstance(),
      instance: (service, id) => this.registry.instance(service, id),
      instances: (service) => this.registry.instances(service),
      getService: (name) => this.registry.getService(name),
      roleOf: (service, id) => this.registry.roleOf(service, id),
      masterOf: (service) => this.registry.masterOf(service),
      failbacksDue: (now) => this.registry.failbacksDue(now),
    };
  }

  get applied(): LogIndex {
    return this.registry.applied;
  }

  private makeRegistry(): RegistryStateMachine {
    // A small session window, so the workload's stale retries reach past it.
    return new RegistryStateMachine({ onEvents: (e) => this.events.push(...e), limits: { sessionWindow: SIM_SESSION_WINDOW } });
  }

  apply(e: Entry): void {
    if (e.index !== this.applied + 1) throw new Error(`apply gap: ${this.applied} then ${e.index}`);
    this.events = [];
    const result = this.registry.apply(e);
    this.lastResult = result;
    this.chain = chainHash(this.chain, e);
    if (!result) return;
    this.results.set(e.index, result);
    this.results.delete(e.index - RESULTS_KEPT);
    if (this.events.length > 0) this.onEvents?.(this.events);
    this.chain = foldText(this.chain, JSON.stringify(result));
    if (this.events.length > 0) this.chain = foldText(this.chain, JSON.stringify(this.events));
    this.checkAtMostOnce(e, result);
    this.checkMasters(e.index);
  }

  private checkAtMostOnce(e: Entry, result: CommandResult): void {
    let session: { client: string; seq: number } | undefined;
    try {
      session = decodeCommand(e.data).session;
    } catch {
      return;
    }
    if (!session) return;
    const ran = this.ran.get(session.client) ?? [];
    const maxSeq = ran.length > 0 ? Math.max(...ran) : 0;
    const what = `${session.client} seq ${session.seq} at ${e.index} (ran: ${ran.join(",")})`;
    if (!result.ok && result.code === "stale-session") {
      if (session.seq > maxSeq - SIM_SESSION_WINDOW) throw new SafetyViolation("at-most-once", `refused as stale inside the window: ${what}`);
      return;
    }
    // A seq that ran, sent again with another request, is refused and nothing runs (a reuse, not a retry).
    if (!result.ok && result.code === "failed-precondition" && result.message.startsWith("session.seq:")) {
      if (!ran.includes(session.seq)) throw new SafetyViolation("at-most-once", `refused as a reused seq but never ran: ${what}`);
      return;
    }
    // A retry's answer is the first application's result (a failure too), which carries its index.
    if (result.index !== e.index || (result.ok && result.duplicate)) {
      if (!ran.includes(session.seq) || result.index >= e.index) throw new SafetyViolation("at-most-once", `answered as a retry but never ran: ${what}`);
      return;
    }
    if (ran.includes(session.seq)) throw new SafetyViolation("at-most-once", `ran again: ${what}`);
    const next = [...ran, session.seq];
    const top = Math.max(maxSeq, session.seq);
    this.ran.set(
      session.client,
      next.filter((x) => x > top - SIM_SESSION_WINDOW),
    );
  }

  /**
   * masters is every master-slave service's (master, epoch), in name order. It is folded into the
   * chain after each entry, so the checker's comparison of chains at equal applied indexes is the
   * check that all nodes agree on (master, epoch) there.
   */
  masters(): string {
    return this.registry
      .listServices()
      .filter((s) => s.service.config.mode === "master-slave" || s.master.master !== "")
      .map((s) => `${s.service.name}=${s.master.master}@${s.master.epoch}`)
      .join(",");
  }

  /** checkMasters: one master per service at most, registered, not critical, in a master-slave service; epochs never go back. */
  private checkMasters(index: number): void {
    const services = this.registry.listServices();
    // A deleted service's epochs go with it; made again, its first promotion's epoch (an index) is above them anyway.
    const present = new Set(services.map((s) => s.service.name));
    for (const name of [...this.epochs.keys()]) if (!present.has(name)) this.epochs.delete(name);
    for (const s of services) {
      const { master, epoch } = s.master;
      const name = s.service.name;
      const before = this.epochs.get(name) ?? 0;
      if (epoch < before || epoch > index) throw new SafetyViolation("failover", `${name}: epoch ${epoch} after ${before} at index ${index}`);
      this.epochs.set(name, epoch);
      if (master === "") continue;
      const inst = this.registry.instance(name, master);
      if (s.service.config.mode !== "master-slave" || !inst || inst.health === "critical") {
        throw new SafetyViolation("failover", `${name}: master ${master} at ${index} is ${inst ? inst.health : "not registered"} (${s.service.config.mode})`);
      }
    }
    this.chain = foldText(this.chain, this.masters());
  }

  /** state is the registry's own snapshot (for checks). */
  registrySnapshot(): Uint8Array {
    return this.registry.snapshot();
  }

  snapshot(): Uint8Array {
    const app = Buffer.from(this.registry.snapshot()).toString("base64");
    return encoder.encode(JSON.stringify({ chain: this.chain, ran: [...this.ran], app }));
  }

  /**
   * beginSnapshot slices the registry's snapshot SIM_SNAPSHOT_SLICE_ROWS rows at a time, so the
   * node's sliced snapshots (entries applied between the slices) run in every seed.
   */
  beginSnapshot(): SnapshotJob {
    const chain = this.chain;
    const ran = [...this.ran].map(([client, seqs]) => [client, [...seqs]]);
    const job = this.registry.beginSnapshot(undefined, SIM_SNAPSHOT_SLICE_ROWS);
    return {
      step: () => {
        const chunks = job.step();
        if (chunks === undefined) return undefined;
        const app = Buffer.from(joinChunks(chunks)).toString("base64");
        return [encoder.encode(JSON.stringify({ chain, ran, app }))];
      },
    };
  }

  restore(data: Uint8Array): void {
    const job = this.beginRestore(data);
    while (!job.step()) {
      // slice by slice, as the node does
    }
  }

  /**
   * beginRestore restores the registry SIM_SNAPSHOT_SLICE_ROWS rows at a time into a new registry,
   * taken on in the last step, so the node's sliced installs (tasks running between the slices,
   * nothing applied) run in every seed that installs a snapshot.
   */
  beginRestore(data: Uint8Array): RestoreJob {
    const s = JSON.parse(decoder.decode(data)) as { chain: number; ran: [string, number[]][]; app: string };
    const registry = this.makeRegistry();
    const job = registry.beginRestore(Buffer.from(s.app, "base64"), SIM_SNAPSHOT_SLICE_ROWS);
    return {
      step: () => {
        if (!job.step()) return false;
        this.restored(registry, s);
        return true;
      },
    };
  }

  private restored(registry: RegistryStateMachine, s: { chain: number; ran: [string, number[]][] }): void {
    this.registry = registry;
    this.chain = s.chain;
    this.ran = new Map(s.ran);
    this.epochs = new Map(this.registry.listServices().map((x) => [x.service.name, x.master.epoch]));
    this.lastResult = undefined;
    this.results.clear();
    this.onReset?.();
  }
}
