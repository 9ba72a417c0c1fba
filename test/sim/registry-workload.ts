import { SIM_SESSION_WINDOW } from "./registry-machine.js";
import { encodeCommand } from "../../src/registry/codec.js";
import {
  BALANCE_POLICIES,
  type CommandEnvelope,
  type InstanceSpec,
  DEFAULT_SERVICE_CONFIG,
  HEALTH_VALUES,
  type KvCompare,
  type KvOp,
  type RegistryCommand,
  SERVICE_MODES,
  type Session,
} from "../../src/registry/types.js";

/** WorkloadRng is the randomness the workload draws from (the simulator's Rng fits). */
export interface WorkloadRng {
  nextInt(maxExclusive: number): number;
  chance(p: number): boolean;
}

const SERVICES = ["web", "api", "db"];
const IDS = ["i0", "i1", "i2", "i3", "i4"];
const KEYS = ["k/a", "k/b", "k/c", "cfg", "lock"];
const VALUES = ["", "AA==", "AQ==", "/w==", "aGVsbG8="];

/**
 * RegistryWorkload draws random registry commands over a small name space, so commands collide
 * (re-registrations, conditional health changes that miss, reaps that are too early, txns on the
 * same keys) and every result kind occurs. Writes carry sessions of a few clients; some are
 * retries of the client's last (client, seq), a few reuse an older seq (stale), a few are invalid.
 */
export class RegistryWorkload {
  private readonly last = new Map<string, { seq: number; cmd: RegistryCommand }>();

  constructor(
    private readonly rng: WorkloadRng,
    private readonly clients = 4,
  ) {}

  /** next returns the entry data of one write stamped `at` (the proposing leader's clock). */
  next(at: number): Uint8Array {
    const r = this.rng;
    if (r.chance(0.01)) return new TextEncoder().encode('{"v":1,"at":0,"cmd":{"op":"bogus"}}');
    if (r.chance(0.15)) return encodeCommand({ v: 1, at, cmd: this.command() });
    const client = `c${r.nextInt(this.clients)}`;
    const prev = this.last.get(client);
    let env: CommandEnvelope;
    if (prev && r.chance(0.15)) {
      // A retry: same session and command, restamped by whichever leader receives it.
      env = { v: 1, at, session: { client, seq: prev.seq }, cmd: prev.cmd };
    } else if (prev && prev.seq > 1 && r.chance(0.04)) {
      // An old seq: inside the window it is a retry or a late first try; past it, stale.
      const back = 1 + r.nextInt(Math.min(prev.seq - 1, 2 * SIM_SESSION_WINDOW));
      env = { v: 1, at, session: { client, seq: prev.seq - back }, cmd: this.command() };
    } else {
      const session: Session = { client, seq: (prev?.seq ?? 0) + 1 };
      const cmd = this.command();
      this.last.set(client, { seq: session.seq, cmd });
      env = { v: 1, at, session, cmd };
    }
    return encodeCommand(env);
  }

