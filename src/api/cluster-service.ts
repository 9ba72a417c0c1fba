import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import { ConfigError, NODE_ID_PATTERN, parseHostPort } from "../config/index.js";
import { encodeMemberAddress } from "../node/cluster-state-machine.js";
import type { RaftNode } from "../node/raft-node.js";
import { ConfChangeType, majority, nodeId } from "../raft/index.js";
import { InvalidArgumentError, NotFoundError, OutcomeUnknownError, PreconditionError } from "./errors.js";
import { unary } from "./handler.js";
import { type AddressBook, type LeaderRoute, waitUntil } from "./leader-route.js";
import { PROMOTE_LAG_ENTRIES_MAX, TRANSFER_WAIT_MS_MAX, WRITE_WAIT_MS_MAX } from "./limits.js";
import type {
  AddMemberRequestMsg,
  MemberChangeResponseMsg,
  MemberMsg,
  MemberRequestMsg,
  MembersResponseMsg,
  NodeStatusMsg,
  TransferLeaderRequestMsg,
  TransferLeaderResponseMsg,
} from "../common/messages.js";

/** TRANSFER_POLL_MS is how often TransferLeader looks whether the target has taken over. */
const TRANSFER_POLL_MS = 10;

/** ClusterNode is what the Cluster service uses of the node: its view, progress, and membership changes. */
export type ClusterNode = Pick<RaftNode, "status" | "progress" | "propose" | "proposeConfChange" | "transferLeadership">;

/** ClusterServiceDeps is what the Cluster service uses. */
export interface ClusterServiceDeps {
  readonly node: ClusterNode;
  /** members is the applied membership record (its applied index answers Members). */
  readonly members: { readonly applied: number };
  readonly addressOf: AddressBook;
  readonly route: LeaderRoute;
  /** status is this node's own view, as Cluster.Status reports it (assembled by the agent). */
  readonly status: () => NodeStatusMsg;
}

/** memberList is the configuration with addresses, and the leader's match index per member. */
export function memberList(deps: Pick<ClusterServiceDeps, "node" | "addressOf">): MemberMsg[] {
  const st = deps.node.status();
  const progress = deps.node.progress();
  const row = (id: string, learner: boolean): MemberMsg => {
    const addr = deps.addressOf(id);
    return { id, peer: addr?.peer ?? "", api: addr?.api ?? "", learner, match: progress.get(nodeId(id))?.match ?? 0 };
  };
  return [...st.voters.map((id) => row(id, false)), ...st.learners.map((id) => row(id, true))];
}

function validateId(id: string): void {
  if (!id) throw new InvalidArgumentError("id", "must not be empty");
  if (!NODE_ID_PATTERN.test(id)) throw new InvalidArgumentError("id", `"${id}" is not a node id (lower-case letters, digits and -, at most 63)`);
}

function validateAddress(field: string, value: string): string {
  try {
    return parseHostPort(field, value, "request");
  } catch (err) {
    if (err instanceof ConfigError) throw new InvalidArgumentError(field, err.reason);
    throw err;
  }
}

/** defaultApi is the peer host with the port plus 100, the layout every raftmesh node uses by default. */
function defaultApi(peer: string): string {
  const cut = peer.lastIndexOf(":");
  return `${peer.slice(0, cut)}:${Number(peer.slice(cut + 1)) + 100}`;
}

