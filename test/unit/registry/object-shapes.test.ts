/**
 * The records a large registry holds by the hundred thousand (watch-history events, stored session
 * results) must share V8 hidden classes: a copy made by object spread got a class of its own once
 * the copying site had seen several shapes, ~190 bytes per object (maps and descriptor arrays were
 * 38 MB of a 100,000-instance node's heap). V8's own check (%HaveSameMap) says whether they share.
 */
import { setFlagsFromString } from "node:v8";
import { describe, expect, it } from "vitest";
import { EntryKind } from "../../../src/raft/index.js";
import { encodeCommand } from "../../../src/registry/codec.js";
import { RegistryStateMachine } from "../../../src/registry/state-machine.js";
import type { RegistryEvent } from "../../../src/registry/types.js";
import { instanceSpec } from "../../bench/registry/instances.js";

setFlagsFromString("--allow-natives-syntax");
const haveSameMap = new Function("a", "b", "return %HaveSameMap(a, b)") as (a: unknown, b: unknown) => boolean;

/** CLIENTS register INSTANCES instances (two each), with KV puts between, so the sites see varied shapes. */
const CLIENTS = 300;
const INSTANCES = 600;

function filled(): RegistryStateMachine {
  const sm = new RegistryStateMachine();
  let index = 0;
  for (let i = 0; i < INSTANCES; i++) {
    const service = `svc-${i % 7}`;
    const instance = instanceSpec(i, service, `i-${i}`, 3_600_000);
    sm.apply({ term: 1, index: ++index, kind: EntryKind.Normal, data: encodeCommand({ v: 1, at: 1_700_000_000_000 + i, session: { client: `c-${i % CLIENTS}`, seq: 2 * Math.floor(i / CLIENTS) + 1 }, cmd: { op: "instance.register", instance } }) });
    const kv = i % 3 === 0 ? { op: "kv.put" as const, key: `k${i}`, value: "dg==" } : { op: "kv.delete" as const, key: `k${i - 1}` };
    sm.apply({ term: 1, index: ++index, kind: EntryKind.Normal, data: encodeCommand({ v: 1, at: 1_700_000_000_000 + i, session: { client: `c-${i % CLIENTS}`, seq: 2 * Math.floor(i / CLIENTS) + 2 }, cmd: kv }) });
  }
  return sm;
}

describe("object shapes", () => {
  it("shapes: every instance event of the watch history shares one hidden class, and so does every stored session result of a registration", () => {
    const sm = filled();
    const answer = sm.eventsSince(0, 1_000_000);
    if (!("events" in answer)) throw new Error("history compacted");
    const puts = answer.events.filter((e): e is Extract<RegistryEvent, { kind: "instance"; type: "put" }> => e.kind === "instance" && e.type === "put");
    expect(puts).toHaveLength(INSTANCES);
    const unshared = puts.filter((e) => !haveSameMap(e, puts[0]));
    expect(unshared.length).toBe(0);

    const sessions = (sm as unknown as { sessions: { entries(): [string, { seqs: readonly number[]; results: readonly object[] }][] } }).sessions.entries();
    const registered = sessions.flatMap(([, r]) => r.results.filter((_, k) => (r.seqs[k] as number) % 2 === 1));
    expect(registered.length).toBe(INSTANCES);
    expect(registered.filter((r) => !haveSameMap(r, registered[0])).length).toBe(0);
  });

  it("shapes: instance records restored from a snapshot share the hidden class of records stored by registrations", () => {
    const sm = filled();
    const restored = new RegistryStateMachine();
    // beginRestore is what a learner runs (the sliced reader makes records compact as it reads them).
    const job = restored.beginRestore(sm.snapshot(), 50);
    while (!job.step()) {}
    const stored = sm.allInstances();
    const back = restored.allInstances();
    expect(back).toEqual(stored);
    expect(back.filter((i) => !haveSameMap(i, stored[0])).length).toBe(0);
  });
});
