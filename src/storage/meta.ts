import type { ConfState, NodeId, SnapshotMeta } from "../raft/types.js";

/** STORAGE_FORMAT_VERSION is the on-disk layout this build writes and reads; bump it on any incompatible change to keys or records. */
export const STORAGE_FORMAT_VERSION = 1;

/** StoreMeta is the identity record written once when a data directory is created. */
export interface StoreMeta {
  readonly formatVersion: number;
  readonly clusterId: string;
  readonly nodeId: NodeId;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isIndexOrTerm(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function isIdList(value: unknown): value is NodeId[] {
  return Array.isArray(value) && value.every((id) => typeof id === "string");
}

/** parseStoreMeta returns the StoreMeta a parsed JSON value holds, or undefined when its shape is wrong. */
export function parseStoreMeta(value: unknown): StoreMeta | undefined {
  if (!isRecord(value)) return undefined;
  const { formatVersion, clusterId, nodeId } = value;
  if (typeof formatVersion !== "number" || typeof clusterId !== "string" || typeof nodeId !== "string") {
    return undefined;
  }
  return { formatVersion, clusterId, nodeId: nodeId as NodeId };
}

/** parseSnapshotMeta returns the SnapshotMeta a parsed JSON value holds, or undefined when its shape is wrong. */
export function parseSnapshotMeta(value: unknown): SnapshotMeta | undefined {
  if (!isRecord(value) || !isIndexOrTerm(value.index) || !isIndexOrTerm(value.term)) return undefined;
  const conf = value.conf;
  if (!isRecord(conf) || !isIdList(conf.voters) || !isIdList(conf.learners)) return undefined;
  const confState: ConfState = { voters: conf.voters, learners: conf.learners };
  return { index: value.index, term: value.term, conf: confState };
}

/** snapshotMetaJson is the plain object stored for a SnapshotMeta, so that no extra fields leak into the record. */
export function snapshotMetaJson(meta: SnapshotMeta): SnapshotMeta {
  return {
    index: meta.index,
    term: meta.term,
    conf: { voters: [...meta.conf.voters], learners: [...meta.conf.learners] },
  };
}
