import type { RaftNode } from "../../src/node/raft-node.js";
import type { LogIndex } from "../../src/raft/index.js";

/**
 * UNSAFE_CONF_VARIANTS are membership bugs the simulator can put into its nodes' cores, to prove
 * that its membership check can fail (negative controls). Each defeats one guard of
 * proposeConfChange for the simulated node only; production code has no switch for them.
 *   confChangeWhileUncommitted: a leader proposes a change while its previous one is uncommitted,
 *     so two changes are in use at once and configurations two servers apart coexist.
 *   confChangeBeforeTermCommit: a new leader proposes a change before an entry of its term is
 *     committed, so its change and a deposed leader's uncommitted one can both be in use
 *     (the single-server bug, Ongaro, raft-dev, 2015).
 */
export const UNSAFE_CONF_VARIANTS = ["confChangeWhileUncommitted", "confChangeBeforeTermCommit"] as const;

/** UnsafeConfVariant names one of UNSAFE_CONF_VARIANTS. */
export type UnsafeConfVariant = (typeof UNSAFE_CONF_VARIANTS)[number];

/** isUnsafeConfVariant says whether a name is one of UNSAFE_CONF_VARIANTS. */
export function isUnsafeConfVariant(name: string): name is UnsafeConfVariant {
  return (UNSAFE_CONF_VARIANTS as readonly string[]).includes(name);
}

/**
 * CoreGuards is the part of the core's private state the two guards read. Reaching into it is
 * fragile on purpose: if the core moves a guard, the control stops being caught and the
 * negative-control test fails, which says this file needs to follow.
 */
interface CoreGuards {
  confIndex: LogIndex;
  committedInCurrentTerm?: () => boolean;
}

/**
 * proposeConfChangeUnsafe runs `propose` (a call of node.proposeConfChange, which reaches the core
 * synchronously) with the guard the variant names defeated in the node's core for that one call.
 */
export function proposeConfChangeUnsafe<T>(node: RaftNode, propose: () => T, variant: UnsafeConfVariant): T {
  const core = (node as unknown as { raw: { raft: CoreGuards } }).raw.raft;
  if (variant === "confChangeBeforeTermCommit") {
    core.committedInCurrentTerm = () => true;
    try {
      return propose();
    } finally {
      delete core.committedInCurrentTerm;
    }
  }
  const confIndex = core.confIndex;
  // The guard compares confIndex with the commit index; appending the change recomputes confIndex.
  core.confIndex = 0;
  try {
    return propose();
  } catch (err) {
    core.confIndex = confIndex;
    throw err;
  }
}
