/**
 * A small script interpreter for transcript tests of the Raft core, after etcd-io/raft's rafttest:
 * an in-memory cluster of RawNodes with MemoryStorage, where time (ticks) and message delivery are
 * fully manual, so every step of the protocol is visible and stable.
 *
 * Script format (one command per line; `#` lines and blank lines are kept as they are):
 *
 *   command arg key=value
 *   ----
 *   output line
 *   output line
 *   <blank line>
 *
 * Commands (node ids are written `1` or `n1`):
 *   add-nodes N [voters=1,2,3] [learners=4] [prevote=true] [checkquorum=true] [pendingreads=N]
 *       N new nodes. With voters= (or on an empty cluster, where all N become voters), each is
 *       bootstrapped with bootstrapEntries (plus one AddLearner entry per learner) and applies them
 *       before the command returns; otherwise the new nodes start with empty storage (to be added by
 *       a membership change). electionTick 10, heartbeatTick 1; node k's RandomSource always
 *       returns k-1, so its election timeout is always 10+k-1 ticks (n1 10, n2 11, n3 12, ...).
 *   campaign ID                     start an election now
 *   tick ID N                       N ticks
 *   tick-heartbeat ID               one heartbeat interval (1 tick)
 *   tick-election ID                one election timeout: a non-leader ticks its own timeout (10+k-1)
 *                                   times, so the timeout fires exactly once; a leader ticks 10 times,
 *                                   so it runs exactly one check-quorum round
 *   process-ready ID...|all         take one Ready: persist, send (queue) its messages, apply, advance
 *   deliver-msgs [drop=IDS] [type=T] ID...|all
 *                                   step queued messages addressed to ID (in send order); messages to
 *                                   `drop` ids are discarded; type= restricts to one message type.
 *                                   A step that breaks a core invariant crashes that node (printed).
 *   stabilize [ID...]               process-ready + deliver-msgs until nothing is left to do (with
 *                                   ids: among those nodes only; messages to others stay queued)
 *   propose ID data...              propose one entry (data is the rest of the line)
 *   propose-conf-change ID add-voter|add-learner|remove NODE
 *   read-index ID ctx
 *   transfer-leader FROM TO
 *   partition 1,2 / 3,4,5           messages between groups are lost, both those sent while the
 *                                   partition lasts and those queued before it (unlisted nodes form
 *                                   one more group); `heal` removes the partition
 *   crash ID / restart ID [wipe=true]
 *                                   a crash keeps only MemoryStorage; restart rebuilds from it (or,
 *                                   with wipe=true, from empty storage: a replaced disk)
 *   compact ID INDEX                snapshot the applied state at INDEX and compact the log
 *   status ID...|all                role, term, vote, lead, commit, applied, last index, configuration
 *                                   (and a pending transfer's target)
 *   progress ID                     the leader's view of each member
 *   log ID                          entries the node holds
 *   state ID...|all                 the data the node's state machine applied
 *
 * Errors the core reports to its host (RaftError) print as `error: Name: message`; anything else
 * (a malformed command, an invariant broken outside a step) fails the script with its line.
 *
 * Printing: messages are printed one a line (`n1->n2 app term=2 index=3 logTerm=1 commit=3
 * entries=[2/4 EntryNormal "x"]`). The messages of one Ready (or one delivery) are listed by
 * recipient, keeping send order per recipient (the only order a recipient can observe), and runs of
 * identical lines are folded into one line with a `(xN)` suffix.
 */
import { MemoryStorage } from "../../../sim/memory-storage.js";
import {
  bootstrapEntries,
  type ConfChange,
  ConfChangeType,
  type ConfState,
  decodeConfChange,
  type Entry,
  EntryKind,
  encodeConfChange,
  type Message,
  MessageType,
  NO_NODE,
  type NodeId,
  nodeId,
  RaftError,
  type RandomSource,
  RawNode,
  type Ready,
  type Snapshot,
  type Status,
} from "../../../../src/raft/index.js";
import { InvariantError } from "../../../../src/raft/errors.js";
import { decodeRoundId } from "../../../../src/raft/read-only.js";

const ELECTION_TICK = 10;
const HEARTBEAT_TICK = 1;
const STABILIZE_ROUNDS_MAX = 200;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * fixedRandom is node k's RandomSource: it always returns k-1, so node k's election timeout is
 * always electionTick + k - 1 ticks (n1: 10, n2: 11, n3: 12, ...). Timeouts are stable, and a
 * follower's leader lease (electionTick ticks) expires before its own timeout fires, except n1's.
 */
