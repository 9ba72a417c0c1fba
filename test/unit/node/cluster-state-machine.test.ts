import { describe, expect, it } from "vitest";
import { ClusterStateMachine, encodeAppCommand, encodeMemberAddress } from "../../../src/node/cluster-state-machine.js";
import type { StateMachine } from "../../../src/node/state-machine.js";
import { ConfChangeType, type Entry, EntryKind, encodeConfChange, nodeId } from "../../../src/raft/index.js";

/** BytesMachine records the data of every entry it sees; its snapshot is those bytes joined. */
class BytesMachine implements StateMachine {
  applied = 0;
  seen: string[] = [];
  apply(e: Entry): unknown {
    this.applied = e.index;
    this.seen.push(Buffer.from(e.data).toString("latin1"));
    return e.index;
  }
  snapshot(): Uint8Array {
    return Buffer.from(this.seen.join("|"), "latin1");
  }
  restore(data: Uint8Array): void {
    this.seen = Buffer.from(data).toString("latin1").split("|");
  }
}

const normal = (index: number, data: Uint8Array): Entry => ({ term: 1, index, kind: EntryKind.Normal, data });
const conf = (index: number, type: (typeof ConfChangeType)[keyof typeof ConfChangeType], node: string): Entry => ({
  term: 1,
  index,
  kind: EntryKind.ConfChange,
  data: encodeConfChange({ type, node: nodeId(node) }),
});

describe("cluster state machine", () => {
  it("cluster machine: records addresses, strips the app tag, forgets removed members until they are added again", () => {
    const app = new BytesMachine();
    const m = new ClusterStateMachine(app);
    m.apply(normal(1, encodeMemberAddress({ id: "n4", peer: "h:7100", api: "h:7200" })));
    m.apply(normal(2, encodeAppCommand(Buffer.from("x"))));
    m.apply(conf(3, ConfChangeType.Remove, "n4"));
    expect(m.address("n4")).toBeUndefined();
    expect(m.isRemoved("n4")).toBe(true);
    m.apply(normal(4, encodeMemberAddress({ id: "n4", peer: "h2:7100", api: "h2:7200" })));
    expect(m.isRemoved("n4")).toBe(false);
    expect(m.address("n4")?.peer).toBe("h2:7100");
    expect(app.applied).toBe(4);
    expect(app.seen[1]).toBe("x");
  });

  it("cluster machine: a binary snapshot round-trips the header and the app's bytes untouched; version 1 JSON is still read", () => {
    const app = new BytesMachine();
    const m = new ClusterStateMachine(app);
    m.apply(normal(1, encodeMemberAddress({ id: "n4", peer: "h:7100", api: "h:7200" })));
    m.apply(conf(2, ConfChangeType.Remove, "n5"));
    m.apply(normal(3, encodeAppCommand(Buffer.from([0, 255, 124, 7]))));
    const snap = m.snapshot();
    expect(Buffer.from(snap.subarray(0, 4)).toString()).toBe("RMCS");
    const copy = new ClusterStateMachine(new BytesMachine());
    copy.restore(snap);
    expect(copy.applied).toBe(3);
    expect(copy.address("n4")?.api).toBe("h:7200");
    expect(copy.isRemoved("n5")).toBe(true);
    expect(Buffer.compare(Buffer.from(copy.snapshot()), Buffer.from(snap))).toBe(0);

    const v1 = Buffer.from(
      JSON.stringify({ version: 1, applied: 9, addresses: [{ id: "n6", peer: "p:1", api: "a:2" }], removed: [], app: Buffer.from("a|b").toString("base64") }),
    );
    const old = new BytesMachine();
    const fromV1 = new ClusterStateMachine(old);
    fromV1.restore(v1);
    expect([fromV1.applied, fromV1.address("n6")?.peer, old.seen]).toEqual([9, "p:1", ["a", "b"]]);
    const future = Buffer.from(snap);
    future[4] = 9;
    expect(() => new ClusterStateMachine(new BytesMachine()).restore(future)).toThrow(/version 9/);
  });
});
