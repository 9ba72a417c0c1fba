import type { ReadIndexer } from "../api/read-barrier.js";
import { ConfigError } from "../config/index.js";
import type { LeaseLeadership } from "../registry/lease-driver.js";
import type { RegistryCommand, Session } from "../registry/types.js";
import { type ClusterNow, encodeWrite, type OkResult, type RegistryWriter } from "../registry/writer.js";

/**
 * UnsafeSwitches break the node's guarantees on purpose, for the fault-injection suite's negative
 * controls: a checker that cannot catch a broken node proves nothing. They are read only from the
 * RAFTMESH_TEST_UNSAFE environment variable, are not part of the configuration schema, and the
 * agent logs a warning at start when any is on.
 */
export interface UnsafeSwitches {
  /** staleReads: linearizable reads skip ReadIndex and answer from local state. */
  readonly staleReads: boolean;
  /** earlyAck: writes are acknowledged once the leader has appended them, before a quorum has. */
  readonly earlyAck: boolean;
  /** clockControl: the admin endpoint accepts POST /test/clock?offset_ms=N to shift the node's wall clock. */
  readonly clockControl: boolean;
  /** unconfirmedLeaseAck: heartbeats are acknowledged by whoever believes it leads, with no quorum confirming it still does. */
  readonly unconfirmedLeaseAck: boolean;
}

export const SAFE: UnsafeSwitches = { staleReads: false, earlyAck: false, clockControl: false, unconfirmedLeaseAck: false };

/** UNSAFE_ENV is the variable that turns the switches on (comma-separated names). */
export const UNSAFE_ENV = "RAFTMESH_TEST_UNSAFE";

const NAMES = { "stale-reads": "staleReads", "early-ack": "earlyAck", clock: "clockControl", "unconfirmed-lease-ack": "unconfirmedLeaseAck" } as const;

/** readUnsafeSwitches parses RAFTMESH_TEST_UNSAFE; an unknown name is a configuration error. */
export function readUnsafeSwitches(env: Record<string, string | undefined>): UnsafeSwitches {
  const raw = env[UNSAFE_ENV];
  if (!raw) return SAFE;
  const out = { ...SAFE } as { -readonly [K in keyof UnsafeSwitches]: boolean };
  for (const name of raw.split(",").map((s) => s.trim()).filter(Boolean)) {
    const key = NAMES[name as keyof typeof NAMES];
    if (!key) throw new ConfigError(UNSAFE_ENV, UNSAFE_ENV, `unknown switch "${name}" (known: ${Object.keys(NAMES).join(", ")})`);
    out[key] = true;
  }
  return out;
}

/** anyUnsafe says whether any switch is on. */
export function anyUnsafe(s: UnsafeSwitches): boolean {
  return Object.values(s).some(Boolean);
}

/**
 * unconfirmedLeadership is the unconfirmed-lease-ack control: a LeaseLeadership that takes this
 * node's own belief that it leads for a confirmation, as heartbeats were acknowledged before the
 * lease driver asked a quorum.
 */
export function unconfirmedLeadership(node: Pick<LeaseLeadership, "isLeader">): LeaseLeadership {
  return { isLeader: () => node.isLeader(), readIndex: () => Promise.resolve() };
}

/** AppProposerNoWait appends an app command to the leader's log without waiting for it to commit (RaftNode.proposeNoWait of encodeAppCommand(data)). */
export interface AppProposerNoWait {
  proposeAppNoWait(data: Uint8Array): { index: number };
}

/**
 * EarlyAckWriter is the early-ack control: a RegistryWriter that claims success as soon as the
 * leader has the entry in its log, before a quorum has it. Built only when the switch is on.
 */
export class EarlyAckWriter implements RegistryWriter {
  constructor(
    private readonly node: AppProposerNoWait,
    private readonly clusterTime: ClusterNow,
  ) {}

  async write(cmd: RegistryCommand, session: Session | undefined): Promise<OkResult> {
    const { index } = this.node.proposeAppNoWait(encodeWrite(this.clusterTime, cmd, session));
    return { ok: true, index, succeeded: true };
  }
}

/** staleReadIndexer is the stale-reads control: linearizable reads skip ReadIndex and answer from local state. */
export const staleReadIndexer: ReadIndexer = { readIndex: () => Promise.resolve() };
