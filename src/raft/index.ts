/** The public face of the Raft core: a pure, deterministic consensus engine. */
export * from "./errors.js";
export { entryBytes } from "./log.js";
export * from "./limits.js";
export { bootstrapEntries, decodeConfChange, encodeConfChange, Membership } from "./membership.js";
export type { RaftOptions, UnsafeSwitches } from "./options.js";
export { disjointMajoritiesPossible, majority } from "./quorum.js";
export type { PersistedState, ProposalRef } from "./raft.js";
export { type MemberProgress, RawNode, type Status } from "./raw-node.js";
export * from "./types.js";
export { splitForEarlySend } from "./early-send.js";
