/**
 * ElectionWatcher polls Cluster.Status on every node and records each rise of the highest term
 * seen, with the leader reported at that moment: the runner's count of elections. A poll can miss
 * a term that rose and was overtaken between two polls, so the count is a lower bound on terms
 * started; terms elapsed (last minus first) is reported as well.
 */
import { RaftmeshClient } from "../../../src/client/index.js";
import type { JepsenCluster } from "../harness/types.js";
import type { RunClock } from "./clock.js";
import { sleep } from "./clock.js";

/** ELECTION_POLL_MS is how often every node is asked; well under an election timeout's worth of terms. */
export const ELECTION_POLL_MS = 250;
/** STATUS_DEADLINE_MS bounds one status call, so a stopped node does not stall the poll. */
const STATUS_DEADLINE_MS = 200;

/** TermChange is one observed rise of the highest term. */
export interface TermChange {
  readonly time: number;
  readonly term: number;
  readonly leader: string;
}

/** ElectionWatcher: see the module comment. */
export class ElectionWatcher {
  readonly changes: TermChange[] = [];
  private readonly clients: Map<string, RaftmeshClient>;

  constructor(
    cluster: JepsenCluster,
    private readonly clock: RunClock,
  ) {
    this.clients = new Map(cluster.nodes.map((n) => [n, new RaftmeshClient([cluster.apiAddress(n)])]));
  }

  /** run polls until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const views = await Promise.all([...this.clients.values()].map((c) => c.status({ deadlineMs: STATUS_DEADLINE_MS }).catch(() => undefined)));
      let best: { term: number; leader: string } | undefined;
      for (const v of views) if (v && (!best || v.term > best.term || (v.term === best.term && !best.leader))) best = { term: v.term, leader: v.leader };
      const last = this.changes[this.changes.length - 1];
      if (best && (!last || best.term > last.term)) this.changes.push({ time: this.clock.now(), ...best });
      await sleep(ELECTION_POLL_MS, signal);
    }
  }

  /** summary: rises of the highest term after the first observation, and terms elapsed. */
  summary(): { elections: number; termsElapsed: number } {
    const first = this.changes[0];
    const last = this.changes[this.changes.length - 1];
    return { elections: Math.max(0, this.changes.length - 1), termsElapsed: first && last ? last.term - first.term : 0 };
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
  }
}
