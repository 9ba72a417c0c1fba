/**
 * A watch flood on a real node: UNREAD_WATCHERS Watch streams from index 0 that never read, over a
 * history of large KV values. The node's memory stays under RSS_BYTES_MAX and it keeps serving: a
 * write and a read succeed during the flood, a live watcher hears the write, and a reading watcher
 * from 0 receives the whole history of large values (batches cut by bytes, none over the message
 * limit). Before the watch byte bounds, this grew a node by hundreds of MB a second until it stopped.
 *
 * The unread streams are raw HTTP/2 (node:http2), not grpc-js clients: a grpc-js stream reads ahead
 * 16 messages even when paused, which would load this process, while a paused HTTP/2 stream stops
 * granting flow-control window, exactly like a client that does not read.
 */
import { readFileSync } from "node:fs";
import { type ClientHttp2Session, type ClientHttp2Stream, connect } from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WatchResponseMsg } from "../../../src/common/messages.js";
import { clientApi } from "../../../src/common/proto.js";
import type { RaftmeshError } from "../../../src/client/index.js";
import { WATCHER_OUT_BYTES_MAX } from "../../../src/registry/watch-hub.js";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";

const KiB = 1024;
const MiB = 1024 * KiB;
/**
 * HISTORY_PUTS large values make the retained history (about 112 MiB of values): more than one
 * batch of 256 events, so that without byte bounds every watcher held a second batch while the
 * first failed over the message limit.
 */
const HISTORY_PUTS = 300;
/** valueBytes is the size of the i-th value: 256 to 511 KiB, below the 512 KiB value limit. */
const valueBytes = (i: number) => 256 * KiB + ((i * 37) % 256) * KiB;
/** UNREAD_WATCHERS open from index 0 and never read, over UNREAD_SESSIONS HTTP/2 connections. */
const UNREAD_WATCHERS = 500;
const UNREAD_SESSIONS = 10;
/**
 * RSS_BYTES_MAX bounds the node's resident memory through the flood. Measured on this test: about
 * 510 MiB once the history is written (the values as the state machine's base64 text, the log and
 * the process), then up to about 740 MiB: the history encoded once for watches (about 112 MiB),
 * the unread streams (at most 500 × WATCHER_OUT_BYTES_MAX = 250 MiB) and the reading watcher's
 * messages. 1 GiB leaves room for the garbage collector's slack on a loaded machine, and is far
 * below what the flood reached without the bounds (past 1 GiB within seconds, 13 GiB in the field).
 */
const RSS_BYTES_MAX = 1024 * MiB;
/** RSS_POLL_MS: how often the node's RSS is sampled (the unbounded growth was ~300 MB/s). */
const RSS_POLL_MS = 100;
const NODE = "n1";

/** rssBytes reads VmRSS of a process from /proc. */
function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** grpcFrame is a gRPC length-prefixed message. */
function grpcFrame(body: Buffer): Buffer {
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  return frame;
}

