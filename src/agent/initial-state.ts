import { bootstrapEntries, type NodeId, nodeId, type PersistedState } from "../raft/index.js";
import type { LoadedState, LogStore } from "../storage/index.js";

/** StartMode says how a node began: from its data, as a founder of a new cluster, or waiting to be added. */
export type StartMode = "existing" | "bootstrap" | "join";

/**
 * initialState decides what the core starts from. A data directory with anything in it is
 * authoritative and the member list is ignored. An empty one either founds a new cluster of the
 * configured members (bootstrap: every founder writes the same first entries, synced before the
 * node starts), or starts empty and waits for a leader to add it and send it the log (join).
 */
export async function initialState(
  store: LogStore,
  loaded: LoadedState,
  opts: { bootstrap: boolean; members: readonly string[] },
): Promise<{ state: PersistedState; mode: StartMode }> {
  const empty = loaded.entries.length === 0 && !loaded.snapshot && loaded.hardState.term === 0;
  if (!empty) return { state: loaded, mode: "existing" };
  if (!opts.bootstrap) return { state: loaded, mode: "join" };
  const ids: NodeId[] = opts.members.map(nodeId);
  const entries = bootstrapEntries(ids);
  const state: PersistedState = { hardState: { term: 1, vote: "" as NodeId, commit: entries.length }, entries };
  await store.save({ hardState: state.hardState, entries });
  return { state, mode: "bootstrap" };
}
