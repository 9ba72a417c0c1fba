import type { LogIndex, NodeId } from "./types.js";

/** majority is the smallest number of voters that is more than half of n. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** committedIndex is the highest index that a majority of voters have matched; 0 with no voters. */
export function committedIndex(voters: ReadonlySet<NodeId>, matchOf: (id: NodeId) => LogIndex): LogIndex {
  if (voters.size === 0) return 0;
  const matches = [...voters].map(matchOf).sort((a, b) => b - a);
  return matches[majority(voters.size) - 1] ?? 0;
}

/** VoteResult is the outcome of an election so far. */
export type VoteResult = "won" | "lost" | "pending";

/** voteResult tallies granted and rejected votes among voters. */
export function voteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const need = majority(voters.size);
  if (granted >= need) return "won";
  if (voters.size - rejected < need) return "lost";
  return "pending";
}

/** hasQuorum says whether the members of `acked` that are voters form a majority. */
export function hasQuorum(voters: ReadonlySet<NodeId>, acked: (id: NodeId) => boolean): boolean {
  let n = 0;
  for (const id of voters) if (acked(id)) n++;
  return n >= majority(voters.size);
}

/**
 * disjointMajoritiesPossible says whether a majority of `a` and a majority of `b` can be chosen
 * with no voter in common: the unsafe case a membership change must never allow.
 */
export function disjointMajoritiesPossible(a: ReadonlySet<NodeId>, b: ReadonlySet<NodeId>): boolean {
  let both = 0;
  for (const id of a) if (b.has(id)) both++;
  const onlyA = a.size - both;
  const onlyB = b.size - both;
  const needShared = Math.max(0, majority(a.size) - onlyA) + Math.max(0, majority(b.size) - onlyB);
  return needShared <= both;
}
