import { expect, it } from "vitest";
import { describeFailures } from "./campaign.js";
import { type RegistryTally, runSeed, type SimResult } from "./simulation.js";

/**
 * SEEDS: 240, down from 300 when the nodes began running lease drivers and heartbeats (about 20 %
 * more CPU a seed), so the file keeps its time in CI.
 */
const SEEDS = 240;

// Runs seeds 1..SEEDS with nodes running the RegistryStateMachine: Raft safety as in the kv runs, plus
// equal apply chains over results and events, byte-identical registries at the end, and at-most-once
// application of retried (client, seq) writes (checked by RegistrySimMachine), and the lease driver's
// promises to heartbeating instances (checked by LeaseWorkload).
it(`sim: seeds 1..${SEEDS} with the registry machine keep Raft safety, identical registries and at-most-once retries`, async () => {
  const failures: SimResult[] = [];
  const tally: RegistryTally = { commands: 0, ok: 0, duplicates: 0, failed: {} };
  let crashes = 0;
  let confChanges = 0;
  let snapshotsSent = 0;
  const leases = { heartbeats: 0, acks: 0, masterAnswers: 0, expiries: 0 };
  for (let seed = 1; seed <= SEEDS && failures.length < 5; seed++) {
    const r = await runSeed({ seed, machine: "registry" });
    if (!r.ok) failures.push(r);
    crashes += r.crashes;
    confChanges += r.confChanges;
    snapshotsSent += r.snapshotsSent;
    const t = r.registry!;
    for (const k of Object.keys(leases) as (keyof typeof leases)[]) leases[k] += t.leases?.[k] ?? 0;
    tally.commands += t.commands;
    tally.ok += t.ok;
    tally.duplicates += t.duplicates;
    for (const [code, n] of Object.entries(t.failed)) tally.failed[code] = (tally.failed[code] ?? 0) + n;
  }
  expect(describeFailures({ seeds: SEEDS, failures, healToWriteTicksMax: 0, elections: 0, writesAcked: 0, readsDone: 0, crashes, confChanges }, " --machine registry")).toBe("");
  // A clean result proves something only if the runs exercised faults and every kind of result.
  expect(crashes).toBeGreaterThan(SEEDS);
  expect(confChanges).toBeGreaterThan(30);
  expect(snapshotsSent).toBeGreaterThan(100);
  expect(tally.commands).toBeGreaterThan(20_000);
  expect(tally.ok).toBeGreaterThan(tally.commands / 2);
  expect(tally.duplicates).toBeGreaterThan(1_000);
  // Leases: heartbeats acknowledged, "master" answers given, and leases that expired (heartbeats stopped or lost to faults).
  expect(leases.acks).toBeGreaterThan(10_000);
  expect(leases.masterAnswers).toBeGreaterThan(1_000);
  expect(leases.expiries).toBeGreaterThan(1_000);
  for (const code of ["not-found", "stale-session", "invalid-argument", "failed-precondition"]) expect(tally.failed[code] ?? 0, code).toBeGreaterThan(100);
});
