import { describe, expect, it } from "vitest";
import { DAMPED_INITIAL, type Damped, damp } from "../../../src/local/checks/damp.js";
import { boundNote } from "../../../src/local/instance.js";
import { LOCAL_NOTE_BYTES_MAX } from "../../../src/local/limits.js";
import { NOTE_BYTES_MAX } from "../../../src/registry/limits.js";
import type { CheckStatus } from "../../../src/local/types.js";

function run(seq: CheckStatus[], rise: number, fall: number): (CheckStatus | undefined)[] {
  let s: Damped = DAMPED_INITIAL;
  return seq.map((status) => {
    s = damp(s, { status, note: status }, rise, fall);
    return s.status;
  });
}

describe("local: rise and fall", () => {
  it("local: the first result counts at once; fall failures in a row to go down, rise successes to come back", () => {
    const P = "passing";
    const C = "critical";
    expect(run([P, C, C, C, P, P], 2, 3)).toEqual([P, P, P, C, C, P]);
    // An interrupted streak starts again.
    expect(run([P, C, C, P, C, C, C], 2, 3)).toEqual([P, P, P, P, P, P, C]);
    expect(run([C, P, C, P, P], 2, 3)).toEqual([C, C, C, C, P]);
  });

  it("local: warning and critical are counted apart: a streak agrees on one status", () => {
    expect(run(["passing", "warning", "critical", "warning", "warning"], 1, 2)).toEqual(["passing", "passing", "passing", "passing", "warning"]);
    expect(run(["critical", "warning"], 1, 5)).toEqual(["critical", "warning"]);
  });

  it("local: rise 1 and fall 1 follow every result", () => {
    const seq: CheckStatus[] = ["passing", "critical", "passing", "warning", "passing"];
    expect(run(seq, 1, 1)).toEqual(seq);
  });

  it("local: the note is the one of the result that set the status", () => {
    let s = damp(DAMPED_INITIAL, { status: "passing", note: "a" }, 2, 2);
    s = damp(s, { status: "critical", note: "b" }, 2, 2);
    expect(s.note).toBe("a");
    s = damp(s, { status: "critical", note: "c" }, 2, 2);
    expect(s).toEqual({ status: "critical", note: "c", candidate: undefined, streak: 0 });
  });
});

describe("local: notes", () => {
  it("local: LOCAL_NOTE_BYTES_MAX is the registry's NOTE_BYTES_MAX", () => {
    expect(LOCAL_NOTE_BYTES_MAX).toBe(NOTE_BYTES_MAX);
  });

  it("local: a note of LOCAL_NOTE_BYTES_MAX bytes is kept whole; a longer one is cut to the limit on a character boundary", () => {
    const exact = "x".repeat(LOCAL_NOTE_BYTES_MAX);
    expect(boundNote(exact)).toBe(exact);
    const long = "é".repeat(LOCAL_NOTE_BYTES_MAX);
    const cut = boundNote(long);
    expect(Buffer.byteLength(cut, "utf8")).toBeLessThanOrEqual(LOCAL_NOTE_BYTES_MAX);
    expect(Buffer.byteLength(cut, "utf8")).toBeGreaterThan(LOCAL_NOTE_BYTES_MAX - 4);
    expect(cut.endsWith(" …")).toBe(true);
    expect(cut).not.toContain("\uFFFD");
    expect(boundNote(`${exact}y`).endsWith(" …")).toBe(true);
  });
});
