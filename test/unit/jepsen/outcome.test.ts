import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { RaftmeshError } from "../../../src/client/index.js";
import { errorOutcome } from "../../jepsen/runner/outcome.js";

const err = (code: status, details: string, notApplied = false) => new RaftmeshError(code, details, "127.0.0.1:1", notApplied, "");

describe("operation outcomes", () => {
  it("outcome: only errors that prove the write did not happen are fail", () => {
    expect(errorOutcome(err(status.UNAVAILABLE, "no leader", true))).toBe("fail");
    expect(errorOutcome(err(status.FAILED_PRECONDITION, "x"))).toBe("fail");
    expect(errorOutcome(err(status.UNAVAILABLE, "No connection established. Last error: connect ECONNREFUSED"))).toBe("fail");
    expect(errorOutcome(err(status.UNAVAILABLE, "Connection dropped"))).toBe("info");
    expect(errorOutcome(err(status.DEADLINE_EXCEEDED, "Deadline exceeded"))).toBe("info");
    expect(errorOutcome(err(status.CANCELLED, "x"))).toBe("info");
    expect(errorOutcome(new Error("socket hang up"))).toBe("info");
  });
});
