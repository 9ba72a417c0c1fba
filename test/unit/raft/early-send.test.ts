import { describe, expect, it } from "vitest";
import { type Message, MessageType, nodeId, type Ready, splitForEarlySend } from "../../../src/raft/index.js";

const msg = (type: Message["type"], term: number): Message => ({
  type,
  from: nodeId("n1"),
  to: nodeId("n2"),
  term,
  logTerm: 0,
  index: 0,
  entries: [],
  commit: 0,
  reject: false,
  rejectHint: 0,
}) as unknown as Message;

const ready = (messages: Message[]): Ready => ({ entries: [], messages, committedEntries: [], readStates: [] }) as unknown as Ready;

describe("early send", () => {
  it("early send: only appends at a durable term leave before the write", () => {
    const app = msg(MessageType.App, 5);
    const appNewTerm = msg(MessageType.App, 6);
    const vote = msg(MessageType.Vote, 5);
    const resp = msg(MessageType.AppResp, 5);
    const hb = msg(MessageType.Heartbeat, 5);
    const { early, late } = splitForEarlySend(ready([app, vote, appNewTerm, resp, hb]), 5);
    expect(early).toEqual([app]);
    expect(late).toEqual([vote, appNewTerm, resp, hb]);
  });
});
