import { type Message, MessageType, type Ready, type Term } from "./types.js";

/**
 * splitForEarlySend divides a ready's messages into those a leader may send before its own disk
 * write finishes and those that must wait for it (Raft dissertation §10.2.1: the leader can write
 * to its disk in parallel with replicating to followers). It is safe because the core counts the
 * leader's own log toward a commit only after advance() reports the entries durable, so a commit
 * still needs a majority of durable copies.
 *
 * Only appends qualify, and only at a term that is already durable: a node that became leader in
 * the same ready as its term change (a single voter with learners) would otherwise ship entries
 * under a term it could forget in a crash, and later reuse that term for different entries.
 * Everything else — votes, responses, heartbeats carrying commit — waits for the write.
 */
export function splitForEarlySend(rd: Ready, persistedTerm: Term): { early: Message[]; late: Message[] } {
  const early: Message[] = [];
  const late: Message[] = [];
  for (const m of rd.messages) {
    if (m.type === MessageType.App && m.term <= persistedTerm) early.push(m);
    else late.push(m);
  }
  return { early, late };
}
