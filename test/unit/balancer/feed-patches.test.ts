/**
 * The balancer feed sends whole tables only for config and master changes and patches for
 * instance changes; a worker's RouteTable fed by it must hold, after every turn, exactly the
 * tables a whole-table feed would give it (tableOf of the registry's current state). Real
 * registry state machine, real watch hub (as the agent wires them), random command schedules.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildRegistry } from "../../../src/agent/local-registry.js";
import { RegistryFeed as BalancerFeed } from "../../../src/balancer/feed.js";
import type { ToWorker } from "../../../src/balancer/messages.js";
import { RouteTable } from "../../../src/balancer/route-table.js";
import { newStatsBuffer, StatsSlots } from "../../../src/balancer/stats.js";
import { tableOf } from "../../../src/balancer/tables.js";
import { EntryKind } from "../../../src/raft/index.js";
import { encodeCommand } from "../../../src/registry/codec.js";
import { DEFAULT_SERVICE_CONFIG, type RegistryCommand } from "../../../src/registry/types.js";
import { instanceSpec } from "../../fixtures/registry.js";

const SERVICES = ["a", "b"];
const IDS = ["i1", "i2", "i3", "i4"];
const silent = { info() {}, warn() {}, error() {}, debug() {} } as never;

const command: fc.Arbitrary<RegistryCommand> = fc.oneof(
  fc.record({ service: fc.constantFrom(...SERVICES), id: fc.constantFrom(...IDS), port: fc.integer({ min: 8000, max: 8003 }), weight: fc.integer({ min: 1, max: 3 }) }).map(
    ({ service, id, port, weight }) => ({ op: "instance.register", instance: instanceSpec(id, { service, port, weight }) }) as RegistryCommand,
  ),
  fc.record({ service: fc.constantFrom(...SERVICES), id: fc.constantFrom(...IDS) }).map(({ service, id }) => ({ op: "instance.deregister", service, id }) as RegistryCommand),
  fc.record({ service: fc.constantFrom(...SERVICES), id: fc.constantFrom(...IDS), health: fc.constantFrom("passing", "warning", "critical") }).map(
    ({ service, id, health }) => ({ op: "health.set", changes: [{ service, id, health, note: "", ifModIndex: 0 }] }) as RegistryCommand,
  ),
  fc.record({ service: fc.constantFrom(...SERVICES), id: fc.constantFrom(...IDS), on: fc.boolean() }).map(({ service, id, on }) => ({ op: "instance.maintenance", service, id, on, reason: "" }) as RegistryCommand),
  fc.record({ name: fc.constantFrom(...SERVICES), mode: fc.constantFrom("active-active", "master-slave") }).map(({ name, mode }) => ({ op: "service.put", name, config: { ...DEFAULT_SERVICE_CONFIG, mode } }) as RegistryCommand),
  fc.constantFrom(...SERVICES).map((name) => ({ op: "service.delete", name }) as RegistryCommand),
);

/** turns: each a few commands applied in one event-loop turn, then the feed's flush. */
const schedule = fc.array(fc.array(command, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 12 });

const turnEnds = () => new Promise<void>((r) => setImmediate(() => setImmediate(r)));

describe("balancer feed patches", () => {
  it("a worker fed patches holds, after every turn, the tables whole-table messages would give it", async () => {
    // Across the runs the schedules must exercise patches and compare tables with endpoints in them, or the property says little.
    let patchesSent = 0;
    let endpointsCompared = 0;
    await fc.assert(
      fc.asyncProperty(schedule, fc.boolean(), async (turns, withStats) => {
        const { machine, hub } = buildRegistry();
        const slots = withStats ? new StatsSlots() : undefined;
        const routes = new RouteTable(
          "",
          () => 0.5,
          (name, err) => {
            throw new Error(`bad table for ${name}: ${String(err)}`);
          },
          undefined,
          slots ? new Float64Array(newStatsBuffer()) : undefined,
        );
        let patches = 0;
        const feed = new BalancerFeed(
          { registry: machine, hub },
          (m: ToWorker) => {
            const stamped = slots ? slots.stamp(m) : m;
            if (stamped.t === "tables") {
              patches += stamped.patches?.length ?? 0;
              routes.apply(stamped);
            }
          },
          silent,
        );
        feed.start();
        let index = 0;
        for (const turn of turns) {
          for (const cmd of turn) machine.apply({ term: 1, index: ++index, kind: EntryKind.Normal, data: encodeCommand({ v: 1, at: 1_700_000_000_000 + index, cmd }) });
          await turnEnds();
          for (const name of SERVICES) {
            const v = machine.getService(name);
            const got = routes.get(name);
            if (!v) {
              expect(got).toBeUndefined();
              continue;
            }
            const want = tableOf(v.service, v.instances, machine.masterOf(name));
            expect(got?.table.endpoints).toEqual(want.endpoints);
            endpointsCompared += want.endpoints.length;
            expect(got?.table.master).toEqual(want.master);
            expect(got?.table.config).toEqual(want.config);
            expect(got?.mode).toBe(want.mode);
            // With metrics on, every endpoint the worker routes to has its stats slot, patched-in ones too.
            if (slots) for (const e of want.endpoints) expect(got?.instanceSlots.has(e.id)).toBe(true);
          }
        }
        feed.close();
        patchesSent += patches;
      }),
      { numRuns: 300 },
    );
    // The schedules are random (unseeded): 15 runs of 150 schedules sent 87-145 patches, so a bound
    // of 100 failed one run in five. Over 300 schedules ~250 patches and ~1,600 endpoints are
    // expected; the bounds sit 4 or more standard deviations below.
    expect(patchesSent).toBeGreaterThan(150);
    expect(endpointsCompared).toBeGreaterThan(800);
  });
});
