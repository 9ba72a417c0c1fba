import { describe, expect, it } from "vitest";
import { EntryKind } from "../../../src/raft/index.js";
import { encodeCommand } from "../../../src/registry/codec.js";
import { type HealthChanged, RegistryFeed } from "../../../src/registry/events.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import type { RegistryCommand } from "../../../src/registry/types.js";
import { instanceSpec } from "../../fixtures/registry.js";

/** fed is a registry whose hooks feed a RegistryFeed, with every health event recorded. */
function fed() {
  const feed = new RegistryFeed();
  const sm = new RegistryStateMachine(feed.hooks());
  const health: HealthChanged[] = [];
  const order: string[] = [];
  feed.on("changes", () => order.push("changes"));
  feed.on("health", (h) => {
    order.push("health");
    health.push(h);
  });
  const run = (cmd: RegistryCommand) => sm.apply({ term: 1, index: sm.applied + 1, kind: EntryKind.Normal, data: encodeCommand({ v: 1, at: 1_000, cmd }) });
  return { feed, sm, health, order, run };
}

describe("registry: typed events", () => {
  it("events: a health change is reported once, after the changes of its entry; other updates are not", () => {
    const { health, order, run } = fed();
    run({ op: "instance.register", instance: instanceSpec("a") });
    expect(health.map((h) => [h.id, h.from, h.to])).toEqual([["a", undefined, "passing"]]);
    expect(order).toEqual(["changes", "health"]);
    // Registering it again with the same health is an update, not a change of health.
    run({ op: "instance.register", instance: instanceSpec("a", { port: 81 }) });
    expect(health).toHaveLength(1);
    run({ op: "health.set", changes: [{ service: "web", id: "a", health: "critical", note: "down", ifModIndex: 0 }] });
    expect(health.slice(1).map((h) => [h.id, h.from, h.to, h.index])).toEqual([["a", "passing", "critical", 3]]);
    run({ op: "instance.deregister", service: "web", id: "a" });
    run({ op: "instance.register", instance: instanceSpec("a") });
    expect(health.at(-1)).toMatchObject({ from: undefined, to: "passing", note: "" });
    expect(health[1]?.note).toBe("down");
  });

  it("events: from is the health the registry held before each event, across random sequences and restores", () => {
    // A reference that keeps every instance's health, as the feed once did, against previousHealth.
    for (let run = 0; run < 50; run++) {
      let seed = run + 1;
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed % n;
      };
      let f = fed();
      const kept = new Map<string, string>();
      const seen: [string, string | undefined, string][] = [];
      f.feed.on("health", (h) => seen.push([h.id, h.from, h.to]));
      const expected: [string, string | undefined, string][] = [];
      for (let step = 0; step < 60; step++) {
        const id = `i${rand(5)}`;
        const r = rand(10);
        const before = f.sm.applied;
        if (r < 4) f.run({ op: "instance.register", instance: instanceSpec(id) });
        else if (r < 7) f.run({ op: "health.set", changes: [{ service: "web", id, health: (["passing", "warning", "critical"] as const)[rand(3)] ?? "passing", note: `n${rand(2)}`, ifModIndex: 0 }] });
        else if (r < 9) f.run({ op: "instance.deregister", service: "web", id });
        else {
          // A node restored from a snapshot carries on from the same state.
          const snap = f.sm.snapshot();
          const next = fed();
          next.sm.restore(snap);
          next.feed.on("health", (h) => seen.push([h.id, h.from, h.to]));
          f = next;
          continue;
        }
        if (f.sm.applied === before) continue;
        const now = f.sm.instance("web", id)?.health;
        const was = kept.get(id);
        if (now === undefined) kept.delete(id);
        else {
          kept.set(id, now);
          if (now !== was) expected.push([id, was as string | undefined, now]);
        }
      }
      expect(seen).toEqual(expected);
      expect(expected.length).toBeGreaterThan(5);
    }
  });

  it("events: after a snapshot replaced the registry, health is compared with the restored instances", () => {
    const source = fed();
    source.run({ op: "instance.register", instance: instanceSpec("a") });
    const snap = source.sm.snapshot();
    const { sm, feed, health, run } = fed();
    const resets: number[] = [];
    feed.on("reset", (i) => resets.push(i));
    sm.restore(snap);
    expect(resets).toEqual([1]);
    run({ op: "instance.register", instance: instanceSpec("a", { port: 81 }) });
    expect(health).toEqual([]);
  });
});