function fixedRandom(k: number): RandomSource {
  return { nextInt: (max: number) => (k - 1) % max };
}

function nodeNumber(id: NodeId): number {
  return Number(id.slice(1));
}

/**
 * electionTimeout is how many ticks tick-election takes. A non-leader's elapsed count is always
 * below its timeout, so its own timeout ticks fire it exactly once; a leader's check-quorum runs
 * once every electionTick ticks.
 */
function electionTimeout(id: NodeId, role: string): number {
  return role === "leader" ? ELECTION_TICK : ELECTION_TICK + ((nodeNumber(id) - 1) % ELECTION_TICK);
}

// ------------------------------------------------------------------------------------------ script

/** ScriptItem is one piece of a script file: kept text (comments, blank lines) or a command. */
export type ScriptItem =
  | { readonly kind: "text"; readonly line: string }
  | { readonly kind: "cmd"; readonly line: string; readonly lineNo: number; readonly expected: readonly string[] | undefined };

export const SEPARATOR = "----";

/** parseScript splits a script into kept text and commands with their expected output. */
export function parseScript(text: string): ScriptItem[] {
  const lines = text.replace(/\r\n/g, "\n").replace(/\n$/, "").split("\n");
  const items: ScriptItem[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? "";
    if (line.trim() === "" || line.trimStart().startsWith("#")) {
      items.push({ kind: "text", line });
      i++;
      continue;
    }
    const lineNo = i + 1;
    i++;
    let expected: string[] | undefined;
    if (lines[i] === SEPARATOR) {
      i++;
      expected = [];
      while (i < lines.length && (lines[i] ?? "") !== "") expected.push(lines[i++] ?? "");
    }
    items.push({ kind: "cmd", line, lineNo, expected });
  }
  return items;
}

/** formatScript writes a script back with the given output for each command (in order). */
export function formatScript(items: readonly ScriptItem[], outputs: readonly (readonly string[])[]): string {
  const out: string[] = [];
  let c = 0;
  items.forEach((it, k) => {
    if (it.kind === "text") {
      out.push(it.line);
      return;
    }
    out.push(it.line, SEPARATOR, ...(outputs[c++] ?? []));
    const next = items[k + 1];
    if (next !== undefined && !(next.kind === "text" && next.line.trim() === "")) out.push("");
  });
  return `${out.join("\n")}\n`;
}

/** CommandResult is what running one command printed. */
export interface CommandResult {
  readonly item: Extract<ScriptItem, { kind: "cmd" }>;
  readonly output: string[];
}

/** runScript runs every command of a script on a fresh cluster. */
export function runScript(text: string): { items: ScriptItem[]; results: CommandResult[] } {
  const items = parseScript(text);
  const cluster = new Cluster();
  const results: CommandResult[] = [];
  for (const item of items) {
    if (item.kind !== "cmd") continue;
    let output: string[];
    try {
      output = cluster.run(item.line);
    } catch (err) {
      const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      throw new Error(`line ${item.lineNo}: ${item.line}: ${msg}`, { cause: err });
    }
    results.push({ item, output: output.length > 0 ? output : ["ok"] });
  }
  return { items, results };
}

// ------------------------------------------------------------------------------------------ printing

function nodeName(id: NodeId): string {
  return id === NO_NODE ? "none" : id;
}

function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

function fmtIds(ids: readonly NodeId[]): string {
  return `(${[...ids].sort(naturalCompare).join(",")})`;
}

function fmtConf(cs: ConfState): string {
  return `voters=${fmtIds(cs.voters)} learners=${fmtIds(cs.learners)}`;
}

function fmtBytes(b: Uint8Array | undefined): string {
  if (b === undefined) return '""';
  const s = decoder.decode(b);
  if (/^[\x20-\x7e]*$/.test(s)) return JSON.stringify(s);
  return `0x${[...b].map((x) => x.toString(16).padStart(2, "0")).join("")}`;
}

/** fmtEntry prints an entry as `term/index Kind data`. */
export function fmtEntry(e: Entry): string {
  if (e.kind === EntryKind.ConfChange) {
    const cc = decodeConfChange(e.data);
    return `${e.term}/${e.index} EntryConfChange ${cc.type} ${cc.node}`;
  }
  return `${e.term}/${e.index} EntryNormal ${fmtBytes(e.data)}`;
}

