import type { Entry, LogIndex } from "../raft/index.js";

/**
 * SnapshotJob writes one snapshot a slice at a time, so a large state never holds the event loop
 * for the whole of it. Contract: the job owns a frozen view of the state taken when it began, so
 * the bytes are exactly the state at that index whatever is applied between the slices; each
 * step() does a bounded amount of work and returns undefined while work remains, then the
 * snapshot's bytes as chunks, in order (the node writes them to its file as they are).
 */
export interface SnapshotJob {
  step(): readonly Uint8Array[] | undefined;
}

/**
 * RestoreJob replaces a machine's state with a snapshot's a slice at a time, so installing a large
 * snapshot never holds the event loop for the whole of it. Contract: the machine keeps its old
 * state, readable and whole, until the step that returns true replaces all of it at once; the host
 * applies nothing between the steps (it would apply to the state being replaced); each step does a
 * bounded amount of work. A snapshot that cannot be read throws from a step, the old state intact.
 */
export interface RestoreJob {
  step(): boolean;
}

/**
 * StateMachine is what the node replicates. Contract: apply is deterministic and produces the same
 * result on every node for the same sequence of entries; it is called once per committed entry, in
 * index order, with no gaps: membership entries (already handled by the core) and empty leader
 * no-ops are passed too, so the machine tracks its applied index, and it ignores them. snapshot captures everything apply built; restore replaces
 * the whole state with a snapshot's. The bytes snapshot() returns and the chunks a SnapshotJob
 * returns belong to the caller: the machine keeps no reference to them (the node may free their
 * memory once they are stored, RaftNodeOptions.releaseSnapshotChunks).
 */
export interface StateMachine {
  /** applied is the index of the last entry applied or restored. */
  readonly applied: LogIndex;
  apply(entry: Entry): unknown;
  /**
   * snapshot captures the state. readMax, when given, is the newest snapshot format every other
   * member reads: a machine that writes several formats writes one no newer (its oldest when none
   * is that old, which such a member refuses as it would anyway).
   */
  snapshot(readMax?: number): Uint8Array;
  /** beginSnapshot (optional) starts a sliced snapshot of the state at `applied` (readMax as for snapshot); without it the node calls snapshot(). */
  beginSnapshot?(readMax?: number): SnapshotJob;
  /**
   * snapshotFormat (optional) is the format a snapshot's bytes were written in: the newest format a
   * member must read to install them (undefined: the machine has one format). The node sends a
   * snapshot only to members that read it.
   */
  snapshotFormat?(data: Uint8Array): number | undefined;
  restore(data: Uint8Array): void;
  /** beginRestore (optional) starts a sliced restore (RestoreJob); without it the node calls restore(). */
  beginRestore?(data: Uint8Array): RestoreJob;
}

/** wholeSnapshot is a job that is already done: a machine's snapshot() as one chunk. */
export function wholeSnapshot(data: Uint8Array): SnapshotJob {
  return { step: () => [data] };
}

/** runRestoreJob runs a restore job to its end at once. */
export function runRestoreJob(job: RestoreJob): void {
  while (!job.step()) {
    // each step does a slice; the last one replaces the state
  }
}

/** runSnapshotJob runs a job to its end at once and joins its chunks. */
export function runSnapshotJob(job: SnapshotJob): Uint8Array {
  for (;;) {
    const chunks = job.step();
    if (chunks !== undefined) return joinChunks(chunks);
  }
}

/** joinChunks joins a job's chunks into one array (the chunk itself when there is only one). */
export function joinChunks(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
