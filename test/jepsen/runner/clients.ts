/**
 * ClientPool holds one RaftmeshClient per node, each given that node's endpoint only and one write
 * round: a client with one endpoint never moves a request to another node by itself, and with one
 * round never sends it again, so the runner decides every retry (and, for the blind-retry negative
 * control, makes the unsafe one on purpose). The SDK's default rounds (a write re-sent with its seq
 * until its deadline) turn many writes that failed at once into indeterminate ones when a try is
 * cut off by a fault, and the linearizability search ran out of budget on such a history; the
 * rounds themselves are tested by test/integration/process/writes-through-election.test.ts.
 */
import { RaftmeshClient } from "../../../src/client/index.js";
import type { JepsenCluster } from "../harness/types.js";

/** ClientPool: see the module comment. */
export class ClientPool {
  private readonly pinned = new Map<string, RaftmeshClient>();
  private readonly extra: RaftmeshClient[] = [];

  constructor(private readonly cluster: JepsenCluster) {}

  /** get returns the client pinned to node (one per node, shared; sessions use its clientId). */
  get(node: string): RaftmeshClient {
    let c = this.pinned.get(node);
    if (!c) this.pinned.set(node, (c = new RaftmeshClient([this.cluster.apiAddress(node)], { writeRounds: 1 })));
    return c;
  }

  /** fresh returns a new client pinned to node, with a new client id (so no shared session). */
  fresh(node: string): RaftmeshClient {
    const c = new RaftmeshClient([this.cluster.apiAddress(node)], { writeRounds: 1 });
    this.extra.push(c);
    return c;
  }

  close(): void {
    for (const c of this.pinned.values()) c.close();
    for (const c of this.extra) c.close();
    this.pinned.clear();
  }
}