function fmtSnapshot(s: Snapshot): string {
  return `{index=${s.meta.index} term=${s.meta.term} ${fmtConf(s.meta.conf)} data=${decoder.decode(s.data)}}`;
}

function fmtRound(ctx: Uint8Array | undefined): string {
  const round = decodeRoundId(ctx);
  return round === undefined ? "" : ` round=${round}`;
}

/** fmtMsg prints a message with the fields its type uses. */
export function fmtMsg(m: Message): string {
  let s = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case MessageType.App:
      s += ` index=${m.index} logTerm=${m.logTerm} commit=${m.commit}`;
      if (m.entries.length > 0) s += ` entries=[${m.entries.map(fmtEntry).join(", ")}]`;
      break;
    case MessageType.AppResp:
      s += ` index=${m.index}`;
      if (m.reject) s += ` reject rejectHint=${m.rejectHint} logTerm=${m.logTerm}`;
      break;
    case MessageType.Vote:
    case MessageType.PreVote:
      s += ` index=${m.index} logTerm=${m.logTerm}`;
      if (m.context !== undefined) s += ` ctx=${fmtBytes(m.context)}`;
      break;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      if (m.reject) s += " reject";
      break;
    case MessageType.Snap:
      if (m.snapshot) s += ` snapshot=${fmtSnapshot(m.snapshot)}`;
      break;
    case MessageType.Heartbeat:
      s += ` commit=${m.commit}${fmtRound(m.context)}`;
      break;
    case MessageType.HeartbeatResp:
      s += fmtRound(m.context);
      break;
    case MessageType.ReadIndex:
      s += ` ctx=${fmtBytes(m.context)}`;
      break;
    case MessageType.ReadIndexResp:
      s += ` index=${m.index} ctx=${fmtBytes(m.context)}`;
      if (m.reject) s += m.readReject ? ` reject=${m.readReject}` : " reject";
      break;
    default:
      break;
  }
  return s;
}

/** foldByRecipient prints messages by recipient (stable) and folds runs of identical lines into `line (xN)`. */
function foldByRecipient(msgs: readonly Message[], line: (m: Message) => string): string[] {
  const sorted = msgs
    .map((m, i) => ({ m, i }))
    .sort((a, b) => naturalCompare(a.m.to, b.m.to) || a.i - b.i)
    .map(({ m }) => line(m));
  return foldRuns(sorted);
}

function foldRuns(lines: readonly string[]): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? "";
    let j = i + 1;
    while (j < lines.length && lines[j] === line) j++;
    out.push(j - i > 1 ? `${line} (x${j - i})` : line);
    i = j;
  }
  return out;
}

function fmtStatus(st: Status): string {
  let s =
    `${st.id}: ${st.role} term=${st.term} vote=${nodeName(st.vote)} lead=${nodeName(st.lead)}` +
    ` commit=${st.commit} applied=${st.applied} last=${st.lastIndex} ${fmtConf(st)}`;
  if (st.leadTransferee !== NO_NODE) s += ` transferee=${st.leadTransferee}`;
  return s;
}

function fmtRole(st: Status): string {
  return `${st.role} term=${st.term} lead=${nodeName(st.lead)}`;
}

function fmtError(err: unknown): string {
  if (err instanceof RaftError) return `error: ${err.name}: ${err.message}`;
  throw err;
}

// ------------------------------------------------------------------------------------------ cluster

