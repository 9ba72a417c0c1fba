import { ConfChangeRejectedError } from "./errors.js";
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryKind,
  type LogIndex,
  type NodeId,
  nodeId,
} from "./types.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Membership is the configuration a node currently uses: voters decide, learners only follow. */
export class Membership {
  readonly voters = new Set<NodeId>();
  readonly learners = new Set<NodeId>();

  constructor(conf?: ConfState) {
    for (const id of conf?.voters ?? []) this.voters.add(id);
    for (const id of conf?.learners ?? []) this.learners.add(id);
  }

  /** has says whether id is a voter or a learner. */
  has(id: NodeId): boolean {
    return this.voters.has(id) || this.learners.has(id);
  }

  /** members lists voters then learners, each sorted, so iteration order is deterministic. */
  members(): NodeId[] {
    return [...[...this.voters].sort(), ...[...this.learners].sort()];
  }

  /** toConfState returns the configuration as plain data. */
  toConfState(): ConfState {
    return { voters: [...this.voters].sort(), learners: [...this.learners].sort() };
  }

  /** validate throws ConfChangeRejectedError when cc would be a no-op or leave no voter. */
  validate(cc: ConfChange): void {
    const { type, node } = cc;
    if (!node) throw new ConfChangeRejectedError("node id is empty");
    if (type === ConfChangeType.AddVoter && this.voters.has(node)) {
      throw new ConfChangeRejectedError(`${node} is already a voter`);
    }
    if (type === ConfChangeType.AddLearner && this.learners.has(node)) {
      throw new ConfChangeRejectedError(`${node} is already a learner`);
    }
    if (type === ConfChangeType.Remove && !this.has(node)) {
      throw new ConfChangeRejectedError(`${node} is not a member`);
    }
    const leavesNoVoter = (type === ConfChangeType.Remove || type === ConfChangeType.AddLearner) && this.voters.size === 1;
    if (leavesNoVoter && this.voters.has(node)) {
      throw new ConfChangeRejectedError(`removing ${node} would leave no voter`);
    }
  }

  /** apply changes the configuration by one server. Applying is total: an invalid change is a no-op. */
  apply(cc: ConfChange): void {
    switch (cc.type) {
      case ConfChangeType.AddVoter:
        this.learners.delete(cc.node);
        this.voters.add(cc.node);
        break;
      case ConfChangeType.AddLearner:
        if (this.voters.size === 1 && this.voters.has(cc.node)) return;
        this.voters.delete(cc.node);
        this.learners.add(cc.node);
        break;
      case ConfChangeType.Remove:
        if (this.voters.size === 1 && this.voters.has(cc.node)) return;
        this.voters.delete(cc.node);
        this.learners.delete(cc.node);
        break;
    }
  }
}

/** encodeConfChange turns a change into entry data. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify({ type: cc.type, node: cc.node }));
}

/** decodeConfChange reads a change from entry data; it throws on data no encoder wrote. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const raw = JSON.parse(decoder.decode(data)) as { type?: unknown; node?: unknown };
  const types = Object.values(ConfChangeType) as string[];
  if (typeof raw.type !== "string" || !types.includes(raw.type) || typeof raw.node !== "string") {
    throw new ConfChangeRejectedError(`malformed membership change: ${decoder.decode(data)}`);
  }
  return { type: raw.type as ConfChangeType, node: nodeId(raw.node) };
}

/**
 * bootstrapEntries are the first entries of a new cluster: one AddVoter per initial member, at
 * term 1. Every initial member writes the same entries and starts with them committed, so that a
 * node that joins later learns the initial configuration from the log like any other change.
 */
export function bootstrapEntries(voters: readonly NodeId[]): Entry[] {
  return [...voters].sort().map((id, i) => ({
    term: 1,
    index: (i + 1) as LogIndex,
    kind: EntryKind.ConfChange,
    data: encodeConfChange({ type: ConfChangeType.AddVoter, node: id }),
  }));
}