/** clusterService serves raftmesh.v1.Cluster. */
export function clusterService(deps: ClusterServiceDeps): UntypedServiceImplementation {
  const change = async (deadline: Date, what: string, type: ConfChangeType, id: string): Promise<MemberChangeResponseMsg> => {
    const index = deps.node.status().lastIndex + 1;
    await waitUntil(deps.node.proposeConfChange({ type, node: nodeId(id) }), deadline, what);
    return { members: memberList(deps), index };
  };
  const isMember = (id: string) => {
    const st = deps.node.status();
    return st.voters.includes(nodeId(id)) || st.learners.includes(nodeId(id));
  };
  return {
    Status: unary<object, NodeStatusMsg>(async () => deps.status()),
    Members: unary<object, MembersResponseMsg>(async () => ({
      members: memberList(deps),
      leader: deps.node.status().lead,
      index: deps.members.applied,
    })),
    AddMember: unary<AddMemberRequestMsg, MemberChangeResponseMsg>(async (call) => {
      const { id, learner } = call.request;
      validateId(id);
      const peer = validateAddress("peer", call.request.peer);
      const api = call.request.api ? validateAddress("api", call.request.api) : defaultApi(peer);
      return deps.route.onLeader(call, "Cluster", "AddMember", WRITE_WAIT_MS_MAX, async (deadline) => {
        if (isMember(id)) throw new PreconditionError(`${id} is already a member; remove it first to change its addresses`);
        if (!learner) refuseUnlessQuorumStaysLive(deps, `adding voter ${id}`, id, undefined, call.request.force === true);
        // The address goes into the log first, so every node can reach the member once it is in the configuration.
        await waitUntil(deps.node.propose(encodeMemberAddress({ id, peer, api })), deadline, `address record of ${id}`);
        try {
          return await change(deadline, `adding ${id}`, learner ? ConfChangeType.AddLearner : ConfChangeType.AddVoter, id);
        } catch (err) {
          // The address record took effect: whatever stopped the change, the request as a whole
          // did not "not apply", so no answer from here may say so.
          throw new OutcomeUnknownError(`the address record of ${id} was committed, but adding it failed (${(err as Error).message})`);
        }
      });
    }),
    PromoteMember: unary<MemberRequestMsg, MemberChangeResponseMsg>(async (call) => {
      const { id } = call.request;
      validateId(id);
      return deps.route.onLeader(call, "Cluster", "PromoteMember", WRITE_WAIT_MS_MAX, async (deadline) => {
        const st = deps.node.status();
        if (st.voters.includes(nodeId(id))) throw new PreconditionError(`${id} is already a voter`);
        if (!st.learners.includes(nodeId(id))) throw new NotFoundError(`${id} is not a member`);
        const match = deps.node.progress().get(nodeId(id))?.match ?? 0;
        if (st.commit - match > PROMOTE_LAG_ENTRIES_MAX) {
          throw new PreconditionError(
            `learner ${id} is ${st.commit - match} entries behind (limit ${PROMOTE_LAG_ENTRIES_MAX}); wait for it to catch up`,
          );
        }
        refuseUnlessQuorumStaysLive(deps, `promoting ${id}`, id, undefined, call.request.force === true);
        return change(deadline, `promoting ${id}`, ConfChangeType.AddVoter, id);
      });
    }),
    RemoveMember: unary<MemberRequestMsg, MemberChangeResponseMsg>(async (call) => {
      const { id } = call.request;
      validateId(id);
      return deps.route.onLeader(call, "Cluster", "RemoveMember", WRITE_WAIT_MS_MAX, async (deadline) => {
        const st = deps.node.status();
        if (!isMember(id)) throw new NotFoundError(`${id} is not a member`);
        if (st.voters.length === 1 && st.voters[0] === id) throw new PreconditionError(`${id} is the last voter; a cluster needs one`);
        if (st.voters.includes(nodeId(id))) refuseUnlessQuorumStaysLive(deps, `removing ${id}`, undefined, id, call.request.force === true);
        return change(deadline, `removing ${id}`, ConfChangeType.Remove, id);
      });
    }),
    TransferLeader: unary<TransferLeaderRequestMsg, TransferLeaderResponseMsg>(async (call) => {
      const { id } = call.request;
      if (id) validateId(id);
      return deps.route.onLeader(call, "Cluster", "TransferLeader", TRANSFER_WAIT_MS_MAX, async (deadline) => {
        const st = deps.node.status();
        const target = id || pickTransferTarget(deps);
        if (!target) throw new PreconditionError("there is no other voter to transfer leadership to");
        if (target === st.id) return { leader: st.id, term: st.term };
        if (!st.voters.includes(nodeId(target))) throw new PreconditionError(`${target} is not a voter`);
        deps.node.transferLeadership(nodeId(target));
        for (;;) {
          const now = deps.node.status();
          if (now.lead === target) return { leader: target, term: now.term };
          if (Date.now() >= deadline.getTime()) {
            // The hand-over message may have gone out: the target may still win an election after
            // this answer, so none of these answers may say the transfer did not happen.
            if (now.lead === st.id) throw new OutcomeUnknownError(`${target} did not take over in time; ${st.id} still leads for now`);
            if (!now.lead) throw new OutcomeUnknownError(`transfer to ${target} under way; no leader yet`);
            throw new OutcomeUnknownError(`transfer to ${target}: ${now.lead} leads now`);
          }
          await new Promise((r) => setTimeout(r, TRANSFER_POLL_MS));
        }
      });
    }),
  };
}

/**
 * refuseUnlessQuorumStaysLive refuses a change of voters after which fewer voters than the new
 * configuration's quorum are live, i.e. were heard by this leader within the last one to two
 * election timeouts (the leader counts itself; a voter being added has not been heard yet). Such
 * a change would leave the cluster without any possible quorum, perhaps for good (etcd's strict
 * reconfiguration check). `force` skips the check, for disaster recovery.
 */
function refuseUnlessQuorumStaysLive(deps: Pick<ClusterServiceDeps, "node">, what: string, adding: string | undefined, removing: string | undefined, force: boolean): void {
  if (force) return;
  const st = deps.node.status();
  const progress = deps.node.progress();
  const voters = new Set<string>(st.voters);
  if (adding) voters.add(adding);
  if (removing) voters.delete(removing);
  const live = [...voters].filter((id) => id !== adding && progress.get(nodeId(id))?.recentActive === true).sort();
  const quorum = majority(voters.size);
  if (live.length >= quorum) return;
  throw new PreconditionError(
    `${what} refused: it would leave ${live.length} live voter(s) (${live.join(", ") || "none"}) of ${voters.size}, ` +
      `fewer than the quorum of ${quorum}, and the cluster could not make progress; ` +
      "bring the unreachable voters back first, or repeat with force to do it anyway",
  );
}

/** pickTransferTarget is the other voter whose log matches furthest. */
function pickTransferTarget(deps: Pick<ClusterServiceDeps, "node">): string | undefined {
  const st = deps.node.status();
  let best: string | undefined;
  let bestMatch = -1;
  for (const [id, pr] of deps.node.progress()) {
    if (id === st.id || !st.voters.includes(id)) continue;
    if (pr.match > bestMatch) {
      best = id;
      bestMatch = pr.match;
    }
  }
  return best;
}
