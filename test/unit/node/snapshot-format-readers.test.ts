/**
 * A rolling upgrade: a member that reads only an older snapshot format must never be sent a newer
 * one (it would refuse it and stop). The node writes its snapshots in a format every member reads
 * (RaftNodeOptions.peerSnapshotReadMax), and when the snapshot it must send is newer than a member
 * reads, it drops the send and takes one the member reads. Real RaftNodes on MemoryLogStores, on
 * virtual time; FormatKv writes format 2 or 1 and a member of the "older build" refuses 2.
 */
import { describe, expect, it } from "vitest";
import type { NodeLogger } from "../../../src/node/raft-node.js";
import { type NodeId, nodeId } from "../../../src/raft/index.js";
import { KvStateMachine } from "../../integration/kv-state-machine.js";
import { Cluster } from "./tick-cluster.js";

const IDS = ["n1", "n2", "n3"].map(nodeId);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** NEWEST is the newest format FormatKv writes; an "older build" reads only OLDER. */
const NEWEST = 2;
const OLDER = 1;

/** FormatKv is the test KV with two snapshot formats: it writes the newest the readers read, and refuses a format newer than readsUpTo, as an older build would. */
class FormatKv extends KvStateMachine {
  readsUpTo = NEWEST;
  readonly written: number[] = [];
  readonly restored: number[] = [];

  override snapshot(readMax?: number): Uint8Array {
    const format = readMax === undefined || readMax >= NEWEST ? NEWEST : OLDER;
    this.written.push(format);
    const doc = JSON.parse(decoder.decode(super.snapshot())) as object;
    return encoder.encode(JSON.stringify({ ...doc, format }));
  }

  snapshotFormat(data: Uint8Array): number {
    return (JSON.parse(decoder.decode(data)) as { format: number }).format;
  }

  override restore(data: Uint8Array): void {
    const format = this.snapshotFormat(data);
    if (format > this.readsUpTo) throw new Error(`snapshot format ${format} is not supported`);
    this.restored.push(format);
    super.restore(data);
  }
}

/** Warned is a warning or error a node logged. */
interface Warned {
  readonly node: NodeId;
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/**
 * setUp builds the cluster; `readers` is what each member is told the others read (undefined: the
 * option is off), and `lastSaid` what they said on their latest call, open or ended (undefined: that option is off).
 */
function setUp(readers: ((peer: NodeId) => number) | undefined, lastSaid?: (peer: NodeId) => number) {
  const warned: Warned[] = [];
  const logger = (node: NodeId): NodeLogger => ({
    info: (fields: object, message: string) => {
      if (message.startsWith("holding back a snapshot")) warned.push({ node, fields: fields as Record<string, unknown>, message });
    },
    debug() {},
    error: (fields: object, message: string) => warned.push({ node, fields: fields as Record<string, unknown>, message }),
    warn: (fields: object, message: string) => warned.push({ node, fields: fields as Record<string, unknown>, message }),
  });
  const cl = new Cluster(IDS, { snapshotEveryEntries: 20, machine: () => new FormatKv(), logger, peerSnapshotReadMax: () => readers, peerSnapshotReadMaxLastSaid: () => lastSaid });
  const machine = (id: NodeId) => cl.member(id).machine as FormatKv;
  return { cl, warned, machine };
}

describe("node: snapshot formats across builds", { timeout: 30_000 }, () => {
  it("a member that reads only the older format is sent a snapshot in it: the newer one already taken is not sent, a new one in the older format is, and it catches up with no client write to make room for it", async () => {
    let older: NodeId | undefined;
    const { cl, warned, machine } = setUp((peer) => (peer === older ? OLDER : NEWEST));
    const { leader, behind } = await cl.leaveOneBehind(30);
    // Write on until the leader's latest snapshot is at its last entry: nothing past it, as in a quiet cluster.
    const lead = cl.member(leader).node;
    for (let i = 0; lead.snapshotIndex() !== machine(leader).applied || lead.snapshotBytesHeld() !== 0; i++) {
      if (i > 60) throw new Error("the leader never snapshotted at its last entry");
      await cl.write(leader, `k${30 + i}`);
      for (let t = 0; t < 5; t++) await cl.tick();
    }
    const snapIndex = lead.snapshotIndex();
    const keys = machine(leader).size();
    // Every member read the newest format when the leader took its snapshots.
    expect(new Set(machine(leader).written)).toEqual(new Set([NEWEST]));
    // Now the member left behind turns out to be an older build (restarted on it, say).
    older = behind;
    machine(behind).readsUpTo = OLDER;
    cl.cut.delete(behind);
    await cl.until("the leader to refuse sending its newest-format snapshot", () => warned.some((w) => w.node === leader && w.message.startsWith("not sending a snapshot in a format")), 200);
    // Nothing past the snapshot and no client writes: the leader appends an empty entry so that the
    // replacement has an index of its own (the store refuses a second snapshot at one index).
    await cl.until("the behind member to install a snapshot", () => machine(behind).restored.length > 0, 500);
    expect(machine(leader).written.at(-1), "the replacement is in the format the older member reads").toBe(OLDER);
    expect(machine(behind).restored).toEqual([OLDER]);
    expect(cl.member(leader).node.snapshotIndex()).toBeGreaterThan(snapIndex);
    await cl.until("the behind member to catch up", () => machine(behind).applied === machine(leader).applied, 200);
    for (let i = 0; i < keys; i++) expect(machine(behind).get(`k${i}`)).toBe("v");
    await cl.write(leader, "after");
    await cl.until("the behind member to apply a new write", () => machine(behind).get("after") === "v", 200);
    expect(cl.member(behind).seen.filter((s) => s.name === "failure")).toEqual([]);
    // Logged once for that snapshot and member, however often the core retried meanwhile.
    const refusals = warned.filter((w) => w.message.startsWith("not sending a snapshot in a format"));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]?.fields).toMatchObject({ to: behind, index: snapIndex, format: NEWEST, readMax: OLDER });
  });

