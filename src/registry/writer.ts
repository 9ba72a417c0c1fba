/**
 * The one write path of the registry: every service (Registry, KV) and the lease driver writes
 * through a RegistryWriter. It stamps the command with cluster time, encodes the registry envelope,
 * hands the bytes to the node as an app command, waits for the entry to apply here (up to the
 * caller's deadline) and returns the typed result; a refusal becomes its typed error (resultError).
 */
import { untilDeadline } from "../common/deadline.js";
import { encodeCommand } from "./codec.js";
import { NoResultError, resultError, WriteTimeoutError } from "./errors.js";
import type { CommandResult, RegistryCommand, Session } from "./types.js";

/** OkResult is a command result that applied. */
export type OkResult = Extract<CommandResult, { ok: true }>;

/** RegistryWriter replicates registry commands and returns their results. */
export interface RegistryWriter {
  /**
   * write resolves with the result once the command applied on this node; it rejects with the
   * typed error of a refusal (took no effect, except StaleSessionError), WriteTimeoutError when the
   * deadline came first (the outcome is unknown), or whatever the node's propose rejected with.
   */
  write(cmd: RegistryCommand, session: Session | undefined, deadline: Date): Promise<OkResult>;
}

/**
 * AppProposer is how the writer reaches the node: proposeApp wraps the bytes in the node's
 * app-command envelope, proposes them, and resolves with the state machine's result once applied
 * here (RaftNode.propose of encodeAppCommand(data)).
 */
export interface AppProposer {
  proposeApp(data: Uint8Array): Promise<unknown>;
}

/** ClusterTimeSource stamps commands: the cluster time for this node's current term (cluster-clock.ts). */
export interface ClusterNow {
  now(): number;
}

/** encodeWrite is a command as the log holds it: stamped with cluster time, in the registry envelope. */
export function encodeWrite(clusterTime: ClusterNow, cmd: RegistryCommand, session: Session | undefined): Uint8Array {
  return encodeCommand({ v: 1, at: clusterTime.now(), session, cmd });
}

/** ProposingWriter is the RegistryWriter of a node: it acknowledges a write only once it applied. */
export class ProposingWriter implements RegistryWriter {
  constructor(
    private readonly node: AppProposer,
    private readonly clusterTime: ClusterNow,
  ) {}

  async write(cmd: RegistryCommand, session: Session | undefined, deadline: Date): Promise<OkResult> {
    const applied = this.node.proposeApp(encodeWrite(this.clusterTime, cmd, session));
    const res = (await untilDeadline(applied, deadline, (ms) => new WriteTimeoutError(cmd.op, ms))) as CommandResult | undefined;
    if (!res) throw new NoResultError(cmd.op);
    if (res.ok) return res;
    throw resultError(res);
  }
}