/** Host is one node of the cluster: its RawNode, durable storage and a trivial state machine. */
class Host {
  raw: RawNode | undefined;
  /** applied is the data of every non-empty normal entry the state machine applied, in order. */
  applied: string[] = [];
  /** appliedIndex is the log index of each element of `applied` (the snapshot index after a restore). */
  appliedIndex: number[] = [];

  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
    readonly options: { preVote: boolean; checkQuorum: boolean; pendingReadsMax?: number },
  ) {
    this.start();
  }

  /** wipe loses the node's storage too (a replaced disk). */
  wipe(): void {
    const empty = new MemoryStorage();
    this.storage.hardState = empty.hardState;
    this.storage.snapshot = undefined;
    this.storage.entries = [];
  }

  start(): void {
    this.raw = new RawNode(
      {
        id: this.id,
        electionTick: ELECTION_TICK,
        heartbeatTick: HEARTBEAT_TICK,
        random: fixedRandom(nodeNumber(this.id)),
        preVote: this.options.preVote,
        checkQuorum: this.options.checkQuorum,
        pendingReadsMax: this.options.pendingReadsMax,
      },
      this.storage.load(),
    );
    this.applied = [];
    this.appliedIndex = [];
    const snap = this.storage.snapshot;
    if (snap) this.restore(snap);
  }

  restore(snap: Snapshot): void {
    const data = snap.data.length > 0 ? (JSON.parse(decoder.decode(snap.data)) as string[]) : [];
    this.applied = [...data];
    this.appliedIndex = data.map(() => snap.meta.index);
  }

  apply(e: Entry): void {
    if (e.kind !== EntryKind.Normal || e.data.length === 0) return;
    this.applied.push(decoder.decode(e.data));
    this.appliedIndex.push(e.index);
  }

  /** snapshotData is the state machine's state after applying through index. */
  snapshotData(index: number): Uint8Array {
    const data = this.applied.filter((_, i) => (this.appliedIndex[i] ?? 0) <= index);
    return encoder.encode(JSON.stringify(data));
  }

  node(): RawNode {
    if (!this.raw) throw new Error(`${this.id} is down`);
    return this.raw;
  }
}

interface Args {
  readonly cmd: string;
  readonly pos: string[];
  readonly kv: Map<string, string>;
  readonly rest: string;
}

function parseArgs(line: string): Args {
  const tokens = line.trim().split(/\s+/);
  const cmd = tokens.shift() ?? "";
  const pos: string[] = [];
  const kv = new Map<string, string>();
  for (const t of tokens) {
    const eq = t.indexOf("=");
    if (eq > 0) kv.set(t.slice(0, eq), t.slice(eq + 1));
    else pos.push(t);
  }
  const rest = line.trim().slice(cmd.length).trim();
  return { cmd, pos, kv, rest };
}

function parseId(s: string): NodeId {
  const t = s.trim();
  if (/^\d+$/.test(t)) return nodeId(`n${t}`);
  if (/^n\d+$/.test(t)) return nodeId(t);
  throw new Error(`bad node id ${JSON.stringify(s)}`);
}

function parseIdList(s: string | undefined): NodeId[] {
  if (s === undefined || s.trim() === "") return [];
  return s
    .replace(/[()]/g, "")
    .split(",")
    .filter((x) => x.trim() !== "")
    .map(parseId);
}

function parseBool(s: string | undefined, dflt: boolean): boolean {
  if (s === undefined) return dflt;
  if (s === "true") return true;
  if (s === "false") return false;
  throw new Error(`bad boolean ${s}`);
}

/** Cluster is the interpreter's world: hosts, the queue of sent messages, and the partition. */
export class Cluster {
  private readonly hosts = new Map<NodeId, Host>();
  /** queue holds sent, undelivered messages in send order. */
  private queue: Message[] = [];
  /** group maps a node to its partition group; empty when healed. */
  private group = new Map<NodeId, number>();

  run(line: string): string[] {
    const a = parseArgs(line);
    switch (a.cmd) {
      case "add-nodes":
        return this.addNodes(a);
      case "campaign":
        return this.withRoleChange(this.one(a), (raw) => raw.campaign());
      case "tick-heartbeat":
        return this.withRoleChange(this.one(a), (raw) => this.ticks(raw, HEARTBEAT_TICK));
      case "tick-election": {
        const id = this.one(a);
        return this.withRoleChange(id, (raw) => this.ticks(raw, electionTimeout(id, raw.status().role)));
      }
      case "tick": {
        const n = Number(a.pos[1]);
        if (!Number.isInteger(n) || n < 0) throw new Error("tick ID N");
        return this.withRoleChange(this.one(a), (raw) => this.ticks(raw, n));
      }
      case "process-ready":
        return this.ids(a).flatMap((id) => this.processReady(id));
      case "deliver-msgs":
        return this.deliver(a);
      case "stabilize":
        return this.stabilize(a.pos.length > 0 ? this.ids(a) : this.allIds());
      case "propose":
        return this.propose(a);
      case "propose-conf-change":
        return this.proposeConfChange(a);
      case "read-index":
        return this.guard(() => {
          const [, ctx] = a.pos;
          if (ctx === undefined) throw new Error("read-index ID ctx");
          this.raw(this.one(a)).readIndex(encoder.encode(ctx));
          return ["ok"];
        });
      case "transfer-leader":
        return this.guard(() => {
          const [from, to] = a.pos;
          if (from === undefined || to === undefined) throw new Error("transfer-leader FROM TO");
          this.raw(parseId(from)).transferLeadership(parseId(to));
          return ["ok"];
        });
      case "partition":
        return this.partition(a);
      case "heal":
        this.group.clear();
        return ["healed"];
      case "crash":
        return this.crash(this.one(a));
      case "restart":
        return this.restart(this.one(a), parseBool(a.kv.get("wipe"), false));
      case "compact":
        return this.compact(a);
      case "status":
        return this.ids(a).map((id) => this.statusLine(id));
      case "progress":
        return this.progress(this.one(a));
      case "log":
        return this.log(this.one(a));
      case "state":
        return this.ids(a).map((id) => `${id}: ${JSON.stringify(this.host(id).applied)}`);
      default:
        throw new Error(`unknown command ${a.cmd}`);
    }
  }

