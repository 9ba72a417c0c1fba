import pino from "pino";
import { describe, expect, it } from "vitest";
import { MessageType, nodeId } from "../../../src/raft/types.js";
import { Backoff } from "../../../src/transport/backoff.js";
import { checkIdentity, type LocalIdentity } from "../../../src/transport/identity.js";
import {
  DEFAULT_LIMITS,
  ForeignClusterError,
  PEER_BACKLOG_MESSAGES_MAX,
  PEER_FRAME_BYTES_MAX,
  PEER_MESSAGE_BYTES_MAX,
  PEER_QUEUE_BYTES_MAX,
  PEER_QUEUE_MESSAGES_MAX,
  RECONNECT_BACKOFF_MS_MAX,
  RECONNECT_BACKOFF_MS_MIN,
  SNAPSHOT_CHUNK_BYTES_MAX,
  SnapshotIntegrityError,
  type TransportLogger,
  UnknownPeerError,
  WrongTargetError,
} from "../../../src/transport/index.js";
import { resolveLimits } from "../../../src/transport/limits.js";
import { BoundedQueue } from "../../../src/transport/queue.js";
import { SnapshotAssembler, snapshotChunks } from "../../../src/transport/snapshot-chunks.js";
import { encodeMessage } from "../../../src/transport/wire.js";
import { message, snapshot } from "./helpers.js";

describe("transport parts", () => {
  it("transport: limits hold together and match the core's and storage's numbers", () => {
    expect(PEER_BACKLOG_MESSAGES_MAX).toBeLessThan(PEER_QUEUE_MESSAGES_MAX);
    // A queue must be able to hold the largest message it may ever be given.
    expect(PEER_QUEUE_BYTES_MAX).toBeGreaterThanOrEqual(PEER_MESSAGE_BYTES_MAX);
    expect(PEER_FRAME_BYTES_MAX).toBeGreaterThan(PEER_MESSAGE_BYTES_MAX);
    expect(PEER_MESSAGE_BYTES_MAX).toBeGreaterThan(64 * 1024 * 1024);
    expect(SNAPSHOT_CHUNK_BYTES_MAX).toBe(1024 * 1024);
    expect(RECONNECT_BACKOFF_MS_MIN).toBeLessThan(RECONNECT_BACKOFF_MS_MAX);
    expect(resolveLimits()).toEqual(DEFAULT_LIMITS);
    expect(() => resolveLimits({ queueMessagesMax: 0 })).toThrow(RangeError);
    expect(() => resolveLimits({ backlogMessagesMax: 10, queueMessagesMax: 5 })).toThrow(RangeError);
    expect(() => resolveLimits({ snapshotChunkBytesMax: 2 * SNAPSHOT_CHUNK_BYTES_MAX })).toThrow(RangeError);
  });

  it("transport: the bounded queue refuses past either bound and hands out batches in order", () => {
    const q = new BoundedQueue<number>();
    for (let i = 0; i < 10; i++) expect(q.offer(i, 10, 5, 1000)).toBe(i < 5);
    expect([q.length, q.bytes]).toEqual([5, 50]);
    expect(q.offer(99, 1, 100, 50)).toBe(false);
    expect(q.takeBatch(25, 100)).toEqual([0, 1]);
    expect(q.takeBatch(1, 100)).toEqual([2]);
    expect(q.dropOldest(1)).toBe(1);
    expect(q.takeBatch(1000, 100)).toEqual([4]);
    expect([q.length, q.bytes]).toEqual([0, 0]);
    expect(q.takeBatch(1000, 100)).toEqual([]);
  });

  it("transport: backoff grows from min to max, jittered within [ceiling/2, ceiling], and resets", () => {
    const low = new Backoff(10, 100, () => 0);
    expect([1, 2, 3, 4, 5, 6].map(() => low.next())).toEqual([5, 10, 20, 40, 50, 50]);
    const high = new Backoff(10, 100, () => 0.999999);
    expect([1, 2, 3, 4, 5, 6].map(() => high.next())).toEqual([10, 20, 40, 80, 100, 100]);
    high.reset();
    expect(high.next()).toBe(10);
    high.saturate();
    expect(high.next()).toBe(100);
  });

  it("transport: identity checks name the cluster, the unknown id, or the wrong target", () => {
    const local: LocalIdentity = { clusterId: "alpha", selfId: nodeId("n1"), isPeer: (id) => id === "n2", addressOf: () => undefined };
    const ok = { clusterId: "alpha", nodeId: nodeId("n2"), targetId: nodeId("n1") };
    expect(checkIdentity(ok, local)).toBeUndefined();
    expect(checkIdentity({ ...ok, clusterId: "beta" }, local)).toBeInstanceOf(ForeignClusterError);
    expect(checkIdentity({ ...ok, nodeId: nodeId("n9") }, local)).toEqual(new UnknownPeerError("n9", nodeId("n1"), "alpha"));
    expect(checkIdentity({ ...ok, nodeId: nodeId("n1") }, local)?.message).toMatch(/own id/);
    expect(checkIdentity({ ...ok, targetId: nodeId("n3") }, local)).toBeInstanceOf(WrongTargetError);
  });

  it("transport: snapshot chunks reassemble, and every malformed stream is refused", () => {
    const snap = snapshot(2500);
    const header = encodeMessage(message(MessageType.Snap, "n1", "n2", { snapshot: snap }));
    const chunks = snapshotChunks(header, snap.data, 1000);
    expect(chunks.map((c) => [c.header !== null, c.data.length, c.sha256.length])).toEqual([[true, 1000, 0], [false, 1000, 0], [false, 500, 32]]);
    const assemble = (cs: typeof chunks) => {
      const a = new SnapshotAssembler(10_000);
      for (const c of cs) a.add(c);
      return a.finish();
    };
    expect(Buffer.compare(assemble(chunks).data, snap.data)).toBe(0);
    const empty = snapshotChunks(header, new Uint8Array(0), 1000);
    expect(empty).toHaveLength(1);
    const emptyHeader = { ...header, snapshot: { ...header.snapshot!, dataBytes: 0 } };
    expect(assemble([{ ...empty[0]!, header: emptyHeader }]).data.length).toBe(0);

    const malformed: [string, typeof chunks, RegExp][] = [
      ["no header", [{ ...chunks[0]!, header: null }], /no header/],
      ["repeated header", [chunks[0]!, { ...chunks[1]!, header }], /repeated/],
      ["after hash", [...chunks, chunks[1]!], /after the chunk/],
      ["missing chunk", [chunks[0]!, chunks[2]!], /received 1500 of 2500/],
      ["too much", [chunks[0]!, chunks[1]!, chunks[1]!, chunks[2]!], /more data/],
      ["bad hash length", [chunks[0]!, chunks[1]!, { ...chunks[2]!, sha256: new Uint8Array(5) }], /not a SHA-256/],
      ["no hash", chunks.slice(0, 2), /before the chunk that carries the hash/],
      ["too large", [{ ...chunks[0]!, header: { ...header, snapshot: { ...header.snapshot!, dataBytes: 20_000 } } }], /exceeds the limit/],
    ];
    for (const [what, cs, pattern] of malformed) {
      expect(() => assemble(cs), what).toThrow(SnapshotIntegrityError);
      expect(() => assemble(cs), what).toThrow(pattern);
    }
  });

  it("transport: a pino logger fits TransportLogger as it is", () => {
    const logger: TransportLogger = pino({ level: "silent" });
    expect(logger.child?.({ component: "transport" })).toBeDefined();
  });
});
