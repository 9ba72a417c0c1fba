/**
 * ServiceBalancer for one service in one worker: the eligibility plan (cached until something
 * changes), one picker per priority level, and the endpoints' state across updates.
 *
 * Hot path: pick() with an unchanged plan reads the cached levels, draws a level only when more
 * than one has a share, and calls the level's picker. It allocates nothing: candidate arrays,
 * cumulative weights, rings and Maglev tables are built when the plan changes, never per pick.
 */
import type { BalancerConfig, BalancerDeps, Endpoint, EndpointChange, Outcome, PickRequest, ServiceBalancer, ServiceTable } from "../types.js";
import { validateBalancerConfig } from "./config.js";
import { ENDPOINTS_MAX, WEIGHT_MAX } from "./defaults.js";
import { type LevelPlan, planEligible } from "./eligibility.js";
import { EndpointState } from "./endpoint-state.js";
import { patchInOrder, sortedById } from "./id-order.js";
import { BalancerConfigError } from "./errors.js";
import { fmix32, hash32 } from "./hash.js";
import { leastConnectionsPicker } from "./least-connections.js";
import { maglevPicker } from "./maglev.js";
import { recordOutcome } from "./outlier.js";
import { p2cPicker } from "./p2c.js";
import type { Cursor, Picker, PickerFactory } from "./picker.js";
import { randomPicker } from "./random.js";
import { ringHashPicker } from "./ring-hash.js";
import { roundRobinPicker } from "./round-robin.js";
import { weightedPicker } from "./weighted.js";

/** LEVEL_SEED decorrelates the level draw of a hashed key from its place on the ring. */
const LEVEL_SEED = 0x27d4eb2f;

/** pickerFactory returns the factory of a config's policy. */
function pickerFactory(config: BalancerConfig): PickerFactory {
  switch (config.policy) {
    case "round-robin":
      return roundRobinPicker;
    case "random":
      return randomPicker;
    case "weighted":
      return weightedPicker;
    case "least-connections":
      return leastConnectionsPicker;
    case "p2c":
      return p2cPicker;
    case "hash":
      return config.hashMethod === "maglev" ? maglevPicker : ringHashPicker;
  }
}

interface Level {
  readonly plan: LevelPlan;
  readonly picker: Picker;
}

/** PolicyServiceBalancer is the ServiceBalancer of src/balancer/policy. */
export class PolicyServiceBalancer implements ServiceBalancer {
  private states: EndpointState[] = [];
  private readonly byId = new Map<string, EndpointState>();
  private config!: BalancerConfig;
  private factory!: PickerFactory;
  private master: ServiceTable["master"];
  private levels: Level[] = [];
  private spare: readonly EndpointState[] = [];
  /** sparePicker is built on the first retry that needs it after a replan (retries are rare; most plans never need it). */
  private sparePicker: Picker | undefined;
  private stale = true;
  /** sorted: states are in id order (`<`), as the feed's tables are, so patch can search them. */
  private sorted = false;
  private nextChangeMs = Number.POSITIVE_INFINITY;
  /**
   * cursors: one round-robin position per plan entry (kept across replans), and one for the spare
   * picker. Entries sharing one position would skew each other: a position left by an entry of 5
   * candidates, taken modulo 3 by the next, favours some of its candidates.
   */
  private readonly cursors: Cursor[] = [];
  private readonly spareCursor: Cursor = { next: 0 };

  constructor(
    table: ServiceTable,
    private readonly deps: BalancerDeps,
  ) {
    this.update(table);
  }

  update(table: ServiceTable): void {
    validateBalancerConfig(table.config);
    validateEndpoints(table.endpoints);
    this.sorted = sortedById(table.endpoints, endpointId);
    const states: EndpointState[] = [];
    const seen = new Set<string>();
    for (const e of table.endpoints) {
      seen.add(e.id);
      const s = this.byId.get(e.id);
      if (s === undefined) states.push(new EndpointState(e));
      else {
        s.endpoint = e;
        states.push(s);
      }
    }
    for (const id of [...this.byId.keys()]) if (!seen.has(id)) this.byId.delete(id);
    for (const s of states) this.byId.set(s.endpoint.id, s);
    this.states = states;
    this.config = table.config;
    this.factory = pickerFactory(table.config);
    // A master of an older epoch than the one routed to is stale news from a reordered feed.
    const m = table.master;
    if (m === undefined || this.master === undefined || m.epoch >= this.master.epoch) this.master = m;
    this.stale = true;
  }

