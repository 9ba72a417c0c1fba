/**
 * A leader whose stored snapshots cannot be read back (the file system answers EISDIR: each file is
 * replaced by a symbolic link to a directory, which unlink still removes) must neither stop nor
 * resend the unreadable snapshot for ever: it logs the error, takes a new snapshot once it has
 * applied past the current one, and the follower that needed a snapshot catches up from that one.
 * Real processes, real LevelDB directories and snapshot files.
 */
import { mkdir, readdir, rm, stat, symlink } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SNAPSHOT_DIR, snapshotFileName } from "../../../src/storage/snapshot-store.js";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

/** A snapshot every 100 entries (the smallest setting), so the outage's writes compact past the stopped follower. */
const SNAPSHOT_ENTRIES = "100";
/** CATCH_UP_MS bounds the follower's catch-up: a failed send, a new snapshot, the leader's retry. */
const CATCH_UP_MS = 30_000;

/**
 * OUTAGE_WRITES are written one at a time while the follower is down: each is its own append
 * message, so the leader's queue for the down follower (PEER_BACKLOG_MESSAGES_MAX = 256, newest
 * kept) cannot carry them all to it on reconnect, and the follower can only catch up through a
 * snapshot. (With writes 10 at a time the appends were batched, the backlog held all of them, and
 * the restarted follower caught up from it with no snapshot at all.)
 */
const OUTAGE_WRITES = 600;

async function putOneByOne(c: ProcessCluster, via: string, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) await c.client(via).put(`k-${i}`, `v-${i}`);
}

describe("snapshot read fault", () => {
  let c: ProcessCluster | undefined;
  afterAll(async () => {
    await c?.cleanup();
  });

  it("a leader that cannot read its snapshots back takes a new one and the lagging follower catches up from it", async () => {
    c = await ProcessCluster.create({ size: 3, env: { RAFTMESH_SNAPSHOT_ENTRIES: SNAPSHOT_ENTRIES } });
    c.startAll();
    const leader = await c.waitForLeader();
    const follower = c.runningIds().find((id) => id !== leader) as string;
    await putOneByOne(c, leader, 0, 20);
    await c.stop(follower);
    await putOneByOne(c, leader, 20, OUTAGE_WRITES);
    const snapshotIndex = await waitFor("the leader to snapshot past the stopped follower", async () => {
      const s = await c?.client(leader).status();
      return s && s.snapshotIndex >= OUTAGE_WRITES - 100 ? s.snapshotIndex : undefined;
    });

    // The node reports a snapshot before its file is written: wait for the file (and no half-written one).
    const dir = join(c.dataDir, leader, SNAPSHOT_DIR);
    const { term } = await c.client(leader).status();
    await waitFor("the leader's snapshot file", async () => {
      const names = await readdir(dir);
      return names.includes(snapshotFileName({ term, index: snapshotIndex })) && !names.some((n) => n.endsWith(".tmp"));
    });
    // Every stored snapshot of the leader becomes unreadable: reading it fails with EISDIR.
    const elsewhere = join(c.root, "not-a-snapshot");
    await mkdir(elsewhere, { recursive: true });
    const files = [];
    for (const name of await readdir(dir)) {
      if (!(await stat(join(dir, name))).isFile()) continue;
      await rm(join(dir, name));
      await symlink(elsewhere, join(dir, name));
      files.push(name);
    }
    expect(files.length, "the leader stored no snapshot file").toBeGreaterThan(0);

    const logStart = (await c.logOf(leader)).length;
    c.start(follower);
    // One more write, so the leader has applied past its current snapshot and may take a new one.
    await putOneByOne(c, leader, 20 + OUTAGE_WRITES, 5);
    await waitFor(`${follower} to install a snapshot`, async () => (await c?.logOf(follower))?.includes("installed snapshot from leader"), CATCH_UP_MS);
    const leaderLog = (await c.logOf(leader)).slice(logStart);
    expect(leaderLog).toContain("could not read the snapshot to send back from the store");
    expect(leaderLog).not.toContain("raft node failed");
    expect(c.isRunning(leader)).toBe(true);
    expect((await c.client(leader).status()).snapshotIndex).toBeGreaterThan(snapshotIndex);

    for (const key of ["k-0", "k-19", "k-200", `k-${19 + OUTAGE_WRITES}`, `k-${24 + OUTAGE_WRITES}`]) {
      const got = await waitFor(`${follower} to hold ${key}`, async () => {
        const r = await c?.client(follower).get(key, { stale: true }).catch(() => undefined);
        return r?.value.toString() === `v-${key.slice(2)}` ? r : undefined;
      });
      expect(got.value.toString()).toBe(`v-${key.slice(2)}`);
    }
    await c.client(follower).put("after", "yes");
  }, 90_000);
});
