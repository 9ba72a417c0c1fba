import { describe, expect, it } from "vitest";
import { type Entry, EntryKind, type LogIndex, nodeId } from "../../src/raft/index.js";
import { type LogView, SafetyChecker, SafetyViolation } from "./checker.js";

/** view is a log holding entries (index, term) for terms, after a snapshot at snapshotIndex. */
function view(id: string, commit: LogIndex, terms: number[], snapshot = { index: 0, term: 0 }): LogView {
  const entries: Entry[] = terms.map((term, i) => ({ index: snapshot.index + 1 + i, term, kind: EntryKind.Normal, data: new Uint8Array() }));
  return {
    id: nodeId(id),
    commit,
    lastIndex: snapshot.index + terms.length,
    snapshotIndex: snapshot.index,
    snapshotTerm: snapshot.term,
    entry: (i) => entries[i - snapshot.index - 1],
  };
}

const voters = (...ids: string[]) => ids.map(nodeId);

describe("sim: membership check", () => {
  it("sim: two nodes holding every committed entry may not use configurations with disjoint majorities", () => {
    const checker = new SafetyChecker();
    const a = view("n1", 2, [1, 1, 2]);
    const b = view("n3", 2, [1, 1]);
    checker.onCommitView(a);
    checker.onCommitView(b);
    expect(() => checker.onConfigurations([{ log: a, voters: voters("n1", "n2", "n3") }, { log: b, voters: voters("n2", "n3", "n4") }])).toThrow(
      SafetyViolation,
    );
    // One change apart is the normal state while a change is uncommitted.
    expect(() => checker.onConfigurations([{ log: a, voters: voters("n1", "n2", "n3") }, { log: b, voters: voters("n2", "n3") }])).not.toThrow();
  });

  it("sim: a node that lacks a committed entry known only from a leader's snapshot is left out", () => {
    // The leader commits 5 and compacts to it in one tick: only its snapshot shows index 5 committed.
    const checker = new SafetyChecker();
    const leader = view("n3", 5, [], { index: 5, term: 3 });
    const stale = view("n1", 3, [1, 1, 2]);
    checker.onCommitView(stale);
    checker.onCommitView(leader);
    expect(() =>
      checker.onConfigurations([{ log: leader, voters: voters("n2", "n3", "n4") }, { log: stale, voters: voters("n1", "n2", "n3") }]),
    ).not.toThrow();
  });
});