  patch(endpoints: readonly Endpoint[], change: EndpointChange): void {
    if (endpoints.length > ENDPOINTS_MAX) throw new BalancerConfigError("endpoints", `must hold at most ${ENDPOINTS_MAX}`);
    change.put.forEach((e, i) => {
      validateEndpoint(e, `put[${i}]`);
    });
    if (!this.sorted) {
      this.update({ name: "", config: this.config, endpoints, master: this.master });
      return;
    }
    // The same walk as the table's (route-table.ts patched), so the states keep its order. An id
    // both removed and put keeps its state, as update keeps a surviving id's.
    let dropped: Map<string, EndpointState> | undefined;
    patchInOrder(this.states, change, {
      idOf: stateId,
      removed: (s) => {
        this.byId.delete(s.endpoint.id);
        (dropped ??= new Map()).set(s.endpoint.id, s);
      },
      replace: (s, e) => {
        s.endpoint = e;
        return s;
      },
      create: (e) => {
        const s = dropped?.get(e.id) ?? new EndpointState(e);
        s.endpoint = e;
        this.byId.set(e.id, s);
        return s;
      },
    });
    this.stale = true;
  }

  pick(req: PickRequest, nowMs: number): Endpoint | undefined {
    if (this.stale || nowMs >= this.nextChangeMs) this.replan(nowMs);
    const levels = this.levels;
    if (levels.length === 0) return undefined;
    const keyed = this.config.policy === "hash" && req.hashKey !== undefined;
    // Hashes stay signed 32-bit integers (Smis): an unsigned one above 2^31 would be boxed per call.
    const hash = keyed ? hash32(req.hashKey as string) : this.config.policy === "hash" ? (this.deps.random() * 0x1_0000_0000) | 0 : 0;
    const level = levels.length === 1 ? (levels[0] as Level) : this.drawLevel(levels, keyed ? (fmix32(hash ^ LEVEL_SEED) >>> 0) / 0x1_0000_0000 : this.deps.random());
    const exclude = req.exclude;
    const s = level.picker.pick(hash, exclude);
    if (s !== undefined) return s.endpoint;
    if (exclude === undefined || exclude.size === 0) return undefined;
    return this.pickWider(hash, exclude);
  }

  onStart(id: string): void {
    const s = this.byId.get(id);
    if (s !== undefined) s.active++;
  }

  /** onEnd records a request's outcome; it returns true when the outcome ejected the endpoint (an outlier). */
  onEnd(id: string, outcome: Outcome, nowMs: number): boolean {
    const s = this.byId.get(id);
    if (s === undefined) return false; // removed meanwhile: its requests drain untracked
    if (s.active > 0) s.active--;
    if (recordOutcome(s, this.states, outcome === "failure", nowMs, this.config) !== "ejected") return false;
    this.stale = true;
    return true;
  }

  /** drawLevel maps u in [0, 1) onto the levels' cumulative shares. */
  private drawLevel(levels: readonly Level[], u: number): Level {
    const at = u * 100;
    for (const l of levels) if (at < l.plan.upTo) return l;
    return levels[levels.length - 1] as Level;
  }

  /**
   * pickWider serves a retry whose level had only excluded candidates: first the other levels with
   * a share, then any healthy endpoint (other zones, levels without a share), by the same policy.
   */
  private pickWider(hash: number, exclude: ReadonlySet<string>): Endpoint | undefined {
    for (const l of this.levels) {
      const s = l.picker.pick(hash, exclude);
      if (s !== undefined) return s.endpoint;
    }
    if (this.spare.length === 0) return undefined;
    this.sparePicker ??= this.factory(this.spare, { random: this.deps.random, cursor: this.spareCursor });
    return this.sparePicker.pick(hash, exclude)?.endpoint;
  }

  private replan(nowMs: number): void {
    const plan = planEligible(this.states, this.master, this.config, this.deps.localZone, nowMs);
    this.levels = plan.levels.map((l, i) => ({ plan: l, picker: this.factory(l.candidates, { random: this.deps.random, cursor: (this.cursors[i] ??= { next: 0 }) }) }));
    this.spare = plan.spare;
    this.sparePicker = undefined;
    this.nextChangeMs = plan.nextChangeMs;
    this.stale = false;
  }
}

/** validateEndpoints checks what the pickers rely on: a bounded count, unique ids, integer weights in range. */
function validateEndpoints(endpoints: readonly Endpoint[]): void {
  if (endpoints.length > ENDPOINTS_MAX) throw new BalancerConfigError("endpoints", `must hold at most ${ENDPOINTS_MAX}`);
  const ids = new Set<string>();
  endpoints.forEach((e, i) => {
    if (ids.has(e.id)) throw new BalancerConfigError(`endpoints[${i}].id`, `repeats ${JSON.stringify(e.id)}`);
    ids.add(e.id);
    validateEndpoint(e, `endpoints[${i}]`);
  });
}

/** validateEndpoint checks one endpoint's weight and priority; `at` names it in the error. */
function validateEndpoint(e: Endpoint, at: string): void {
  if (!Number.isInteger(e.weight) || e.weight < 0 || e.weight > WEIGHT_MAX) {
    throw new BalancerConfigError(`${at}.weight`, `must be an integer in [0, ${WEIGHT_MAX}]`);
  }
  if (!Number.isFinite(e.priority)) throw new BalancerConfigError(`${at}.priority`, "must be a finite number");
}

const stateId = (s: EndpointState): string => s.endpoint.id;
const endpointId = (e: Endpoint): string => e.id;
