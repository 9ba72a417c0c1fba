import { describe, expect, it } from "vitest";
import type { UnsafeSwitches } from "../../src/raft/index.js";
import { runCampaign } from "./campaign.js";
import { UNSAFE_CONF_VARIANTS } from "./unsafe-conf.js";

/**
 * Each switch breaks the core on purpose. A checker that never fails proves nothing, so each bug
 * must be caught, by the property it violates, within CONTROL_SEEDS_MAX seeds. The first failing
 * seeds at the time of writing, with the nodes running the production host loop (RaftNode):
 * grantVoteWithoutLogCheck 1, commitPriorTermByCount 47 (then 173, 303), skipPersistVote 80 (then
 * 438, 471), readWithoutHeartbeat 134 (then 380, 407), confChangeWhileUncommitted 10,
 * confChangeBeforeTermCommit 50 (then 129, 224).
 */
const CONTROL_SEEDS_MAX = 500;

/** LEASE_CONTROL_SEEDS_MAX: the fast lease clock was first caught at seed 3 (then 4) at the time of writing; 20 leaves room and stays fast. */
const LEASE_CONTROL_SEEDS_MAX = 20;

/**
 * FENCE_CONTROL_SEEDS_MAX: with the handover fence disabled (a new master told "master" while the
 * previous one may still act on its lease) the two-masters check first failed at registry seed 11
 * (then 79, 102) at the time of writing.
 */
const FENCE_CONTROL_SEEDS_MAX = 150;

const CONTROLS: [keyof UnsafeSwitches, string[]][] = [
  ["grantVoteWithoutLogCheck", ["leader completeness", "log matching", "state machine safety"]],
  ["commitPriorTermByCount", ["leader completeness", "log matching", "state machine safety"]],
  ["skipPersistVote", ["election safety", "leader completeness", "log matching"]],
  ["readWithoutHeartbeat", ["linearizable read"]],
];

describe("sim: negative controls", () => {
  // A membership bug must be caught by the membership check itself, before it does other damage.
  for (const name of UNSAFE_CONF_VARIANTS) {
    it(`sim: ${name} is caught by membership safety within ${CONTROL_SEEDS_MAX} seeds`, async () => {
      const r = await runCampaign(1, CONTROL_SEEDS_MAX, { unsafeConf: name }, 1);
      const first = r.failures[0];
      expect(first, `${name} was not caught in ${CONTROL_SEEDS_MAX} seeds`).toBeDefined();
      expect(first?.violation?.property).toBe("membership safety");
    });
  }

  // A lease clock running twice as fast expires leases at half their TTL: the lease checks must see it.
  it(`sim: a fast lease clock is caught by the lease checks within ${LEASE_CONTROL_SEEDS_MAX} registry seeds`, async () => {
    const r = await runCampaign(1, LEASE_CONTROL_SEEDS_MAX, { machine: "registry", unsafeLeaseClock: true }, 1);
    const first = r.failures[0];
    expect(first, `the fast lease clock was not caught in ${LEASE_CONTROL_SEEDS_MAX} seeds`).toBeDefined();
    expect(first?.violation?.property).toBe("lease");
  });

  // The handover fence is what keeps two masters apart: without it the two-masters check must fire.
  it(`sim: a master promoted without waiting out the previous master's lease is caught as two masters within ${FENCE_CONTROL_SEEDS_MAX} registry seeds`, async () => {
    const r = await runCampaign(1, FENCE_CONTROL_SEEDS_MAX, { machine: "registry", unsafeMasterFence: true }, 1);
    const first = r.failures[0];
    expect(first, `the disabled fence was not caught in ${FENCE_CONTROL_SEEDS_MAX} seeds`).toBeDefined();
    expect(first?.violation?.property).toBe("lease");
    expect(first?.violation?.message).toMatch(/told master .* while .* acts as master/);
  });

  for (const [name, properties] of CONTROLS) {
    it(`sim: ${name} is caught within ${CONTROL_SEEDS_MAX} seeds`, async () => {
      const r = await runCampaign(1, CONTROL_SEEDS_MAX, { unsafe: { [name]: true } }, 1);
      const first = r.failures[0];
      expect(first, `${name} was not caught in ${CONTROL_SEEDS_MAX} seeds`).toBeDefined();
      expect(properties).toContain(first?.violation?.property);
    });
  }
});
