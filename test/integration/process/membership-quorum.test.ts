/**
 * Strict reconfiguration on real processes: a change of voters that would leave fewer live voters
 * than the new configuration's quorum is refused (FAILED_PRECONDITION, naming why), so that three
 * anonymous requests (add a voter at a dead address, remove two live voters) cannot end the
 * cluster's availability; `--force` skips the check, and the forced change takes effect.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessCluster, runCli, waitFor } from "../harness/process-cluster.js";
import { rejection } from "../harness/rejection.js";

describe("membership: strict reconfiguration", () => {
  let c: ProcessCluster;
  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    await c.waitForLeader();
  });
  afterAll(async () => {
    await c?.cleanup();
  });

  it("membership: adding a dead voter then removing live voters is refused at the step that would leave no live quorum; --force goes through", async () => {
    const leader = await c.waitForLeader();
    const [first, second] = ["n1", "n2", "n3"].filter((id) => id !== leader) as [string, string];
    // n4 has ports but no process: a voter at a dead address.
    await c.allocate("n4");
    const client = c.client(leader);
    // 1. Four voters, three of them live: a quorum of three is still live.
    await client.addMember({ id: "n4", peer: c.peer("n4"), api: c.api("n4"), learner: false }, { deadlineMs: 10_000 });
    // 2. Three voters (leader, second, n4), two live: a quorum of two is still live.
    await client.removeMember(first, { deadlineMs: 10_000 });
    // 3. Two voters (leader, n4), one live: no quorum could form. Refused.
    const refused = await rejection(client.removeMember(second, { deadlineMs: 10_000 }));
    expect(refused.code, refused.details).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(refused.details).toContain(`removing ${second} refused`);
    expect(refused.details).toContain(`1 live voter(s) (${leader}) of 2, fewer than the quorum of 2`);
    expect(refused.notApplied).toBe(true);
    // The cluster is still available: the configuration is unchanged and writes commit.
    const members = await client.members();
    expect(members.members.filter((m) => !m.learner).map((m) => m.id).sort()).toEqual([leader, second, "n4"].sort());
    await client.put("still-available", "yes", { deadlineMs: 10_000 });
    expect((await c.client(second).get("still-available")).value.toString()).toBe("yes");

    // The CLI reports the same refusal; with --force the change is made regardless.
    const plain = await runCli(["members", "remove", second, "--endpoints", c.api(leader)]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain("FAILED_PRECONDITION");
    const forced = await runCli(["members", "remove", second, "--force", "--endpoints", c.api(leader)]);
    expect(forced.stderr).not.toContain("FAILED_PRECONDITION");
    await waitFor("the forced removal in the leader's configuration", async () => {
      const st = await client.status();
      return st.voters.length === 2 && st.voters.includes(leader) && st.voters.includes("n4") && !st.voters.includes(second);
    });
    // Disaster recovery: once n4 runs, the two-voter configuration has its quorum and takes writes.
    c.start("n4");
    await waitFor("a write after n4 comes up", () => client.put("recovered", "yes", { deadlineMs: 3_000 }).then(() => true), 30_000);
  });
});
