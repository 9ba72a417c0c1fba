import { describe, expect, it } from "vitest";
import { checkSessions, type SessionFinal, type SessionWrite } from "../../jepsen/workloads/session-checker.js";

const ok = (index: number, duplicate: boolean) => ({ status: "ok" as const, index, duplicate });
const info = { status: "info" as const };

function finals(entries: [string, string, number][]): Map<string, SessionFinal> {
  return new Map(entries.map(([k, value, version]) => [k, { value, version }]));
}

describe("session checker", () => {
  it("session checker: retries answered from the session, each key applied once, is valid", () => {
    const writes: SessionWrite[] = [
      { key: "a", first: ok(5, false), retry: ok(5, true), spansLeaderChange: true },
      { key: "b", first: info, retry: ok(9, false), spansLeaderChange: false },
      { key: "c", first: info, retry: ok(7, true), spansLeaderChange: false },
      { key: "d", first: info, retry: info, spansLeaderChange: false },
    ];
    const r = checkSessions(writes, finals([["a", "first", 1], ["b", "second", 1], ["c", "first", 1]]));
    expect(r.valid).toBe(true);
    expect(r.stats).toMatchObject({ writes: 4, acknowledged: 1, retried: 3, duplicates: 2, retriedAcrossClockLeaderChange: 1 });
  });

  it("session checker: negative control — a retry applied again (the session was forgotten) is caught", () => {
    const writes: SessionWrite[] = [{ key: "a", first: ok(5, false), retry: ok(12, false), spansLeaderChange: true }];
    const r = checkSessions(writes, finals([["a", "second", 2]]));
    expect(r.valid).toBe(false);
    expect(r.anomalies.map((a) => a.kind)).toEqual(["applied-twice", "retry-not-duplicate"]);
  });

  it("session checker: an acknowledged write missing from the final read is lost; no final read is unknown", () => {
    const writes: SessionWrite[] = [{ key: "a", first: ok(5, false), spansLeaderChange: false }];
    expect(checkSessions(writes, finals([])).anomalies.map((a) => a.kind)).toEqual(["lost"]);
    expect(checkSessions(writes, undefined).valid).toBe("unknown");
  });
});