  it("a member that is down, having said it reads the newest format, is not taken for an older build: snapshots stay in the newest format and it installs the newest when back", async () => {
    // A member cut off has no call open: it is not known to read more than the older format (the
    // agent's default for a member that says nothing), but it last said the newest.
    const { cl, warned, machine } = setUp(
      (peer) => (cl.cut.has(peer) ? OLDER : NEWEST),
      () => NEWEST,
    );
    const { leader, behind } = await cl.leaveOneBehind(30);
    for (let i = 0; i < 50; i++) {
      await cl.write(leader, `more${i}`);
      for (let t = 0; t < 3; t++) await cl.tick();
    }
    expect(machine(leader).written.length).toBeGreaterThanOrEqual(3);
    expect(new Set(machine(leader).written), "written while a member was away").toEqual(new Set([NEWEST]));
    cl.cut.delete(behind);
    await cl.until("the member back to install a snapshot", () => machine(behind).restored.length > 0, 500);
    expect(machine(behind).restored).toEqual([NEWEST]);
    expect(warned.filter((w) => w.message.startsWith("not sending a snapshot"))).toEqual([]);
    await cl.until("the member back to catch up", () => machine(behind).applied === machine(leader).applied, 200);
    expect(machine(behind).get("more49")).toBe("v");
  });

  it("a snapshot for a member with no call open, in a format it last said it reads, is held back (not refused, not replaced) however often the core retries, and sent once it says again", async () => {
    // The member answers (the network is whole) but its calls to the leader ended, as when it
    // crashed between its answer and the leader's send: only what it last said is known.
    let quiet: NodeId | undefined;
    const { cl, warned, machine } = setUp(
      (peer) => (cl.cut.has(peer) || peer === quiet ? OLDER : NEWEST),
      () => NEWEST,
    );
    const { leader, behind } = await cl.leaveOneBehind(30);
    quiet = behind;
    cl.cut.delete(behind);
    const written = machine(leader).written.length;
    // The core retries the snapshot whenever the member's answers show it still needs one.
    for (let i = 0; i < 40; i++) {
      await cl.write(leader, `more${i}`);
      for (let t = 0; t < 5; t++) await cl.tick();
    }
    expect(machine(behind).restored).toEqual([]);
    expect(warned.filter((w) => w.message.startsWith("not sending a snapshot")), "held back, not refused").toEqual([]);
    // Logged once per snapshot and member (the set is cleared when a snapshot is taken), not per
    // retry of the core: about one per election timeout, 20 over these 200 ticks.
    const held = warned.filter((w) => w.message.startsWith("holding back a snapshot"));
    expect(held.length).toBeGreaterThan(0);
    expect(held.length).toBeLessThanOrEqual(5);
    expect(held[0]?.fields).toMatchObject({ to: behind, format: NEWEST, lastSaid: NEWEST });
    // Only the periodic snapshots (one per 20 entries), none taken to replace the one held back.
    expect(machine(leader).written.length - written).toBeLessThanOrEqual(Math.ceil(40 / 20) + 1);
    quiet = undefined;
    await cl.until("the member to install a snapshot once it has said again", () => machine(behind).restored.length > 0, 500);
    expect(machine(behind).restored).toEqual([NEWEST]);
  });

