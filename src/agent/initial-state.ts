import { bootstrapEntries, type NodeId, nodeId, type PersistedState } from "../raft/index.js";
import type { LoadedState, LogStore } from "../storage/index.js";
import type { Founding } from "./founding.js";

/** StartMode says how a node began: from its data, as a founder of a new cluster, or waiting to be added. */
export type StartMode = "existing" | "bootstrap" | "join";

/**
 * initialState decides what the core starts from. A data directory with anything in it is
 * authoritative and the member list is ignored. An empty one either founds a new cluster of the
 * configured members (bootstrap: once founding.awaitFounding() found that no member holds the
 * cluster yet, every founder writes the same first entries, synced before the node starts), or
 * starts empty and waits for a leader to add it and send it the log (join). It tells founding how
 * the node starts, so that other members' probes get the right answer.
 */
export async function initialState(
  store: LogStore,
  loaded: LoadedState,
  opts: { bootstrap: boolean; members: readonly string[]; founding: Founding },
): Promise<{ state: PersistedState; mode: StartMode }> {
  const empty = loaded.entries.length === 0 && !loaded.snapshot && loaded.hardState.term === 0;
  if (!empty) {
    const lastIndex = loaded.entries.at(-1)?.index ?? loaded.snapshot?.meta.index ?? 0;
    opts.founding.started(() => ({ term: loaded.hardState.term, lastIndex }));
    return { state: loaded, mode: "existing" };
  }
  if (!opts.bootstrap) {
    opts.founding.started(() => ({ term: 0, lastIndex: 0 }));
    return { state: loaded, mode: "join" };
  }
  const founders = await opts.founding.awaitFounding();
  const ids: NodeId[] = opts.members.map(nodeId);
  const entries = bootstrapEntries(ids);
  const state: PersistedState = { hardState: { term: 1, vote: "" as NodeId, commit: entries.length }, entries };
  await store.save({ hardState: state.hardState, entries });
  opts.founding.started(() => ({ term: 1, lastIndex: entries.length }), founders);
  return { state, mode: "bootstrap" };
}
