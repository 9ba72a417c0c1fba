import { describe, expect, it } from "vitest";
import { nodeStatus } from "../../../src/agent/status.js";
import type { RaftNode } from "../../../src/node/raft-node.js";
import { Role } from "../../../src/raft/index.js";

describe("node status", () => {
  it("reports the state machine's applied index, not the core's, which runs ahead while a leader's snapshot is being installed", () => {
    // The core after stepping in a snapshot at 110,004: its applied is the snapshot's index at once.
    const core = { id: "n4", role: Role.Follower, lead: "n1", term: 2, commit: 110_004, applied: 110_004, lastIndex: 110_004, voters: ["n1", "n2", "n3"], learners: ["n4"] };
    const node = {
      status: () => core as unknown as ReturnType<RaftNode["status"]>,
      snapshotIndex: () => 0,
      // The machine still holds its empty state: the install has not finished.
      appliedIndex: () => 0,
    };
    const st = nodeStatus({ node, clusterId: "c", version: "0", addressOf: () => undefined });
    expect(st.applied).toBe(0);
    expect(st.commit).toBe(110_004);
    expect(st.role).toBe("learner");
  });
});
