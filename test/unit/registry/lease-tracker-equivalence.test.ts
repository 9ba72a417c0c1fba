/**
 * The lease tracker's wakeup heap answers exactly what the full scan it replaced answered
 * (scan-lease-tracker.ts, the old code kept as the oracle): both are driven through the same random
 * histories of takeovers, registrations, health changes, deletions, renewals with and without a
 * status, both clocks moving (the cluster clock sometimes jumping ahead) and due() calls, and every
 * answer of due() and renew() must be equal (as sets: the heap lists by deadline, the scan by
 * table order; histories stay under the batch limits, so the sets are whole).
 *
 * The second property holds a sliced takeover (beginTakeover, then seedSome a few at a time) to the
 * takeover in one go, through the same kind of histories: renewals and due() calls while it still
 * seeds must answer exactly as if it had seeded everything. Changes are applied only once it has
 * seeded all (a change to an instance not seeded yet is tracked from the change instead: a
 * documented difference, tested in leases.test.ts).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LeaseTracker } from "../../../src/registry/lease-tracker.js";
import type { Health, Instance, RegistryEvent } from "../../../src/registry/types.js";
import { instance } from "../../fixtures/registry.js";
import { LeaseTracker as ScanLeaseTracker } from "./scan-lease-tracker.js";

const IDS = ["a", "b", "c"];
const SERVICES = ["web", "api"];
const HEALTH: Health[] = ["passing", "warning", "critical"];

type Op =
  | { t: "takeover" }
  | { t: "register"; s: number; i: number; ttl: number; after: number; health: number }
  | { t: "health"; s: number; i: number; health: number; note: number }
  | { t: "delete"; s: number; i: number }
  | { t: "deleteService"; s: number }
  | { t: "renew"; s: number; i: number; status: number }
  | { t: "time"; mono: number; cluster: number }
  | { t: "due" }
  | { t: "slice"; n: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.constant({ t: "takeover" as const }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant("register" as const), s: fc.nat(1), i: fc.nat(2), ttl: fc.constantFrom(1_000, 2_000, 3_000), after: fc.constantFrom(0, 0, 1_000, 3_000), health: fc.nat(2) }), weight: 4 },
  { arbitrary: fc.record({ t: fc.constant("health" as const), s: fc.nat(1), i: fc.nat(2), health: fc.nat(2), note: fc.nat(2) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("delete" as const), s: fc.nat(1), i: fc.nat(2) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant("deleteService" as const), s: fc.nat(1) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant("renew" as const), s: fc.nat(1), i: fc.nat(2), status: fc.nat(3) }), weight: 4 },
  { arbitrary: fc.record({
      t: fc.constant("time" as const),
      // Steps that add up to deadlines exactly (a look at the very deadline must agree too).
      mono: fc.constantFrom(0, 1, 500, 1_000, 2_000, 3_000),
      cluster: fc.constantFrom(0, 1, 500, 1_000, 2_000, 3_000, 20_000),
    }), weight: 5 },
  { arbitrary: fc.constant({ t: "due" as const }), weight: 6 },
);

/** opSliced adds seeding steps of a sliced takeover to the histories. */
const opSliced: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: op, weight: 6 },
  { arbitrary: fc.record({ t: fc.constant("slice" as const), n: fc.nat(3) }), weight: 2 },
);

const sorted = <T>(xs: readonly T[]) => xs.map((x) => JSON.stringify(x)).sort();

type Status = { health: Health; note: string } | undefined;

/** Pair is the two trackers under comparison, as one history drives them. */
interface Pair {
  /** takeover: this node becomes leader of the registry `live` at `mono`. */
  takeover(mono: number, live: Map<string, Instance>): void;
  slice(n: number): void;
  /** beforeChange runs before the registry changes, change once it has (the trackers observe the events). */
  beforeChange(): void;
  change(mono: number, events: RegistryEvent[]): void;
  renew(mono: number, service: string, id: string, status: Status): void;
  due(mono: number, cluster: number): void;
}

