/**
 * listServices' counts by health are kept as instances change (InstanceMap), not recounted: after
 * every entry of a random log (registrations, re-registrations, deregistrations, health changes,
 * reaping, service deletes) and after a whole or sliced restore, they must equal a recount; so must
 * serviceHealth(), the monitoring tick's allocation-free view.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EntryKind } from "../../../src/raft/index.js";
import { InstanceMap } from "../../../src/registry/instance-map.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import type { Instance } from "../../../src/registry/types.js";
import { randomLog } from "./registry-harness.js";

/** recounted is every service's counts, counted from its instances. */
function recounted(sm: RegistryStateMachine) {
  return sm.listServices().map((s) => {
    const n = { instances: 0, passing: 0, warning: 0, critical: 0 };
    for (const i of sm.instances(s.service.name)) {
      n.instances++;
      n[i.health]++;
    }
    return [s.service.name, n];
  });
}
const kept = (sm: RegistryStateMachine) => sm.listServices().map((s) => [s.service.name, s.counts]);

describe("instance counts by health", () => {
  it("InstanceMap counts puts over an existing id, deletes of absent ids and clear", () => {
    const m = new InstanceMap();
    const inst = (id: string, health: Instance["health"]) => ({ id, health }) as Instance;
    m.set("a", inst("a", "passing")).set("b", inst("b", "critical"));
    m.set("a", inst("a", "warning"));
    expect([m.passing, m.warning, m.critical, m.size]).toEqual([0, 1, 1, 2]);
    expect(m.delete("zz")).toBe(false);
    expect(m.delete("b")).toBe(true);
    expect([m.passing, m.warning, m.critical, m.size]).toEqual([0, 1, 0, 1]);
    m.clear();
    expect([m.passing, m.warning, m.critical, m.size]).toEqual([0, 0, 0, 0]);
  });

  it("property: after every entry and after a whole or sliced restore, the kept counts equal a recount", () => {
    let changes = 0;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 250 }), fc.integer({ min: 1, max: 7 }), (seed, length, sliceRows) => {
        const sm = new RegistryStateMachine();
        let index = 0;
        let last = "";
        for (const data of randomLog(seed, length)) {
          sm.apply({ term: 1, index: ++index, kind: EntryKind.Normal, data });
          const counts = kept(sm);
          expect(counts).toEqual(recounted(sm));
          // serviceHealth (the monitoring tick's view) reuses one object: copy each step.
          const health = Array.from(sm.serviceHealth(), (v) => ({ ...v }));
          expect(health.sort((a, b) => (a.name < b.name ? -1 : 1))).toEqual(
            sm.listServices().map((s) => ({ name: s.service.name, mode: s.service.config.mode, master: s.master.master, instances: s.counts.instances, critical: s.counts.critical })),
          );
          const now = JSON.stringify(counts);
          if (now !== last) changes++;
          last = now;
        }
        const whole = new RegistryStateMachine();
        whole.restore(sm.snapshot());
        expect(kept(whole)).toEqual(recounted(sm));
        const sliced = new RegistryStateMachine();
        const job = sliced.beginRestore(sm.snapshot(), sliceRows);
        while (!job.step()) {}
        expect(kept(sliced)).toEqual(recounted(sm));
      }),
      { numRuns: 150 },
    );
    // The workload must have moved the counts often, or the property proved nothing.
    expect(changes).toBeGreaterThan(1_000);
  });
});
