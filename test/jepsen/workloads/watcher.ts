/**
 * ReconnectingWatcher keeps one logical watch alive across nodes: when its stream ends (node
 * killed, stream error) or when the workload asks it to move, it watches again on another node
 * from the last index it has seen, as a real client resumes. Every delivered event is kept with
 * the run time it arrived and the connection it came on, for the checkers.
 */
import type { EventMsg } from "../../../src/common/messages.js";
import { sleep } from "../runner/clock.js";
import type { WorkloadContext } from "./types.js";

/** RECONNECT_PAUSE_MS is the pause before watching again after a stream ended. */
const RECONNECT_PAUSE_MS = 200;

/** SeenEvent is one delivered event. */
export interface SeenEvent {
  readonly index: number;
  readonly event: EventMsg;
  readonly time: number;
  /** connection counts the streams this watcher has opened (0 is the first). */
  readonly connection: number;
  readonly node: string;
}

/** WatchFilter narrows a watch (see RaftmeshClient.watch). */
export interface WatchFilter {
  readonly service?: string;
  readonly keyPrefix?: string;
  readonly kinds?: string[];
}

/** ReconnectingWatcher: see the module comment. */
export class ReconnectingWatcher {
  readonly events: SeenEvent[] = [];
  /** resumeFrom is the index the next stream starts after (events and progress both move it). */
  resumeFrom = 0;
  connections = 0;
  private node: string;
  private cancel: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly ctx: WorkloadContext,
    readonly name: string,
    startNode: string,
    private readonly filter: WatchFilter,
  ) {
    this.node = startNode;
  }

  start(): void {
    this.connect();
  }

  /** moveTo ends the current stream and resumes on node. */
  moveTo(node: string): void {
    this.node = node;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
  }

  /** waitFor resolves true once resumeFrom reaches index, false after timeoutMs. */
  async waitFor(index: number, timeoutMs: number): Promise<boolean> {
    const until = this.ctx.clock.now() + timeoutMs;
    while (this.resumeFrom < index && this.ctx.clock.now() < until) await sleep(50);
    return this.resumeFrom >= index;
  }

  private connect(): void {
    if (this.stopped) return;
    // Invariant: at most one stream delivers at a time; any older one is cancelled and ignored.
    this.cancel?.();
    const connection = this.connections++;
    const node = this.node;
    let live = true;
    const handle = this.ctx.clients.get(node).watch(
      { fromIndex: this.resumeFrom, ...this.filter },
      {
        onMessage: (m) => {
          if (!live || connection !== this.connections - 1) return;
          const time = this.ctx.clock.now();
          for (const event of m.events) {
            this.events.push({ index: event.index, event, time, connection, node });
            this.resumeFrom = Math.max(this.resumeFrom, event.index);
          }
          if (m.events.length === 0) this.resumeFrom = Math.max(this.resumeFrom, m.index);
        },
        onEnd: () => {
          if (!live) return;
          live = false;
          if (this.stopped) return;
          const nodes = this.ctx.cluster.nodes;
          this.node = nodes[(nodes.indexOf(node) + 1) % nodes.length] as string;
          // Reconnect unless something (moveTo) opened a newer stream meanwhile.
          void sleep(RECONNECT_PAUSE_MS).then(() => {
            if (connection === this.connections - 1) this.connect();
          });
        },
      },
      { endpoint: this.ctx.cluster.apiAddress(node) },
    );
    this.cancel = () => {
      live = false;
      handle.cancel();
    };
  }
}