/** replay drives a pair through a history over one applied registry. */
function replay(ops: readonly Op[], pair: Pair): void {
  const live = new Map<string, Instance>();
  let index = 1;
  let mono = 0;
  let cluster = 1_700_000_000_000;
  const change = (key: string, inst: Instance | undefined, event: RegistryEvent) => {
    pair.beforeChange();
    if (inst) live.set(key, inst);
    else live.delete(key);
    pair.change(mono, [event]);
  };
  for (const o of ops) {
    if (o.t === "takeover") pair.takeover(mono, live);
    else if (o.t === "slice") pair.slice(o.n);
    else if (o.t === "register") {
      const svc = SERVICES[o.s] as string;
      const id = IDS[o.i] as string;
      const health = HEALTH[o.health] as Health;
      const inst = instance(id, { service: svc, ttlMs: o.ttl, deregisterCriticalAfterMs: o.after, health, note: health === "critical" ? "down" : "", createIndex: ++index, modIndex: index, healthSince: cluster });
      change(`${svc}/${id}`, inst, { index, kind: "instance", type: "put", instance: inst, previousHealth: live.get(`${svc}/${id}`)?.health });
    } else if (o.t === "health") {
      const prev = live.get(`${SERVICES[o.s]}/${IDS[o.i]}`);
      if (!prev) continue;
      const health = HEALTH[o.health] as Health;
      const note = ["", "down", "lease expired: no heartbeat"][o.note] as string;
      const inst = { ...prev, health, note, modIndex: ++index, healthSince: health === prev.health ? prev.healthSince : cluster };
      change(`${inst.service}/${inst.id}`, inst, { index, kind: "instance", type: "put", instance: inst, previousHealth: prev.health });
    } else if (o.t === "delete") {
      const svc = SERVICES[o.s] as string;
      const id = IDS[o.i] as string;
      if (!live.has(`${svc}/${id}`)) continue;
      change(`${svc}/${id}`, undefined, { index: ++index, kind: "instance", type: "delete", service: svc, id });
    } else if (o.t === "deleteService") {
      const svc = SERVICES[o.s] as string;
      pair.beforeChange();
      for (const k of [...live.keys()]) if (k.startsWith(`${svc}/`)) live.delete(k);
      pair.change(mono, [{ index: ++index, kind: "service", type: "delete", name: svc }]);
    } else if (o.t === "renew") {
      const status = [undefined, { health: "passing" as const, note: "" }, { health: "warning" as const, note: "slow" }, { health: "critical" as const, note: "down" }][o.status];
      pair.renew(mono, SERVICES[o.s] as string, IDS[o.i] as string, status);
    } else if (o.t === "time") {
      mono += o.mono;
      cluster += o.cluster;
    } else pair.due(mono, cluster);
  }
}

describe("lease tracker: wakeup heap against the full scan", () => {
  it("leases: property — due() and renew() answer exactly as the scan did, for any history", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const heap = new LeaseTracker();
        const scan = new ScanLeaseTracker();
        const both = (f: (t: LeaseTracker | ScanLeaseTracker) => unknown) => [f(heap), f(scan)];
        both((t) => t.becomeLeader(0, []));
        replay(ops, {
          takeover: (mono, live) => both((t) => t.becomeLeader(mono, [...live.values()])),
          slice: () => {},
          beforeChange: () => {},
          change: (mono, events) => both((t) => t.observe(mono, events)),
          renew: (mono, service, id, status) => {
            const [a, b] = both((t) => t.renew(mono, service, id, status));
            expect(a).toEqual(b);
          },
          due: (mono, cluster) => {
            const [a, b] = both((t) => t.due(mono, cluster)) as [ReturnType<LeaseTracker["due"]>, ReturnType<LeaseTracker["due"]>];
            expect(sorted(a.expire)).toEqual(sorted(b.expire));
            expect(sorted(a.reap)).toEqual(sorted(b.reap));
          },
        });
        expect(heap.size).toBe(scan.size);
      }),
      { numRuns: 3_000 },
    );
  });

  it("leases: property — a sliced takeover answers exactly as a takeover in one go, while it seeds and after", () => {
    fc.assert(
      fc.property(fc.array(opSliced, { maxLength: 120 }), (ops) => {
        const whole = new LeaseTracker();
        const sliced = new LeaseTracker();
        const both = (f: (t: LeaseTracker) => unknown) => [f(whole), f(sliced)];
        let ttlMax = 0;
        const checkTtlMax = () => {
          if (!sliced.isSeeding && whole.isLeading) expect(sliced.ttlMax).toBe(ttlMax);
        };
        replay(ops, {
          takeover: (mono, live) => {
            ttlMax = whole.becomeLeader(mono, [...live.values()]);
            // The live registry, as the driver hands it over: seeding reads it as it is then.
            sliced.beginTakeover(mono, live.values(), (svc, id) => live.get(`${svc}/${id}`));
            checkTtlMax();
          },
          slice: (n) => {
            sliced.seedSome(n);
            checkTtlMax();
          },
          // Changes wait for the sliced takeover to finish seeding (see the file's comment).
          beforeChange: () => sliced.seedSome(Number.POSITIVE_INFINITY),
          change: (mono, events) => both((t) => t.observe(mono, events)),
          renew: (mono, service, id, status) => {
            const [a, b] = both((t) => t.renew(mono, service, id, status));
            expect(b).toEqual(a);
          },
          due: (mono, cluster) => {
            const [a, b] = both((t) => t.due(mono, cluster)) as [ReturnType<LeaseTracker["due"]>, ReturnType<LeaseTracker["due"]>];
            expect(sorted(b.expire)).toEqual(sorted(a.expire));
            expect(sorted(b.reap)).toEqual(sorted(a.reap));
            checkTtlMax();
          },
        });
        sliced.seedSome(Number.POSITIVE_INFINITY);
        expect(sliced.size).toBe(whole.size);
      }),
      { numRuns: 3_000 },
    );
  });
});