  it("a member that last said it reads the newest format and comes back on an older build is sent the older format: held back while away, refused and replaced once it has said so", async () => {
    let olderNow = false;
    const { cl, warned, machine } = setUp(
      (peer) => (cl.cut.has(peer) || (olderNow && peer === behindId()) ? OLDER : NEWEST),
      (peer) => (olderNow && peer === behindId() ? OLDER : NEWEST),
    );
    let behindRef: NodeId | undefined;
    const behindId = () => behindRef;
    const { leader, behind } = await cl.leaveOneBehind(30);
    behindRef = behind;
    for (let i = 0; i < 10; i++) {
      await cl.write(leader, `more${i}`);
      for (let t = 0; t < 3; t++) await cl.tick();
    }
    expect(new Set(machine(leader).written)).toEqual(new Set([NEWEST]));
    // Back on an older build: its first call says nothing, so both views of it are the older format.
    olderNow = true;
    machine(behind).readsUpTo = OLDER;
    cl.cut.delete(behind);
    await cl.until("the member back to install a snapshot", () => machine(behind).restored.length > 0, 500);
    expect(machine(behind).restored).toEqual([OLDER]);
    expect(machine(leader).written.at(-1)).toBe(OLDER);
    expect(warned.filter((w) => w.node === leader && w.message.startsWith("not sending a snapshot in a format"))).toHaveLength(1);
    expect(cl.member(behind).seen.filter((s) => s.name === "failure")).toEqual([]);
    await cl.until("the member back to catch up", () => machine(behind).applied === machine(leader).applied, 200);
  });

  it("while any member reads only the older format, every member's own snapshots are written in it", async () => {
    const older = nodeId("n3");
    const { cl, machine } = setUp((peer) => (peer === older ? OLDER : NEWEST));
    machine(older).readsUpTo = OLDER;
    await cl.until("leader", () => cl.leader() !== undefined);
    const leader = cl.leader() as NodeId;
    for (let i = 0; i < 45; i++) await cl.write(leader, `k${i}`);
    await cl.until("every member to snapshot twice", () => IDS.every((id) => machine(id).written.length >= 2), 500);
    for (const id of IDS.filter((m) => m !== older)) expect(machine(id).written.every((f) => f === OLDER), `${id} wrote ${machine(id).written}`).toBe(true);
    // The older member itself hears the others read the newest: its own snapshots may be newer, and only it reads them back.
    expect(machine(older).written.every((f) => f === NEWEST)).toBe(true);
  });

  it("a member that reads no format this node writes is refused the snapshot with one error, and the leader does not take a snapshot per entry trying", async () => {
    let reader: NodeId | undefined;
    const { cl, warned, machine } = setUp((peer) => (peer === reader ? 0 : NEWEST));
    const { leader, behind } = await cl.leaveOneBehind(30);
    reader = behind;
    machine(behind).readsUpTo = 0;
    cl.cut.delete(behind);
    // One replacement is tried (the newest-format snapshot was written for newer readers), then no more.
    for (let i = 0; i < 60; i++) await cl.write(leader, `more${i}`);
    const hopeless = (w: Warned) => w.node === leader && w.message.endsWith("this node writes none it reads");
    await cl.until("the leader to say it writes no format the member reads", () => warned.some(hopeless), 500);
    // The first, one replacement, and the periodic ones (every 20 entries) over 61 entries: a snapshot per entry would be ~60.
    const written = machine(leader).written;
    expect(written.length, `snapshots written: ${written}`).toBeLessThanOrEqual(2 + Math.ceil(61 / 20));
    expect(written.slice(1).every((f) => f === OLDER), "written for the oldest readers after the first").toBe(true);
    expect(machine(behind).restored).toEqual([]);
    expect(cl.member(behind).seen.filter((s) => s.name === "failure")).toEqual([]);
    const errors = warned.filter(hopeless);
    expect(new Set(errors.map((e) => e.fields.index)).size).toBe(errors.length);
  });

  it("without the readers known (the option off), the member on the older build is sent the newer snapshot and stops: the failure this prevents", async () => {
    const { cl, machine } = setUp(undefined);
    const { behind } = await cl.leaveOneBehind(30);
    machine(behind).readsUpTo = OLDER;
    cl.cut.delete(behind);
    await cl.until("the behind member to fail", () => cl.member(behind).seen.some((s) => s.name === "failure"), 300);
    expect(machine(behind).restored).toEqual([]);
  });
});