  /** command draws one command. */
  command(): RegistryCommand {
    const r = this.rng;
    const service = this.pick(SERVICES);
    const id = this.pick(IDS);
    const roll = r.nextInt(100);
    if (roll < 25) {
      const instance: InstanceSpec = {
        id,
        service,
        address: `10.0.0.${r.nextInt(4)}`,
        port: r.chance(0.03) ? 0 : 8000 + r.nextInt(3),
        tags: r.chance(0.5) ? ["http"] : [],
        metadata: r.chance(0.5) ? { v: `${r.nextInt(3)}`, a: "x" } : {},
        weight: r.nextInt(200),
        priority: r.nextInt(3),
        zone: this.pick(["z1", "z2", ""]),
        ttlMs: 1_000,
        deregisterCriticalAfterMs: r.chance(0.7) ? 10_000 : 0,
      };
      // Some registrations start critical or warning (an instance whose checks fail already). Read
      // off the weight rather than drawn, so every seed keeps the schedule it had before.
      if (instance.weight % 7 === 0) return { op: "instance.register", instance, health: "critical", note: "starting" };
      if (instance.weight % 7 === 1) return { op: "instance.register", instance, health: "warning", note: "" };
      return { op: "instance.register", instance };
    }
    if (roll < 32) return { op: "instance.deregister", service, id };
    if (roll < 50) {
      const changes = Array.from({ length: 1 + r.nextInt(3) }, () => ({
        service: this.pick(SERVICES),
        id: this.pick(IDS),
        health: this.pick(HEALTH_VALUES),
        note: this.pick(["", "lease expired: 1000 ms", "503"]),
        ifModIndex: r.chance(0.5) ? 0 : r.nextInt(200),
      }));
      return { op: "health.set", changes };
    }
    if (roll < 56) return { op: "instance.reap", service, id };
    if (roll < 60) {
      const config = { ...DEFAULT_SERVICE_CONFIG, policy: this.pick(BALANCE_POLICIES), mode: this.pick(SERVICE_MODES), retries: r.nextInt(4), retryBudgetPercent: 20, perTryTimeoutMs: 0, fallback: r.chance(0.3) ? this.pick(SERVICES) : "" };
      return { op: "service.put", name: service, config };
    }
    if (roll < 62) return { op: "service.delete", name: service };
    if (roll < 78) return { op: "kv.put", key: this.pick(KEYS), value: this.pick(VALUES) };
    if (roll < 84) return r.chance(0.3) ? { op: "kv.delete", key: "k/", prefix: true } : { op: "kv.delete", key: this.pick(KEYS) };
    if (roll >= 92) return this.failoverCommand();
    return { op: "kv.txn", compares: this.compares(), success: this.ops(), failure: this.ops() };
  }

  /**
   * failoverCommand draws the master-slave side of the workload on service "db": health changes
   * that carry replication positions (as the leader's lease driver sends them), switchovers to any
   * instance or to the best, fail-backs (mostly early, so refused), and configs that turn db
   * master-slave with a lag rule and a preferred instance.
   */
  private failoverCommand(): RegistryCommand {
    const r = this.rng;
    const roll = r.nextInt(100);
    const positions = () => Array.from({ length: 1 + r.nextInt(3) }, () => ({ service: "db", id: this.pick(IDS), position: r.nextInt(100) }));
    if (roll < 40) {
      const changes = Array.from({ length: r.nextInt(3) }, () => ({ service: "db", id: this.pick(IDS), health: this.pick(HEALTH_VALUES), note: "", ifModIndex: 0 }));
      return { op: "health.set", changes, positions: positions() };
    }
    if (roll < 65) return { op: "failover", service: "db", to: r.chance(0.3) ? "" : this.pick(IDS), reason: "switchover", positions: positions() };
    if (roll < 75) return { op: "failover", service: "db", to: this.pick(IDS), reason: "failback" };
    const config = {
      ...DEFAULT_SERVICE_CONFIG,
      mode: "master-slave" as const,
      maxLagOnFailover: this.pick([0, 20]),
      failback: r.chance(0.5) ? this.pick(IDS) : "",
      failbackHoldDownMs: 1_000 + r.nextInt(4_000),
    };
    return { op: "service.put", name: "db", config };
  }

  private compares(): KvCompare[] {
    const r = this.rng;
    return Array.from({ length: r.nextInt(3) }, () => {
      const target = this.pick(["value", "mod", "create", "version"] as const);
      const op = this.pick(["==", "!=", "<", ">"] as const);
      const key = this.pick(KEYS);
      return target === "value" ? { key, target, op, value: this.pick(VALUES) } : { key, target, op, number: r.nextInt(50) };
    });
  }

  private ops(): KvOp[] {
    const r = this.rng;
    return Array.from({ length: r.nextInt(4) }, (): KvOp => {
      const roll = r.nextInt(3);
      const key = this.pick(KEYS);
      if (roll === 0) return { op: "put", key, value: this.pick(VALUES) };
      if (roll === 1) return { op: "delete", key };
      return { op: "get", key };
    });
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.rng.nextInt(items.length)]!;
  }
}
