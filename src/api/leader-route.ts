import { Metadata, type ServerUnaryCall, status } from "@grpc/grpc-js";
import { untilDeadline } from "../common/deadline.js";
import { METADATA_LEADER, METADATA_LEADER_API, METADATA_NOT_APPLIED } from "../common/metadata.js";
import { NoLeaderError, OutcomeUnknownError } from "./errors.js";
import type { Forwarder } from "./forwarder.js";
import { authorizationOf } from "./auth.js";
import { deadlineOf, wasForwarded } from "./handler.js";

/** LeaderView is what routing needs to know of the node: whether it leads, and whom it follows. */
export interface LeaderView {
  isLeader(): boolean;
  /** leader is the known leader's id, or "" when none is known. */
  leader(): string;
}

/** AddressBook is a member's addresses: recorded in the log, else from this node's configuration. */
export type AddressBook = (id: string) => { peer: string; api: string } | undefined;

/**
 * FORWARD_CANCEL_GRACE_MS: how long a call forwarded to a leader this node no longer follows may
 * still be answered before it is cancelled (see LeaderRoute.leaderChanged).
 */
export const FORWARD_CANCEL_GRACE_MS = 1_000;

/** Forwarding is a call on its way to `leader`, and its cancellation once that leader is replaced. */
interface Forwarding {
  readonly leader: string;
  readonly cancel: AbortController;
  cancelAt: NodeJS.Timeout | undefined;
}

/** ApiServiceName is a client API service a call may be forwarded to. */
export type ApiServiceName = "KV" | "Cluster" | "Registry" | "Acl";

/**
 * LeaderRoute runs a call where it can be served: here when this node leads, else on the leader's
 * client API. A call that was already forwarded once is never forwarded again: it fails with
 * UNAVAILABLE naming the leader, so two nodes with different views of the leader cannot bounce it
 * forever.
 */
export class LeaderRoute {
  /** forwarding: the calls on their way to a leader, by the leader they went to (see leaderChanged). */
  private readonly forwarding = new Set<Forwarding>();

  constructor(
    private readonly node: LeaderView,
    private readonly addressOf: AddressBook,
    private readonly forwarder: Pick<Forwarder, "forward">,
  ) {}

  /**
   * leaderChanged (on the node's "leader" event) cancels the calls forwarded to any other leader
   * than the one the node knows now, if they are still unanswered FORWARD_CANCEL_GRACE_MS later. A
   * leader that went silent (stopped, partitioned) keeps their connection open, and they would wait
   * for the caller's deadline; cancelled, they fail as outcome-unknown (the old leader may have
   * logged them, and its successor commit them), which a sessioned client sends again with the same
   * seq, to the new leader. The grace lets a live old leader answer what it did: a leader transfer
   * forwarded here is answered by the old leader just after the new one took over. While no leader
   * is known nothing is cancelled: a pre-vote or a dropped peer connection forgets a leader that may
   * be well. The node's view is read here rather than taken from the event, which can lag it.
   */
  leaderChanged(): void {
    const now = this.node.leader();
    if (now === "") return;
    for (const f of this.forwarding) {
      if (f.leader === now || f.cancelAt !== undefined) continue;
      f.cancelAt = setTimeout(() => f.cancel.abort(), FORWARD_CANCEL_GRACE_MS);
      f.cancelAt.unref();
    }
  }

  /** onLeader runs `local` with the call's deadline (capped at maxMs) when this node leads, else forwards the call. */
  async onLeader<Req, Res>(
    call: ServerUnaryCall<Req, Res>,
    service: ApiServiceName,
    method: string,
    maxMs: number,
    local: (deadline: Date) => Promise<Res>,
  ): Promise<Res> {
    const deadline = deadlineOf(call, maxMs);
    if (this.node.isLeader()) return local(deadline);
    const leader = this.node.leader();
    if (!leader) throw new NoLeaderError("no leader is known (an election is under way or there is no quorum); the request did not run");
    const api = this.addressOf(leader)?.api ?? "";
    if (wasForwarded(call)) throw new NoLeaderError(`this node is not the leader; ${leader} is`, leader, api);
    if (!api) throw new NoLeaderError(`leader ${leader} has no known client API address; the request did not run`, leader);
    const forwarding: Forwarding = { leader, cancel: new AbortController(), cancelAt: undefined };
    this.forwarding.add(forwarding);
    try {
      // The caller's authorization goes along: the leader checks the call again (auth.ts).
      const res = await this.forwarder.forward<Req, Res>(api, service, method, call.request, deadline, authorizationOf(call.metadata), forwarding.cancel.signal);
      // The answer's headers name the leader, so a client that also knows the leader's address can
      // send its next writes there and spare this node the second call (the SDK does).
      const md = new Metadata();
      md.set(METADATA_LEADER, leader);
      md.set(METADATA_LEADER_API, api);
      call.sendMetadata(md);
      return res;
    } catch (err) {
      // The leader's own answers pass through. A call that broke on the way (leader died, connection
      // lost) may or may not have run there: say so rather than let the client retry blindly.
      if (isLeaderAnswer(err)) throw err;
      if (forwarding.cancel.signal.aborted) {
        throw new OutcomeUnknownError(`forwarding to leader ${leader} at ${api} was cancelled: this node no longer follows it (it may have applied the request)`);
      }
      throw new OutcomeUnknownError(`forwarding to leader ${leader} at ${api} failed (${(err as Error).message})`);
    } finally {
      this.forwarding.delete(forwarding);
      clearTimeout(forwarding.cancelAt);
    }
  }
}

/** isLeaderAnswer: the error is a status the leader's handlers produced (they always carry our metadata or a definite code). */
function isLeaderAnswer(err: unknown): boolean {
  const e = err as { code?: number; metadata?: Metadata };
  if (typeof e.code !== "number") return false;
  if (e.metadata?.get(METADATA_NOT_APPLIED).length) return true;
  return e.code !== status.UNAVAILABLE && e.code !== status.DEADLINE_EXCEEDED && e.code !== status.CANCELLED && e.code !== status.UNKNOWN && e.code !== status.INTERNAL;
}

/** waitUntil resolves with the promise, or rejects with OutcomeUnknownError at the deadline. */
export function waitUntil<T>(p: Promise<T>, deadline: Date, what: string): Promise<T> {
  return untilDeadline(p, deadline, (ms) => new OutcomeUnknownError(`${what} was not applied within ${ms} ms`));
}
