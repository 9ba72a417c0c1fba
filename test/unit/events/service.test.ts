/** raftmesh.v1.Events/Watch over a real gRPC server on loopback: replay, follow, kinds, and each typed error as its status code. */
import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { ApiServer } from "../../../src/api/server.js";
import { type MeshEventMsg, RaftmeshClient, type RaftmeshError } from "../../../src/client/index.js";
import { EventJournal } from "../../../src/events/journal.js";
import { EVENT_FOLLOWER_QUEUE_MAX } from "../../../src/events/limits.js";
import { eventsService } from "../../../src/events/service.js";
import { waitFor } from "../../integration/harness/process-cluster.js";

let server: ApiServer | undefined;
let client: RaftmeshClient | undefined;
afterEach(async () => {
  client?.close();
  await server?.close();
});

async function serve(journal: EventJournal): Promise<RaftmeshClient> {
  server = new ApiServer({ kv: {}, cluster: {}, registry: {}, events: eventsService(journal) });
  const port = await server.listen("127.0.0.1:0");
  client = new RaftmeshClient([`127.0.0.1:${port}`]);
  return client;
}

function watch(c: RaftmeshClient, req: { fromSeq?: number; follow?: boolean; kinds?: string[] }) {
  const got: MeshEventMsg[] = [];
  let ended: { err?: RaftmeshError } | undefined;
  const h = c.events(req, { onEvent: (e) => got.push(e), onEnd: (err) => (ended = { err }) });
  return { got, ended: () => ended, cancel: () => h.cancel() };
}

describe("Events/Watch", () => {
  it("replays the ring, follows new events with their fields, and keeps only the kinds asked for", async () => {
    const j = new EventJournal({ node: "n1", seqBase: 100 });
    j.record({ kind: "member-joined", index: 1, member: "n1", message: "n1 is a voter", details: { role: "voter" } });
    const c = await serve(j);
    const once = watch(c, {});
    await waitFor("the replay to end", () => once.ended());
    expect(once.ended()?.err).toBeUndefined();
    expect(once.got).toMatchObject([{ seq: 101, kind: "member-joined", index: 1, local: false, node: "n1", member: "n1", details: { role: "voter" } }]);
    const live = watch(c, { fromSeq: 101, follow: true, kinds: ["leader-elected"] });
    await new Promise((r) => setTimeout(r, 100));
    j.record({ kind: "snapshot-taken", message: "s" });
    j.record({ kind: "leader-elected", member: "n2", message: "n2 leads in term 3", details: { term: "3" } });
    await waitFor("the live event", () => live.got.length === 1);
    expect(live.got[0]).toMatchObject({ seq: 103, kind: "leader-elected", local: true, index: 0, member: "n2" });
    live.cancel();
  });

  it("a bad kind is INVALID_ARGUMENT naming kinds; a dropped seq is OUT_OF_RANGE naming the oldest", async () => {
    const j = new EventJournal({ node: "n1", seqBase: 0, ringMax: 2 });
    for (let i = 0; i < 5; i++) j.record({ kind: "snapshot-taken", message: `${i}` });
    const c = await serve(j);
    const bad = watch(c, { kinds: ["nope"] });
    await waitFor("refused", () => bad.ended());
    expect(bad.ended()?.err?.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.ended()?.err?.message).toMatch(/kinds: "nope" is not an event kind/);
    const old = watch(c, { fromSeq: 1 });
    await waitFor("refused", () => old.ended());
    expect(old.ended()?.err?.code).toBe(status.OUT_OF_RANGE);
    expect(old.ended()?.err?.message).toMatch(/oldest event \(seq 4\)/);
  });

  it("a follower that does not keep up is ended with RESOURCE_EXHAUSTED naming where to resume", async () => {
    const j = new EventJournal({ node: "n1", seqBase: 0 });
    const c = await serve(j);
    const w = watch(c, { follow: true });
    await new Promise((r) => setTimeout(r, 100));
    // Recorded in one go: gRPC's buffer fills, then more than the bound wait for this follower.
    for (let i = 0; i < EVENT_FOLLOWER_QUEUE_MAX * 20; i++) j.record({ kind: "snapshot-taken", message: `${"x".repeat(200)}${i}` });
    await waitFor("ended", () => w.ended());
    expect(w.ended()?.err?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(w.ended()?.err?.message).toMatch(new RegExp(`resume with from_seq ${w.got.at(-1)?.seq ?? 0}`));
  });
});
