import { describe, expect, it } from "vitest";
import { type AckedWrite, checkWatch, type WatchChange, type WatcherLog } from "../../jepsen/workloads/watch-checker.js";

const ch = (index: number, key: string, what: string, connection = 0): WatchChange => ({ index, key, what, time: index, connection });
const watcher = (name: string, changes: WatchChange[], caughtUp = true): WatcherLog => ({ name, changes, caughtUp, lastIndex: Math.max(0, ...changes.map((c) => c.index)) });
const acked: AckedWrite[] = [
  { index: 3, key: "k", what: "put v1" },
  { index: 5, key: "k", what: "put v2" },
];

describe("watch checker", () => {
  it("watch checker: complete, ordered deliveries across reconnects are valid", () => {
    const r = checkWatch([watcher("w1", [ch(3, "k", "put v1"), ch(5, "k", "put v2", 1)]), watcher("w2", [ch(3, "k", "put v1"), ch(5, "k", "put v2")])], acked);
    expect(r.valid).toBe(true);
  });

  it("watch checker: flags going back in time and duplicates after a reconnect (planted)", () => {
    const back = checkWatch([watcher("w1", [ch(3, "k", "put v1"), ch(5, "k", "put v2"), ch(3, "k", "put v1", 1)])], acked);
    expect(back.anomalies.map((a) => a.kind)).toContain("back-in-time");
    const dup = checkWatch([watcher("w1", [ch(3, "k", "put v1"), ch(5, "k", "put v2"), ch(5, "k", "put v2", 1)])], acked);
    expect(dup.valid).toBe(false);
    expect(dup.anomalies.map((a) => a.kind)).toEqual(["duplicate"]);
  });

  it("watch checker: flags a missed change, a lost acknowledged write and divergence (planted)", () => {
    const missed = checkWatch([watcher("w1", [ch(3, "k", "put v1"), ch(5, "k", "put v2")]), watcher("w2", [ch(5, "k", "put v2")])], acked);
    expect(missed.anomalies).toEqual([expect.objectContaining({ kind: "missed", example: [{ index: 3, key: "k", seenBy: "w1" }] })]);
    const lost = checkWatch([watcher("w1", [ch(5, "k", "put v2")])], acked);
    expect(lost.anomalies.map((a) => a.kind)).toEqual(["lost"]);
    const divergent = checkWatch([watcher("w1", [ch(3, "k", "put v1"), ch(5, "k", "put v2")]), watcher("w2", [ch(3, "k", "put vX"), ch(5, "k", "put v2")])], acked);
    expect(divergent.anomalies.map((a) => a.kind)).toEqual(["divergent"]);
  });

  it("watch checker: a watcher that never caught up makes the verdict unknown, not valid", () => {
    const r = checkWatch([watcher("w1", [ch(3, "k", "put v1"), ch(5, "k", "put v2")]), watcher("w2", [ch(3, "k", "put v1")], false)], acked);
    expect(r.valid).toBe("unknown");
  });
});