  // ---------------------------------------------------------------- helpers

  private allIds(): NodeId[] {
    return [...this.hosts.keys()].sort(naturalCompare) as NodeId[];
  }

  private ids(a: Args): NodeId[] {
    if (a.pos.length === 0) throw new Error(`${a.cmd} needs node ids or all`);
    if (a.pos.length === 1 && a.pos[0] === "all") return this.allIds();
    return a.pos.map(parseId);
  }

  private one(a: Args): NodeId {
    const first = a.pos[0];
    if (first === undefined) throw new Error(`${a.cmd} needs a node id`);
    return parseId(first);
  }

  private host(id: NodeId): Host {
    const h = this.hosts.get(id);
    if (!h) throw new Error(`no node ${id}`);
    return h;
  }

  private raw(id: NodeId) {
    return this.host(id).node();
  }

  private guard(f: () => string[]): string[] {
    try {
      return f();
    } catch (err) {
      return [fmtError(err)];
    }
  }

  private ticks(raw: RawNode, n: number): void {
    for (let i = 0; i < n; i++) raw.tick();
  }

  /** withRoleChange runs f and prints the node's role change, if any. */
  private withRoleChange(id: NodeId, f: (raw: RawNode) => void): string[] {
    const raw = this.raw(id);
    const before = raw.status();
    f(raw);
    const after = raw.status();
    if (fmtRole(before) === fmtRole(after)) return [`${id}: ${fmtRole(after)} (unchanged)`];
    return [`${id}: ${fmtRole(before)} -> ${fmtRole(after)}`];
  }

  private statusLine(id: NodeId): string {
    const h = this.host(id);
    if (!h.raw) {
      const hs = h.storage.hardState;
      const last = h.storage.entries[h.storage.entries.length - 1]?.index ?? h.storage.snapshot?.meta.index ?? 0;
      return `${id}: down (storage: term=${hs.term} vote=${nodeName(hs.vote)} commit=${hs.commit} last=${last})`;
    }
    return fmtStatus(h.raw.status());
  }

  // ---------------------------------------------------------------- commands

  private addNodes(a: Args): string[] {
    const n = Number(a.pos[0]);
    if (!Number.isInteger(n) || n < 1) throw new Error("add-nodes N");
    const base = this.hosts.size;
    const fresh = Array.from({ length: n }, (_, i) => nodeId(`n${base + i + 1}`));
    let voters = parseIdList(a.kv.get("voters"));
    const learners = parseIdList(a.kv.get("learners"));
    if (voters.length === 0 && base === 0) voters = fresh;
    const options = {
      preVote: parseBool(a.kv.get("prevote"), true),
      checkQuorum: parseBool(a.kv.get("checkquorum"), true),
      ...(a.kv.has("pendingreads") ? { pendingReadsMax: Number(a.kv.get("pendingreads")) } : {}),
    };
    const out: string[] = [];
    for (const id of fresh) {
      let storage = new MemoryStorage();
      if (voters.length > 0) {
        const entries = bootstrapEntries(voters);
        for (const l of [...learners].sort(naturalCompare)) {
          const cc: ConfChange = { type: ConfChangeType.AddLearner, node: l };
          entries.push({ term: 1, index: entries.length + 1, kind: EntryKind.ConfChange, data: encodeConfChange(cc) });
        }
        storage = new MemoryStorage({ hardState: { term: 1, vote: NO_NODE, commit: entries.length }, entries });
      }
      const h = new Host(id, storage, options);
      this.hosts.set(id, h);
      // Apply the bootstrap entries, which every initial member starts with committed.
      const raw = h.node();
      if (raw.hasReady()) {
        const rd = raw.ready();
        if (rd.messages.length > 0 || rd.entries.length > 0) throw new Error("bootstrap ready has messages or entries");
        for (const e of rd.committedEntries) h.apply(e);
        raw.advance(rd);
      }
      out.push(fmtStatus(raw.status()));
    }
    return out;
  }

