/**
 * Founding decides whether a node with an empty data directory and bootstrap on may write the
 * bootstrap entries, i.e. whether the cluster does not exist yet. An empty directory looks the
 * same on a node that never ran and on a member that lost its data; only the other members can
 * tell them apart, so the node asks each of them (the peer API's Probe) before founding.
 *
 * The rule, one round of answers at a time:
 *   1. A member that founded the cluster in its current process vouches for the sessions it saw
 *      empty when it did: if that includes this process, this node never took part (it is still
 *      empty) and founds too. This is how the last founder of a simultaneous start gets in.
 *   2. Otherwise, a member that holds state means the cluster exists: refuse to start
 *      (ClusterExistsError names the repair procedure).
 *   3. Otherwise, when every other member answered that it is empty and founding too, found.
 *   4. Otherwise (a member is down, unreachable, refuses us, or waits to be added), wait and ask
 *      again: the node cannot tell, and founding on a majority alone could split the cluster in
 *      two when the members that hold it are merely unreachable.
 *
 * Why every member and not a majority: a member that holds state cannot tell whether this empty
 * node is a founder that never started or a member that lost its data, unless it saw this very
 * process empty when it founded (rule 1). Founding only once all members were seen empty together
 * makes every member a founder seen empty, so a start where nodes come up seconds apart still
 * founds (the first waits for the last), and no member ever meets an empty node it cannot place.
 * Sessions are drawn per process: a restarted process is a new session, which is what makes a
 * node that lost its data after founding unrecognisable, and so refused.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "../common/logger.js";
import type { NodeId } from "../raft/index.js";
import type { ProbeAnswer } from "../transport/index.js";
import { ClusterExistsError } from "./errors.js";

/** FOUNDING_ROUND_INTERVAL_MS is the pause between two rounds of probes: short, because every node of a fresh start waits for the slowest, and each round costs one small call per member. */
export const FOUNDING_ROUND_INTERVAL_MS = 250;

/** FOUNDING_LOG_INTERVAL_MS is how often a waiting node says what it waits for: often enough to be seen, rarely enough not to flood the log while a member is down for long. */
export const FOUNDING_LOG_INTERVAL_MS = 10_000;

/** ProbeResult is one member's answer to a probe, or why it gave none. */
export type ProbeResult = ProbeAnswer | Error;

/** FoundingDecision is what one round of answers allows: found, refuse to start, or wait (each waited-for member with the reason). */
export type FoundingDecision =
  | { readonly kind: "found"; readonly founders: ReadonlyMap<NodeId, string> }
  | { readonly kind: "refuse"; readonly peer: NodeId; readonly term: number; readonly lastIndex: number }
  | { readonly kind: "wait"; readonly waitingFor: ReadonlyMap<NodeId, string> };

/** decideFounding applies the rule of the module comment to one round of answers, one per other member. */
export function decideFounding(self: { readonly id: NodeId; readonly session: string }, results: ReadonlyMap<NodeId, ProbeResult>): FoundingDecision {
  for (const result of results.values()) {
    if (!(result instanceof Error) && result.state === "existing" && result.founders.get(self.id) === self.session) {
      return { kind: "found", founders: result.founders };
    }
  }
  for (const [peer, result] of results) {
    if (!(result instanceof Error) && result.state === "existing") return { kind: "refuse", peer, term: result.term, lastIndex: result.lastIndex };
  }
  const founders = new Map<NodeId, string>([[self.id, self.session]]);
  const waitingFor = new Map<NodeId, string>();
  for (const [peer, result] of results) {
    if (result instanceof Error) waitingFor.set(peer, result.message);
    else if (result.state === "joining") waitingFor.set(peer, "it has an empty data directory and bootstrap off");
    else if (result.state === "founding") founders.set(peer, result.session);
  }
  return waitingFor.size === 0 ? { kind: "found", founders } : { kind: "wait", waitingFor };
}

/** FoundingLogger is the part of the project's Logger (src/common/logger.ts) Founding uses. */
export type FoundingLogger = Pick<Logger, "info">;

/** FoundingOptions are the node, its other members and how to ask them. */
export interface FoundingOptions {
  readonly selfId: NodeId;
  /** peers are the other configured members. */
  readonly peers: readonly NodeId[];
  readonly probe: (peer: NodeId, session: string) => Promise<ProbeAnswer>;
  readonly logger: FoundingLogger;
  /** sleep waits between rounds; a real timer unless a test steps time itself. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly nowMs?: () => number;
}

/** Held is how much Raft state a node holds: both zero for an empty node. */
export type Held = { readonly term: number; readonly lastIndex: number };

/**
 * Founding runs the founding rounds of an empty node and answers other members' probes for the
 * whole life of the process: what this node holds, and whom it saw empty if it founded.
 */
export class Founding {
  /** session identifies this process to the other members (see the module comment). */
  readonly session = randomUUID();
  private phase: "unknown" | "founding" | "started" = "unknown";
  private founders: ReadonlyMap<NodeId, string> = new Map();
  private held: () => Held = () => ({ term: 0, lastIndex: 0 });

  constructor(private readonly options: FoundingOptions) {}

  /** answer is this node's answer to a probe, or undefined before it knows how it starts. */
  answer(): ProbeAnswer | undefined {
    if (this.phase === "unknown") return undefined;
    if (this.phase === "founding") return { state: "founding", session: this.session };
    const held = this.held();
    // A started node without any state started empty with bootstrap off and was not added yet.
    if (held.term === 0 && held.lastIndex === 0) return { state: "joining" };
    return { state: "existing", term: held.term, lastIndex: held.lastIndex, founders: this.founders };
  }

  /**
   * started records how the node starts: held reports what it holds (both zero when it waits to
   * be added); founders are the sessions seen empty when this process founded the cluster, set
   * only once the bootstrap entries are durable.
   */
  started(held: () => Held, founders: ReadonlyMap<NodeId, string> = new Map()): void {
    this.phase = "started";
    this.held = held;
    this.founders = founders;
  }

  /** follow makes answers report the running node's own state from now on. */
  follow(held: () => Held): void {
    this.held = held;
  }

  /**
   * awaitFounding asks every other member, round after round, until the cluster may be founded
   * (it resolves with the founders seen empty) or is known to exist (it throws ClusterExistsError).
   * It has no bound on purpose: while it cannot tell, founding could split the cluster, and
   * refusing would stop a fresh start whose last node is a little late.
   */
  async awaitFounding(): Promise<ReadonlyMap<NodeId, string>> {
    const { selfId, peers, logger } = this.options;
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    const nowMs = this.options.nowMs ?? Date.now;
    this.phase = "founding";
    let loggedAtMs = Number.NEGATIVE_INFINITY;
    for (;;) {
      const answers = await Promise.all(peers.map((peer) => this.options.probe(peer, this.session).catch((error: unknown) => toError(error))));
      const decision = decideFounding({ id: selfId, session: this.session }, new Map(peers.map((peer, i) => [peer, answers[i] as ProbeResult])));
      if (decision.kind === "found") return decision.founders;
      if (decision.kind === "refuse") throw new ClusterExistsError(selfId, decision.peer, decision.term, decision.lastIndex);
      if (nowMs() - loggedAtMs >= FOUNDING_LOG_INTERVAL_MS) {
        loggedAtMs = nowMs();
        logger.info(
          { waitingFor: Object.fromEntries(decision.waitingFor) },
          "empty data directory: waiting until every member answers that it is empty too before founding the cluster",
        );
      }
      await sleep(FOUNDING_ROUND_INTERVAL_MS);
    }
  }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
