import { describe, expect, it } from "vitest";
import { checkSet, type SetAdd } from "../../jepsen/workloads/set-checker.js";

const adds: SetAdd[] = [
  { element: "e0", status: "ok" },
  { element: "e1", status: "ok" },
  { element: "e2", status: "info" },
  { element: "e3", status: "fail" },
];

describe("set checker", () => {
  it("set checker: every acknowledged element present is valid, indeterminate ones either way", () => {
    const r = checkSet(adds, [
      { node: "n1", elements: ["e0", "e1", "e2"] },
      { node: "n2", elements: ["e1", "e0"] },
    ]);
    expect(r.valid).toBe(true);
    expect(r.stats).toMatchObject({ acknowledged: 2, recovered: 1 });
  });

  it("set checker: flags a lost acknowledged element", () => {
    const r = checkSet(adds, [{ node: "n1", elements: ["e0"] }]);
    expect(r.valid).toBe(false);
    expect(r.anomalies.map((a) => a.kind)).toEqual(["lost"]);
    expect(r.anomalies[0]?.example).toEqual(["e1"]);
  });

  it("set checker: flags unexpected (never added or refused) and duplicated elements", () => {
    const r = checkSet(adds, [{ node: "n1", elements: ["e0", "e1", "e3", "zz", "e0"] }]);
    expect(r.valid).toBe(false);
    expect(r.anomalies.map((a) => a.kind).sort()).toEqual(["duplicated", "unexpected"]);
    expect(r.anomalies.find((a) => a.kind === "unexpected")?.example).toEqual([
      { element: "e3", add: "fail" },
      { element: "zz", add: "never" },
    ]);
  });

  it("set checker: no successful final read is unknown, never valid", () => {
    expect(checkSet(adds, [{ node: "n1", elements: undefined }]).valid).toBe("unknown");
    expect(checkSet(adds, [{ node: "n1", elements: ["e0", "e1"] }, { node: "n2", elements: undefined }]).valid).toBe("unknown");
  });
});
