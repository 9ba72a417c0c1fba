import { afterEach, describe, expect, it } from "vitest";
import { nodeId } from "../../../src/raft/types.js";
import { PeerRefusedError, PROBE_DEADLINE_MS, type ProbeAnswer, TransportError } from "../../../src/transport/index.js";
import { decodeProbeAnswer, encodeProbeAnswer } from "../../../src/transport/probe.js";
import { connect, freePort, startNode, type TestNode } from "./helpers.js";

const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.transport.close()));
});

async function start(id: string, clusterId?: string): Promise<TestNode> {
  const node = await startNode(id, clusterId ? { clusterId } : {});
  nodes.push(node);
  return node;
}

describe("transport: Probe", () => {
  it("transport: a probe gets the peer's answer, with the asker's id and session handed to the answerer", async () => {
    const [a, b] = [await start("n1"), await start("n2")];
    connect([a, b]);
    const asked: [string, string][] = [];
    const answer: ProbeAnswer = { state: "existing", term: 4, lastIndex: 99, founders: new Map([[nodeId("n1"), "s1"], [nodeId("n2"), "s2"]]) };
    b.transport.onProbe((from, session) => {
      asked.push([from, session]);
      return answer;
    });
    expect(await a.transport.probe(b.id, "session-a")).toEqual(answer);
    expect(asked).toEqual([["n1", "session-a"]]);
    b.transport.onProbe(() => ({ state: "founding", session: "s2" }));
    expect(await a.transport.probe(b.id, "session-a")).toEqual({ state: "founding", session: "s2" });
    b.transport.onProbe(() => ({ state: "joining" }));
    expect(await a.transport.probe(b.id, "session-a")).toEqual({ state: "joining" });
  });

  it("transport: a peer that cannot answer yet, or is down, fails the probe with a TransportError", async () => {
    const [a, b] = [await start("n1"), await start("n2")];
    connect([a, b]);
    const notYet = await a.transport.probe(b.id, "s").catch((e: unknown) => e);
    expect(notYet).toBeInstanceOf(TransportError);
    expect((notYet as Error).message).toContain("UNAVAILABLE");
    b.transport.onProbe(() => undefined);
    await expect(a.transport.probe(b.id, "s")).rejects.toBeInstanceOf(TransportError);
    a.transport.setPeers(new Map([[b.id, b.address], [nodeId("n3"), `127.0.0.1:${await freePort()}`]]));
    // A peer that is down is waited for until the deadline (it may be starting), not longer.
    const startedMs = Date.now();
    const downError = await a.transport.probe(nodeId("n3"), "s").catch((e: unknown) => e);
    const elapsedMs = Date.now() - startedMs;
    expect(downError).toBeInstanceOf(TransportError);
    expect((downError as Error).message).toContain("DEADLINE_EXCEEDED");
    expect(elapsedMs).toBeGreaterThanOrEqual(PROBE_DEADLINE_MS - 50);
    expect(elapsedMs).toBeLessThan(PROBE_DEADLINE_MS + 2000);
    await expect(a.transport.probe(nodeId("n9"), "s")).rejects.toMatchObject({ name: "UnknownPeerError" });
  });

  it("transport: a probe from an unknown node or another cluster is refused like any peer call, and never answered", async () => {
    const [a, b] = [await start("n1"), await start("n2")];
    a.transport.setPeers(new Map([[b.id, b.address]]));
    let answered = 0;
    b.transport.onProbe(() => {
      answered++;
      return { state: "joining" };
    });
    const unknown = await a.transport.probe(b.id, "s").catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(PeerRefusedError);
    expect((unknown as Error).message).toContain('node id "n1" is not a known peer of node "n2"');
    const foreign = await start("n1", "other-cluster");
    foreign.transport.setPeers(new Map([[b.id, b.address]]));
    await expect(foreign.transport.probe(b.id, "s")).rejects.toBeInstanceOf(PeerRefusedError);
    expect(answered).toBe(0);
  });

  it("transport: a probe answer with an unknown state or a founding answer without a session is a wire format error", () => {
    const base = { session: "", term: 0, lastIndex: 0, founders: {} };
    expect(() => decodeProbeAnswer({ ...base, state: 0 })).toThrow(/unknown probe state 0/);
    expect(() => decodeProbeAnswer({ ...base, state: 1 })).toThrow(/without a session/);
    expect(() => decodeProbeAnswer({ ...base, state: 3, term: 2 ** 60 })).toThrow(/term/);
    const round = { state: "existing", term: 1, lastIndex: 3, founders: new Map([[nodeId("n1"), "x"]]) } as const;
    expect(decodeProbeAnswer(encodeProbeAnswer(round))).toEqual(round);
  });
});