describe("watch flood on a real node", () => {
  let c: ProcessCluster;
  const sessions: ClientHttp2Session[] = [];
  const cancels: (() => void)[] = [];

  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 1 });
    c.startAll();
    await c.waitForLeader();
  });
  afterAll(async () => {
    for (const cancel of cancels) cancel();
    for (const s of sessions) s.destroy();
    await c?.cleanup();
  });

  it("watch: 500 unread watchers from 0 over large values keep the node under RSS_BYTES_MAX, and it keeps serving writes, reads and reading watchers", async () => {
    const client = c.client(NODE);
    let next = 0;
    let lastPut = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < HISTORY_PUTS) {
          const i = next++;
          const res = await client.put(`flood/${String(i).padStart(3, "0")}`, Buffer.alloc(valueBytes(i), i % 251), { deadlineMs: 20_000 });
          lastPut = Math.max(lastPut, res.index);
        }
      }),
    );
    const pid = c.pid(NODE) as number;
    const baseline = rssBytes(pid);

    // Sample the node's RSS from now on; past the bound, stop the node at once (the growth was fast enough to take the machine down).
    let rssMax = baseline;
    let overAt = "";
    const sampler = setInterval(() => {
      if (!c.isRunning(NODE)) return;
      let rss = 0;
      try {
        rss = rssBytes(pid);
      } catch {
        return; // the process just exited
      }
      rssMax = Math.max(rssMax, rss);
      if (rss > RSS_BYTES_MAX && overAt === "") {
        overAt = `RSS ${Math.round(rss / MiB)} MiB at ${new Date().toISOString()}`;
        void c.kill(NODE);
      }
    }, RSS_POLL_MS);
    cancels.push(() => clearInterval(sampler));

    // The flood: raw HTTP/2 Watch streams from index 0, paused before they read anything.
    const watchDef = (clientApi().Registry.service as unknown as { Watch: { requestSerialize: (v: object) => Buffer } }).Watch;
    const request = grpcFrame(watchDef.requestSerialize({ fromIndex: 0, service: "", keyPrefix: "", kinds: [] }));
    for (let s = 0; s < UNREAD_SESSIONS; s++) {
      const session = connect(`http://${c.api(NODE)}`);
      session.on("error", () => undefined);
      sessions.push(session);
    }
    const unread: ClientHttp2Stream[] = [];
    const responded = new Set<ClientHttp2Stream>();
    for (let i = 0; i < UNREAD_WATCHERS; i++) {
      const session = sessions[i % UNREAD_SESSIONS] as ClientHttp2Session;
      const stream = session.request({ ":method": "POST", ":path": "/raftmesh.v1.Registry/Watch", "content-type": "application/grpc", te: "trailers" });
      stream.on("error", () => undefined);
      stream.on("response", () => responded.add(stream));
      stream.pause();
      stream.end(request);
      unread.push(stream);
    }
    await waitFor("every unread watch to be answered", () => responded.size === UNREAD_WATCHERS || overAt !== "", 30_000).catch(() => undefined);
    // Let the node hand the unread streams all it will.
    await new Promise((r) => setTimeout(r, 3_000));
    console.log(`${responded.size} of ${UNREAD_WATCHERS} unread watches answered; RSS ${Math.round(baseline / MiB)} MiB after the history, at most ${Math.round(rssMax / MiB)} MiB so far`);
    expect(overAt).toBe("");
    expect(responded.size).toBe(UNREAD_WATCHERS);

    // The node keeps serving: a live watcher and a reading watcher from 0, a write and a read.
    const received = (fromIndex: number) => {
      const msgs: WatchResponseMsg[] = [];
      let ended: RaftmeshError | undefined | null = null;
      const w = client.watch({ fromIndex }, { onMessage: (m) => msgs.push(m), onEnd: (e) => (ended = e) });
      cancels.push(() => w.cancel());
      return { msgs, ended: () => ended, events: () => msgs.flatMap((m) => m.events) };
    };
    const live = received(lastPut);
    const full = received(0);
    const t0 = Date.now();
    const put = await client.put("flood/during", "x", { deadlineMs: 5_000 });
    const got = await client.get("flood/during", { deadlineMs: 5_000 });
    console.log(`during the flood: put + linearizable get in ${Date.now() - t0} ms`);
    expect(got.kv?.value.toString()).toBe("x");
    await waitFor("the live watcher to hear the write", () => live.events().some((e) => e.index === put.index) || overAt !== "", 10_000);
    expect(overAt).toBe("");
    await waitFor("the reading watcher to receive the whole history", () => full.events().some((e) => e.index === put.index) || full.ended() !== null || overAt !== "", 60_000);
    expect(full.ended()).toBeNull();
    const keys = full.events().filter((e) => /^flood\/\d{3}$/.test(e.kv?.key ?? ""));
    expect(keys.length).toBe(HISTORY_PUTS);
    expect(keys.filter((e) => e.kv?.value.length !== valueBytes(Number(e.kv?.key.slice("flood/".length))))).toEqual([]);
    expect(live.ended()).toBeNull();
    // A last look once everything settled.
    await new Promise((r) => setTimeout(r, 1_000));
    clearInterval(sampler);
    console.log(
      `RSS: ${Math.round(baseline / MiB)} MiB after the history, at most ${Math.round(rssMax / MiB)} MiB during the flood of ${UNREAD_WATCHERS} unread watchers (bound ${RSS_BYTES_MAX / MiB} MiB; the unread ones may hold ${Math.round((UNREAD_WATCHERS * WATCHER_OUT_BYTES_MAX) / MiB)} MiB)`,
    );
    expect(overAt).toBe("");
    expect(rssMax).toBeLessThan(RSS_BYTES_MAX);
    expect(c.isRunning(NODE)).toBe(true);
  }, 150_000);
});