  private processReady(id: NodeId): string[] {
    const h = this.host(id);
    if (!h.raw) return [`> ${id} is down`];
    const raw = h.raw;
    if (!raw.hasReady()) return [];
    const rd: Ready = raw.ready();
    const out = [`> ${id} ready`];
    if (rd.softState) out.push(`  state: ${rd.softState.role} lead=${nodeName(rd.softState.lead)}`);
    if (rd.hardState) {
      const hs = rd.hardState;
      out.push(`  hard: term=${hs.term} vote=${nodeName(hs.vote)} commit=${hs.commit}`);
    }
    if (rd.snapshot) out.push(`  snapshot: ${fmtSnapshot(rd.snapshot)}`);
    for (const e of rd.entries) out.push(`  append: ${fmtEntry(e)}`);
    // 1. persist, 2. send, 3. apply, 4. advance.
    h.storage.save(rd);
    // A message sent across the partition is lost at once.
    for (const m of rd.messages) if (!this.partitioned(m)) this.queue.push(m);
    out.push(...foldByRecipient(rd.messages, (m) => `  send: ${fmtMsg(m)}${this.partitioned(m) ? " (dropped: partition)" : ""}`));
    if (rd.snapshot) h.restore(rd.snapshot);
    for (const e of rd.committedEntries) {
      out.push(`  apply: ${fmtEntry(e)}`);
      h.apply(e);
    }
    for (const rs of rd.readStates) out.push(`  read-state: index=${rs.index} ctx=${fmtBytes(rs.context)}`);
    for (const rr of rd.readRejects) out.push(`  read-reject: ${rr.reason} ctx=${fmtBytes(rr.context)}`);
    raw.advance(rd);
    return out;
  }

  private partitioned(m: Message): boolean {
    const gf = this.group.get(m.from);
    const gt = this.group.get(m.to);
    return gf !== undefined && gt !== undefined && gf !== gt;
  }

  /** dropReason says why a queued message cannot be delivered now, if it cannot. */
  private dropReason(m: Message): string | undefined {
    if (!this.hosts.get(m.to)?.raw) return `${m.to} down`;
    if (this.partitioned(m)) return "partition";
    return undefined;
  }

  /** deliverTo steps (or drops) the queued messages that pass `take`, grouped by recipient. */
  private deliverTo(recipients: readonly NodeId[], take: (m: Message) => boolean, drop: ReadonlySet<NodeId>): string[] {
    const out: string[] = [];
    for (const id of recipients) {
      const mine = this.queue.filter((m) => m.to === id && take(m));
      if (mine.length === 0) continue;
      this.queue = this.queue.filter((m) => !(m.to === id && take(m)));
      const lines: string[] = [];
      for (const m of mine) {
        const reason = drop.has(id) ? "requested" : this.dropReason(m);
        if (reason !== undefined) {
          lines.push(`  dropped (${reason}): ${fmtMsg(m)}`);
          continue;
        }
        lines.push(`  ${fmtMsg(m)}`);
        try {
          this.raw(id).step(m);
        } catch (err) {
          // A broken invariant means the host must crash; the transcript shows it.
          if (!(err instanceof InvariantError)) throw err;
          this.host(id).raw = undefined;
          lines.push(`  ${id} crashed: ${err.name}: ${err.message}`);
          break;
        }
      }
      out.push(`> ${id} receive`, ...foldRuns(lines));
    }
    return out;
  }

  private deliver(a: Args): string[] {
    const drop = new Set(parseIdList(a.kv.get("drop")));
    const type = a.kv.get("type");
    if (type !== undefined && !(Object.values(MessageType) as string[]).includes(type)) {
      throw new Error(`unknown message type ${type}`);
    }
    const take = (m: Message) => type === undefined || m.type === type;
    let targets: NodeId[] = [];
    if (a.pos.length > 0) targets = this.ids(a);
    const recipients = [...new Set([...targets, ...drop])].sort(naturalCompare);
    return this.deliverTo(recipients, take, drop);
  }

