/**
 * The Probe call of the peer API: what a member says it holds, in the transport's terms and on the
 * wire. The host decides what to answer and what an answer means (src/agent/founding.ts).
 */
import { type NodeId, nodeId } from "../raft/types.js";
import { WireFormatError } from "./errors.js";

/**
 * ProbeAnswer is what a member holds: `founding` (empty, bootstrap on, waiting to found the
 * cluster with the others), `joining` (empty, bootstrap off, waiting to be added) or `existing`
 * (Raft state). founders is set only by a member that founded the cluster in its current process:
 * the session of every member it saw empty when it did.
 */
export type ProbeAnswer =
  | { readonly state: "founding"; readonly session: string }
  | { readonly state: "joining" }
  | { readonly state: "existing"; readonly term: number; readonly lastIndex: number; readonly founders: ReadonlyMap<NodeId, string> };

/** WireProbeRequest is raftmesh.raft.v1.ProbeRequest. */
export interface WireProbeRequest {
  session: string;
}

/** WireProbeResponse is raftmesh.raft.v1.ProbeResponse (map fields decode to plain objects). */
export interface WireProbeResponse {
  state: number;
  session: string;
  term: number;
  lastIndex: number;
  founders: Record<string, string>;
}

/** WIRE_PROBE_STATE maps a ProbeAnswer's state to the proto enum. */
const WIRE_PROBE_STATE = { founding: 1, joining: 2, existing: 3 } as const;

/** encodeProbeAnswer converts an answer to its wire form. */
export function encodeProbeAnswer(answer: ProbeAnswer): WireProbeResponse {
  const wire: WireProbeResponse = { state: WIRE_PROBE_STATE[answer.state], session: "", term: 0, lastIndex: 0, founders: {} };
  if (answer.state === "founding") wire.session = answer.session;
  if (answer.state === "existing") {
    wire.term = answer.term;
    wire.lastIndex = answer.lastIndex;
    wire.founders = Object.fromEntries(answer.founders);
  }
  return wire;
}

/** decodeProbeAnswer checks a peer's answer: an unknown state or a founding answer without a session is a WireFormatError. */
export function decodeProbeAnswer(wire: WireProbeResponse): ProbeAnswer {
  switch (wire.state) {
    case WIRE_PROBE_STATE.founding:
      if (!wire.session) throw new WireFormatError("founding probe answer without a session");
      return { state: "founding", session: wire.session };
    case WIRE_PROBE_STATE.joining:
      return { state: "joining" };
    case WIRE_PROBE_STATE.existing: {
      const founders = new Map<NodeId, string>();
      for (const [id, session] of Object.entries(wire.founders ?? {})) founders.set(nodeId(id), session);
      return { state: "existing", term: safeCount(wire.term, "term"), lastIndex: safeCount(wire.lastIndex, "lastIndex"), founders };
    }
    default:
      throw new WireFormatError(`unknown probe state ${wire.state}`);
  }
}

function safeCount(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new WireFormatError(`probe ${field} ${value} is not a safe non-negative integer`);
  return value;
}
