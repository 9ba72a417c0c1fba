/**
 * What the API tells a client about a write that failed: `x-raftmesh-not-applied` only where the
 * request certainly took no effect, and an unknown outcome wherever it may have.
 */
import { Metadata, type ServerUnaryCall, type ServiceError, status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { type ClusterServiceDeps, clusterService } from "../../../src/api/cluster-service.js";
import {
  InvalidArgumentError,
  NoLeaderError,
  NotFoundError,
  OutcomeUnknownError,
  PreconditionError,
  toStatus,
} from "../../../src/api/errors.js";
import { LeaderRoute } from "../../../src/api/leader-route.js";
import { METADATA_NOT_APPLIED } from "../../../src/common/metadata.js";
import { NodeStoppedError, ProposalLostError, ProposalOutcomeUnknownError, ReadTimeoutError, RemovedFromClusterError } from "../../../src/node/errors.js";
import {
  ConfChangeRejectedError,
  NotLeaderError,
  nodeId,
  ProposalDroppedError,
  ReadLimitError,
  Role,
  TransferRejectedError,
  UncommittedLimitError,
} from "../../../src/raft/index.js";
import { HeartbeatOverloadError } from "../../../src/registry/errors.js";
import { ProposingWriter } from "../../../src/registry/writer.js";

const n1 = nodeId("n1");

function answer(err: unknown): { code: string; notApplied: boolean } {
  const st = toStatus(err);
  return { code: status[st.code as status], notApplied: (st.metadata?.get(METADATA_NOT_APPLIED).length ?? 0) > 0 };
}

/** fakeCluster is the Cluster service of a leading node whose proposals and changes do what the test says. */
function fakeCluster(node: Partial<Record<string, unknown>>): ClusterServiceDeps {
  const st = { id: n1, role: Role.Leader, lead: n1, term: 2, vote: n1, commit: 10, applied: 10, lastIndex: 10, voters: ["n1", "n2", "n3"].map(nodeId), learners: [], leadTransferee: "" };
  const fake = { isLeader: () => true, leader: () => n1, status: () => st, progress: () => new Map(), ...node } as unknown as ClusterServiceDeps["node"] & { isLeader(): boolean; leader(): string };
  const addressOf = () => undefined;
  return {
    node: fake,
    members: { applied: 10 },
    addressOf,
    route: new LeaderRoute(fake, addressOf, { forward: () => Promise.reject(new Error("a leader never forwards")) }),
    status: () => {
      throw new Error("not used");
    },
  };
}

/** callHandler runs one unary handler and returns the status it answered with. */
function callHandler(handler: unknown, request: object, deadlineMs: number): Promise<Partial<ServiceError>> {
  const call = { request, metadata: new Metadata(), getDeadline: () => new Date(Date.now() + deadlineMs) } as unknown as ServerUnaryCall<object, object>;
  return new Promise((resolve) => {
    (handler as (c: typeof call, cb: (err: Partial<ServiceError> | null) => void) => void)(call, (err) => resolve(err ?? {}));
  });
}

const notAppliedOf = (err: Partial<ServiceError>) => (err.metadata?.get(METADATA_NOT_APPLIED).length ?? 0) > 0;

describe("api: error meanings", () => {
  it("errors: not-applied only on errors raised before anything was proposed, or refused by the core", () => {
    const table: [unknown, string, boolean][] = [
      [new NoLeaderError("no leader"), "UNAVAILABLE", true],
      [new NotLeaderError(n1), "UNAVAILABLE", true],
      [new ProposalDroppedError("transfer pending"), "UNAVAILABLE", true],
      [new UncommittedLimitError(10, 5), "RESOURCE_EXHAUSTED", true],
      [new ReadLimitError(5), "RESOURCE_EXHAUSTED", true],
      [new HeartbeatOverloadError(5), "RESOURCE_EXHAUSTED", true],
      [new ConfChangeRejectedError("pending"), "FAILED_PRECONDITION", true],
      [new TransferRejectedError("not a voter"), "FAILED_PRECONDITION", true],
      [new InvalidArgumentError("key", "empty"), "INVALID_ARGUMENT", true],
      [new NotFoundError("gone"), "NOT_FOUND", true],
      [new PreconditionError("exists"), "FAILED_PRECONDITION", true],
      // Overwritten by another leader's entry at the same index: it can never commit.
      [new ProposalLostError(5), "ABORTED", true],
      // Everything after this may have taken effect.
      [new ProposalOutcomeUnknownError(5), "DEADLINE_EXCEEDED", false],
      [new OutcomeUnknownError("wait ended"), "DEADLINE_EXCEEDED", false],
      [new RemovedFromClusterError(n1), "UNAVAILABLE", false],
      [new NodeStoppedError(), "UNAVAILABLE", false],
      [new ReadTimeoutError(5, n1), "UNAVAILABLE", false],
      [new Error("boom"), "INTERNAL", false],
    ];
    for (const [err, code, notApplied] of table) expect(answer(err), (err as Error).name).toEqual({ code, notApplied });
  });

  it("errors: a write whose seq fell out of the session window is outcome-unknown, not not-applied", async () => {
    const writer = new ProposingWriter(
      { proposeApp: async () => ({ ok: false, index: 9, code: "stale-session", message: "client c wrote seq 300 already; seq 1 is older than the last 128" }) },
      { now: () => 0 },
    );
    const err = await writer.write({ op: "kv.put", key: "k", value: "" }, { client: "c", seq: 1 }, new Date(Date.now() + 1_000)).catch((e: unknown) => e);
    expect(answer(err)).toEqual({ code: "DEADLINE_EXCEEDED", notApplied: false });
  });

  it("errors: AddMember that committed the address record but not the change never says not-applied", async () => {
    const refusals = [new ConfChangeRejectedError("the change at index 9 is not yet committed"), new NotLeaderError(nodeId("n2"))];
    for (const refusal of refusals) {
      let recorded = 0;
      const ctx = fakeCluster({
        propose: async () => {
          recorded++;
          return undefined;
        },
        proposeConfChange: () => Promise.reject(refusal),
      });
      const err = await callHandler(clusterService(ctx).AddMember, { id: "n4", peer: "10.0.0.4:7100", api: "", learner: true }, 1_000);
      expect(recorded).toBe(1);
      expect(err.code, refusal.name).toBe(status.DEADLINE_EXCEEDED);
      expect(notAppliedOf(err), refusal.name).toBe(false);
    }
  });

  it("errors: TransferLeader that sent the hand-over never says not-applied, whoever leads at its deadline", async () => {
    for (const leadAtDeadline of [n1, ""]) {
      let transfers = 0;
      const ctx = fakeCluster({
        transferLeadership: () => {
          transfers++;
        },
      });
      const base = ctx.node.status();
      (ctx.node as unknown as { status: () => unknown }).status = () => ({ ...base, lead: transfers > 0 ? leadAtDeadline : n1 });
      const err = await callHandler(clusterService(ctx).TransferLeader, { id: "n2" }, 50);
      expect(transfers).toBe(1);
      expect(notAppliedOf(err), `lead "${leadAtDeadline}"`).toBe(false);
      expect(err.code).toBe(status.DEADLINE_EXCEEDED);
    }
  });
});
