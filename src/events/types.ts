/**
 * The event stream's data: one MeshEvent per thing an operator wants to hear about. Kinds that
 * come from applied registry or membership state carry the entry's index and are the same on
 * every node; local ones (index 0, local true) are this node's own observations.
 */

/** EVENT_KINDS are every kind the stream reports, in the README's order. */
export const EVENT_KINDS = [
  "leader-elected",
  "leader-lost",
  "member-joined",
  "member-removed",
  "member-unreachable",
  "member-reachable",
  "instance-critical",
  "instance-passing",
  "instance-expired",
  "instance-restarted",
  "master-promoted",
  "master-demoted",
  "no-master",
  "outlier-ejected",
  "circuit-open",
  "retry-budget-exhausted",
  "upstream-tls-failed",
  "snapshot-taken",
  "tls-cert-expiring",
] as const;

export type MeshEventKind = (typeof EVENT_KINDS)[number];

/** LOCAL_KINDS are the kinds a node reports from its own view (the rest come from applied entries). */
export const LOCAL_KINDS: ReadonlySet<MeshEventKind> = new Set<MeshEventKind>([
  "leader-elected",
  "leader-lost",
  "member-unreachable",
  "member-reachable",
  "outlier-ejected",
  "circuit-open",
  "retry-budget-exhausted",
  "upstream-tls-failed",
  "snapshot-taken",
  "tls-cert-expiring",
]);

/** MeshEvent is one event as the ring holds it and the stream, the CLI and the status page show it. */
export interface MeshEvent {
  /** seq numbers this node's events in order; a restarted node numbers on above its previous life (journal.ts, SEQ_PER_MS). */
  readonly seq: number;
  readonly kind: MeshEventKind;
  /** index is the Raft index of the applied entry the event comes from; 0 for local events. */
  readonly index: number;
  readonly local: boolean;
  /** node is the node that recorded it. */
  readonly node: string;
  /** atMs is this node's wall clock when it recorded the event. */
  readonly atMs: number;
  readonly service: string;
  readonly instance: string;
  readonly member: string;
  readonly message: string;
  readonly details: Readonly<Record<string, string>>;
}

/** EventInput is a MeshEvent before the journal numbers and stamps it. */
export type EventInput = Pick<MeshEvent, "kind" | "message"> & Partial<Pick<MeshEvent, "index" | "service" | "instance" | "member" | "details">>;

/**
 * BalancerSignal is what a balancer worker reports over its MessagePort (the agent passes it on):
 * an outlier ejected, a circuit that refused a request, a retry refused by the budget.
 */
export interface BalancerSignal {
  readonly kind: "outlier-ejected" | "circuit-open" | "retry-budget-exhausted" | "upstream-tls-failed";
  readonly service: string;
  readonly instance?: string;
  /** limit names the circuit-breaking limit for circuit-open (connections, pending, requests). */
  readonly limit?: string;
}