  private stabilize(ids: readonly NodeId[]): string[] {
    const out: string[] = [];
    const set = new Set(ids);
    for (let round = 0; ; round++) {
      if (round >= STABILIZE_ROUNDS_MAX) throw new Error("stabilize did not settle");
      let busy = false;
      for (const id of ids) {
        const h = this.host(id);
        if (h.raw?.hasReady()) {
          out.push(...this.processReady(id));
          busy = true;
        }
      }
      const recipients = [...new Set(this.queue.map((m) => m.to))].filter((id) => set.has(id)).sort(naturalCompare);
      if (recipients.length > 0) {
        out.push(...this.deliverTo(recipients, () => true, new Set()));
        busy = true;
      }
      if (!busy) return out;
    }
  }

  private propose(a: Args): string[] {
    const id = this.one(a);
    const data = a.rest.slice((a.pos[0] ?? "").length).trim();
    return this.guard(() => {
      const refs = this.raw(id).propose([encoder.encode(data)]);
      return refs.map((r) => `proposed ${r.term}/${r.index}`);
    });
  }

  private proposeConfChange(a: Args): string[] {
    const [, type, node] = a.pos;
    const types = Object.values(ConfChangeType) as string[];
    if (type === undefined || node === undefined || !types.includes(type)) {
      throw new Error("propose-conf-change ID add-voter|add-learner|remove NODE");
    }
    const id = this.one(a);
    return this.guard(() => {
      const ref = this.raw(id).proposeConfChange({ type: type as ConfChangeType, node: parseId(node) });
      return [`proposed ${ref.term}/${ref.index}`];
    });
  }

  private partition(a: Args): string[] {
    this.group.clear();
    const groups = a.rest
      .split("/")
      .map((g) => parseIdList(g.replace(/\s+/g, "")))
      .filter((g) => g.length > 0);
    groups.forEach((g, i) => {
      for (const id of g) this.group.set(id, i);
    });
    const rest = this.allIds().filter((id) => !this.group.has(id));
    if (rest.length > 0) {
      for (const id of rest) this.group.set(id, groups.length);
      groups.push(rest);
    }
    return [`partitioned: ${groups.map(fmtIds).join(" / ")}`];
  }

  private crash(id: NodeId): string[] {
    const h = this.host(id);
    h.raw = undefined;
    h.applied = [];
    h.appliedIndex = [];
    return [this.statusLine(id)];
  }

  private restart(id: NodeId, wipe: boolean): string[] {
    const h = this.host(id);
    if (h.raw) throw new Error(`${id} is not down`);
    if (wipe) h.wipe();
    h.start();
    return [this.statusLine(id)];
  }

  private compact(a: Args): string[] {
    const id = this.one(a);
    const index = Number(a.pos[1]);
    if (!Number.isInteger(index)) throw new Error("compact ID INDEX");
    const h = this.host(id);
    const snap = h.node().compact(index, h.snapshotData(index));
    h.storage.compact(snap);
    return [`${id}: snapshot ${fmtSnapshot(snap)}`];
  }

  private progress(id: NodeId): string[] {
    const prs = this.raw(id).progress();
    if (prs.size === 0) return [`${id}: not the leader`];
    return [...prs.entries()]
      .sort(([x], [y]) => naturalCompare(x, y))
      .map(([peer, p]) => `${peer}: match=${p.match} next=${p.next} ${p.state}`);
  }

  private log(id: NodeId): string[] {
    const h = this.host(id);
    const out: string[] = [];
    if (h.storage.snapshot) {
      const m = h.storage.snapshot.meta;
      out.push(`${id}: snapshot index=${m.index} term=${m.term} ${fmtConf(m.conf)}`);
    }
    if (!h.raw) {
      for (const e of h.storage.entries) out.push(`${id}: ${fmtEntry(e)} (storage)`);
    } else {
      const last = h.raw.status().lastIndex;
      for (let i = 1; i <= last; i++) {
        const e = h.raw.logEntry(i);
        if (e) out.push(`${id}: ${fmtEntry(e)}`);
      }
    }
    if (out.length === 0) out.push(`${id}: empty log`);
    return out;
  }
}
