import { Emitter } from "../common/emitter.js";
import type { Entry, LogIndex, NodeId, Role, SnapshotMeta, Status, Term } from "../raft/index.js";

/**
 * RaftNodeEvents are what a RaftNode tells its observers (the lease driver, the API's serving
 * switch, metrics, the event stream, alerts), each with its payload. Every event is emitted
 * synchronously from the host loop at the point the comment names, so a listener sees the node in
 * the state the event describes; listeners must not block and must not throw.
 */
export type RaftNodeEvents = {
  /** role: this node's role changed (after the ready that reports it was persisted and advanced). */
  role: { readonly role: Role; readonly previous: Role; readonly term: Term; readonly status: Status };
  /** leader: the leader this node knows changed ("" when it knows none), emitted with role at the same point. */
  leader: { readonly leader: NodeId; readonly previous: NodeId; readonly term: Term };
  /** applied: the state machine applied a committed entry, with the machine's result. */
  applied: { readonly index: LogIndex; readonly entry: Entry; readonly result: unknown };
  /** snapshotTaken: a local snapshot was written and the log compacted up to index. */
  snapshotTaken: { readonly index: LogIndex; readonly term: Term; readonly bytes: number };
  /** snapshotInstalled: a snapshot from the leader is durable and replaced the state machine (before later entries apply). */
  snapshotInstalled: { readonly meta: SnapshotMeta; readonly bytes: number };
  /** failure: a storage failure or broken invariant stopped the node; the host should exit. */
  failure: { readonly error: Error };
};

/** RaftNodeEventName names one of RaftNodeEvents. */
export type RaftNodeEventName = keyof RaftNodeEvents;

/**
 * NodeEventEmitter is the common typed, synchronous Emitter over RaftNodeEvents: listeners run in
 * the order they were added, inside emit. It has no wildcard and no error event, on purpose.
 */
export class NodeEventEmitter extends Emitter<RaftNodeEvents> {}
