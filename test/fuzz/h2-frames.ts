/**
 * HTTP/2 frame fuzzing of the client API port (issue 16): raw bytes over a TCP socket after the
 * connection preface, below gRPC: frames with lengths that lie, unknown types, flags that do not
 * belong, HEADERS whose HPACK block is garbage, CONTINUATION floods, WINDOW_UPDATE of 0 or past
 * 2^31-1, SETTINGS with values out of range, RST_STREAM storms, DATA on idle, closed and zero
 * streams, a frame declaring 16 MiB. Every attack is drawn from a seed and bounded in frames,
 * bytes and time. After each batch (one attack of every kind at once, on separate connections to
 * one node) the node must answer a valid write and read, and at the end its state must hold exactly
 * what those valid writes produced.
 */
import { connect, type Socket } from "node:net";
import { status as Status } from "@grpc/grpc-js";
import type { ProcessCluster } from "../integration/harness/process-cluster.js";
import { decode, encode, RawClient, statusName } from "../integration/harness/raw-grpc.js";

/** The connection preface a client sends first (RFC 9113 §3.4). */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** Frame types (RFC 9113 §6). */
const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
const F = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

/** ATTACK_WAIT_MS: how long an attack's connection is watched for the server's answer (GOAWAY, close) before it is cut. */
export const ATTACK_WAIT_MS = 150;
/** FLOOD_FRAMES_MAX bounds every flood (CONTINUATION, RST_STREAM, PING): enough to cross Node's per-session limits, small enough to send in milliseconds. */
export const FLOOD_FRAMES_MAX = 2_000;
/** VALID_CALL_DEADLINE_MS: the valid write after a batch; a node that does not answer within it hangs. */
export const VALID_CALL_DEADLINE_MS = 5_000;

/** frame builds one frame; length, when given, is the declared length whatever the payload is (lying frames). */
export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0), length = payload.length): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(length & 0xffffff, 0, 3);
  h[3] = type & 0xff;
  h[4] = flags & 0xff;
  h.writeUInt32BE(stream >>> 0, 5);
  return Buffer.concat([h, payload]);
}

/** hpackInt encodes an HPACK integer with an n-bit prefix (RFC 7541 §5.1) into the first byte's low bits. */
function hpackInt(first: number, n: number, v: number): Buffer {
  const max = (1 << n) - 1;
  if (v < max) return Buffer.from([first | v]);
  const out = [first | max];
  v -= max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** literal is a header as a literal without indexing, with a literal name (RFC 7541 §6.2.2): no dynamic table involved. */
function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name, "latin1");
  const v = Buffer.from(value, "latin1");
  return Buffer.concat([Buffer.from([0]), hpackInt(0, 7, n.length), n, hpackInt(0, 7, v.length), v]);
}

/** grpcHeaders is a valid request header block for method path (a gRPC call the server would serve). */
export function grpcHeaders(path: string): Buffer {
  return Buffer.concat([literal(":method", "POST"), literal(":scheme", "http"), literal(":path", path), literal(":authority", "fuzz"), literal("content-type", "application/grpc"), literal("te", "trailers")]);
}

/** settings builds a SETTINGS payload of [id, value] pairs. */
function settings(pairs: readonly (readonly [number, number])[]): Buffer {
  const b = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, v], i) => {
    b.writeUInt16BE(id & 0xffff, i * 6);
    b.writeUInt32BE(v >>> 0, i * 6 + 2);
  });
  return b;
}

const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};

/** Rng is a small seeded generator (mulberry32): every attack replays from its seed. */
export class Rng {
  constructor(private s: number) {}
  next(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }
}

/** AttackKind names what an attack does wrong. */
export type AttackKind =
  | "bad-length"
  | "unknown-type"
  | "bad-flags"
  | "bad-hpack"
  | "continuation-flood"
  | "window-update"
  | "bad-settings"
  | "rst-storm"
  | "data-bad-stream"
  | "huge-frame"
  | "bad-priority"
  | "ping-flood"
  | "bad-goaway"
  | "garbage";

export const ATTACK_KINDS: readonly AttackKind[] = [
  "bad-length",
  "unknown-type",
  "bad-flags",
  "bad-hpack",
  "continuation-flood",
  "window-update",
  "bad-settings",
  "rst-storm",
  "data-bad-stream",
  "huge-frame",
  "bad-priority",
  "ping-flood",
  "bad-goaway",
  "garbage",
];

/** The method the attacks' well-formed HEADERS name: a read, so no attack can write. */
const READ_PATH = "/raftmesh.v1.KV/Get";

/** drawAttack is the frames (after the preface and an empty SETTINGS) of one attack of kind, drawn from rng. */
export function drawAttack(kind: AttackKind, rng: Rng): Buffer[] {
  const odd = () => rng.int(0, 1000) * 2 + 1;
  switch (kind) {
    case "bad-length": {
      // A frame whose declared length differs from its payload: shorter (the next header starts inside it), or longer (the server waits, then the socket ends).
      const payload = rng.bytes(rng.int(0, 64));
      const t = rng.pick([T.DATA, T.HEADERS, T.SETTINGS, T.PING, T.WINDOW_UPDATE, T.RST_STREAM, T.PRIORITY]);
      return [frame(t, rng.int(0, 255), rng.pick([0, 1, odd()]), payload, rng.pick([0, 1, 5, 7, 9, payload.length + rng.int(1, 100), rng.int(0, 0xffff)]))];
    }
    case "unknown-type":
      // RFC 9113 §5.5: unknown types are ignored; the connection must go on serving.
      return Array.from({ length: rng.int(1, 20) }, () => frame(rng.int(10, 255), rng.int(0, 255), rng.pick([0, odd()]), rng.bytes(rng.int(0, 100))));
    case "bad-flags":
      return [
        rng.pick([
          frame(T.SETTINGS, F.ACK, 0, rng.bytes(6)), // an ACK with a payload: FRAME_SIZE_ERROR
          frame(T.PING, rng.int(0, 255), 0, rng.bytes(8)),
          frame(T.DATA, F.PADDED, 1, Buffer.concat([Buffer.from([200]), rng.bytes(10)])), // pad length past the payload
          frame(T.HEADERS, F.PADDED | F.END_HEADERS, 1, Buffer.concat([Buffer.from([255]), grpcHeaders(READ_PATH)])),
          frame(T.HEADERS, F.PRIORITY | F.END_HEADERS, 1, Buffer.alloc(3)), // PRIORITY flag with no room for its fields
        ]),
      ];
    case "bad-hpack": {
      const block = rng.pick([
        rng.bytes(rng.int(1, 200)),
        Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]), // an index far past both tables
        Buffer.from([0x3f, 0xff, 0xff, 0xff, 0xff, 0x0f]), // a dynamic table size update far past SETTINGS_HEADER_TABLE_SIZE
        Buffer.concat([Buffer.from([0x00, 0x7f, 0xff, 0xff, 0x03]), rng.bytes(20)]), // a name length past the block
        Buffer.concat([grpcHeaders(READ_PATH), Buffer.from([0x80])]), // index 0 is invalid
        Buffer.concat([literal(":path", READ_PATH), literal(":path", "/x"), literal(":method", "POST")]), // a pseudo-header twice, missing :scheme
        Buffer.concat([grpcHeaders(READ_PATH), literal("Bad-Upper", "x"), literal("connection", "close")]), // upper case name, a connection header
      ]);
      return [frame(T.HEADERS, F.END_HEADERS | (rng.next() < 0.5 ? F.END_STREAM : 0), odd(), block)];
    }
    case "continuation-flood": {
      // HEADERS without END_HEADERS, then CONTINUATION frames that never end the block (CVE-2024-27983's shape), bounded.
      const n = rng.int(100, FLOOD_FRAMES_MAX);
      const out = [frame(T.HEADERS, 0, 1, grpcHeaders(READ_PATH).subarray(0, 8))];
      for (let i = 0; i < n; i++) out.push(frame(T.CONTINUATION, 0, 1, literal(`x-f${i}`, "y".repeat(rng.int(0, 30)))));
      return out;
    }
    case "window-update": {
      const stream = rng.pick([0, 1]);
      const opening = stream === 1 ? [frame(T.HEADERS, F.END_HEADERS, 1, grpcHeaders(READ_PATH))] : [];
      const inc = rng.pick([0, 0x7fffffff, 0x80000000, 0xffffffff]);
      // Twice the largest increment overflows the 2^31-1 window (FLOW_CONTROL_ERROR).
      return [...opening, frame(T.WINDOW_UPDATE, 0, stream, u32(inc)), frame(T.WINDOW_UPDATE, 0, stream, u32(0x7fffffff)), frame(T.WINDOW_UPDATE, 0, stream, u32(0x7fffffff))];
    }
    case "bad-settings": {
      const pairs = rng.pick<readonly (readonly [number, number])[]>([
        [[0x2, 2]], // ENABLE_PUSH must be 0 or 1
        [[0x4, 0x80000000]], // INITIAL_WINDOW_SIZE past 2^31-1
        [[0x5, 100]], // MAX_FRAME_SIZE below 16,384
        [[0x5, 0x1000000]], // MAX_FRAME_SIZE past 2^24-1
        [[0x1, 0xffffffff], [0x3, 0], [0x6, 0xffffffff]], // legal but extreme: no streams, huge tables
        [[rng.int(7, 0xffff), rng.int(0, 0xffffffff)]], // unknown id: ignored
      ]);
      const payload = settings(pairs);
      // A length that is not a multiple of 6, or SETTINGS on a stream: errors too.
      return [rng.next() < 0.25 ? frame(T.SETTINGS, 0, 0, payload.subarray(0, payload.length - 1)) : frame(T.SETTINGS, 0, rng.next() < 0.15 ? 1 : 0, payload)];
    }
    case "rst-storm": {
      // Open a stream and reset it at once, many times (CVE-2023-44487, "rapid reset"), bounded.
      const n = rng.int(50, FLOOD_FRAMES_MAX / 2);
      const out: Buffer[] = [];
      const block = grpcHeaders(READ_PATH);
      for (let i = 0; i < n; i++) {
        const s = 2 * i + 1;
        out.push(frame(T.HEADERS, F.END_HEADERS, s, block), frame(T.RST_STREAM, 0, s, u32(rng.pick([0x8, 0x0, 0xff]))));
      }
      return out;
    }
    case "data-bad-stream":
      return [
        rng.pick([
          frame(T.DATA, 0, 0, rng.bytes(10)), // DATA on stream 0
          frame(T.DATA, F.END_STREAM, 7, rng.bytes(10)), // on an idle stream
          Buffer.concat([frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, grpcHeaders(READ_PATH)), frame(T.DATA, 0, 1, rng.bytes(10)), frame(T.DATA, 0, 1, rng.bytes(10))]), // after END_STREAM
          Buffer.concat([frame(T.HEADERS, F.END_HEADERS, 1, grpcHeaders(READ_PATH)), frame(T.RST_STREAM, 0, 1, u32(8)), frame(T.DATA, 0, 1, rng.bytes(10))]), // after a reset
          frame(T.DATA, 0, 2, rng.bytes(10)), // on an even (server-initiated) stream
        ]),
      ];
    case "huge-frame":
      // A header that declares 16 MiB - 1, then a little of it and silence: above the 16 KiB MAX_FRAME_SIZE, a FRAME_SIZE_ERROR.
      return [frame(rng.pick([T.DATA, T.HEADERS, 0x20]), 0, 1, rng.bytes(rng.int(0, 1024)), 0xffffff)];
    case "bad-priority":
      return [rng.pick([frame(T.PRIORITY, 0, 3, Buffer.concat([u32(3), Buffer.from([16])])), frame(T.PRIORITY, 0, 0, Buffer.alloc(5)), frame(T.PRIORITY, 0, 3, Buffer.alloc(4))])];
    case "ping-flood":
      return Array.from({ length: rng.int(100, FLOOD_FRAMES_MAX) }, () => frame(T.PING, 0, 0, rng.bytes(8)));
    case "bad-goaway":
      return [rng.pick([frame(T.GOAWAY, 0, 1, rng.bytes(8)), frame(T.GOAWAY, 0, 0, rng.bytes(3)), frame(T.GOAWAY, 0, 0, Buffer.concat([u32(0x7fffffff), u32(0xffffffff), rng.bytes(rng.int(0, 2000))]))]), frame(T.HEADERS, F.END_HEADERS, 1, grpcHeaders(READ_PATH))];
    case "garbage":
      return [rng.bytes(rng.int(1, 4096))];
  }
}

/** Outcome is how the server dealt with an attack's connection: a GOAWAY (with its code), a close, or still open when the watch ended. */
export type Outcome = string;

/** runAttack opens a connection to addr, sends the preface, an empty SETTINGS and the attack's frames, and reports what the server did within ATTACK_WAIT_MS. */
export function runAttack(addr: string, frames: readonly Buffer[]): Promise<Outcome> {
  const cut = addr.lastIndexOf(":");
  return new Promise((resolve) => {
    let done = false;
    let seen = Buffer.alloc(0);
    let goaway: number | undefined;
    const socket: Socket = connect({ host: addr.slice(0, cut), port: Number(addr.slice(cut + 1)) });
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish(goaway !== undefined ? `goaway ${goaway}` : "open"), ATTACK_WAIT_MS);
    socket.on("error", () => finish(goaway !== undefined ? `goaway ${goaway}` : "reset"));
    socket.on("close", () => finish(goaway !== undefined ? `goaway ${goaway}` : "closed"));
    socket.on("data", (c: Buffer) => {
      // Read the server's frames until its GOAWAY (bounded: only the first 64 KiB are looked at).
      if (goaway !== undefined || seen.length > 65_536) return;
      seen = Buffer.concat([seen, c]);
      for (let at = 0; at + 9 <= seen.length; ) {
        const len = seen.readUIntBE(at, 3);
        if (seen[at + 3] === T.GOAWAY && at + 9 + 8 <= seen.length) {
          goaway = seen.readUInt32BE(at + 9 + 4);
          break;
        }
        at += 9 + len;
      }
    });
    socket.once("connect", () => {
      socket.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0), ...frames]));
    });
  });
}

/** H2FuzzReport is what an h2 run found. */
export interface H2FuzzReport {
  readonly attacks: number;
  readonly seed: number;
  /** outcomes: attack kind → outcome → count. */
  readonly outcomes: Record<string, Record<string, number>>;
  readonly validCalls: number;
  readonly problems: string[];
  readonly ms: number;
}

/**
 * runH2Fuzz sends `attacks` attacks drawn from seed, in batches of one of each kind at once to one
 * node (the nodes in turn). After each batch that node must answer a valid KV.Put and a KV.Get of
 * what was put; no node may exit; at the end KV under the run's prefix holds exactly the valid puts.
 */
export async function runH2Fuzz(cluster: Pick<ProcessCluster, "api" | "isRunning">, ids: readonly string[], attacks: number, seed: number, log: (s: string) => void = () => undefined): Promise<H2FuzzReport> {
  const t0 = performance.now();
  const outcomes: Record<string, Record<string, number>> = {};
  const problems: string[] = [];
  const clients = ids.map((id) => new RawClient(cluster.api(id)));
  const prefix = `fz-h2/${seed}/`;
  const written = new Map<string, string>();
  let validCalls = 0;
  let sent = 0;
  try {
    for (let batch = 0; sent < attacks; batch++) {
      const node = batch % ids.length;
      const addr = cluster.api(ids[node]!);
      const kinds = ATTACK_KINDS.slice(0, Math.min(ATTACK_KINDS.length, attacks - sent));
      const drawn = kinds.map((k, i) => ({ k, frames: drawAttack(k, new Rng(seed * 1_000_003 + (sent + i))) }));
      const results = await Promise.all(drawn.map((d) => runAttack(addr, d.frames)));
      drawn.forEach((d, i) => {
        outcomes[d.k] ??= {};
        const o = results[i]!;
        outcomes[d.k]![o] = (outcomes[d.k]![o] ?? 0) + 1;
      });
      sent += kinds.length;
      // The node still serves: a write, and a read of it.
      const key = `${prefix}${batch}`;
      const value = Buffer.from(`v${batch}`);
      const put = await clients[node]!.unary("KV", "Put", encode("KV", "Put", { key, value }), VALID_CALL_DEADLINE_MS);
      validCalls++;
      if (put.code !== Status.OK) {
        if (problems.length < 50) problems.push(`batch ${batch} (attacks ${sent - kinds.length}..${sent - 1}, seed ${seed}) on ${ids[node]}: a valid KV.Put answered ${statusName(put.code)} ${put.details.slice(0, 120)}`);
      } else {
        written.set(key, value.toString("base64"));
        const got = await clients[node]!.unary("KV", "Get", encode("KV", "Get", { key }), VALID_CALL_DEADLINE_MS);
        validCalls++;
        const v = got.code === Status.OK && got.response ? decode<{ kv?: { value: Buffer } }>("KV", "Get", got.response).kv?.value.toString() : undefined;
        if (v !== `v${batch}` && problems.length < 50) problems.push(`batch ${batch} on ${ids[node]}: KV.Get of the value just put answered ${statusName(got.code)} ${v ?? ""}`);
      }
      for (const id of ids) if (!cluster.isRunning(id) && problems.length < 50) problems.push(`node ${id} exited after batch ${batch} (attacks ${sent - kinds.length}..${sent - 1}, seed ${seed})`);
      if (problems.length > 0 && problems.some((p) => p.includes("exited"))) break;
      if (batch % 50 === 49) log(`  ${sent} / ${attacks} attacks, ${Math.round(performance.now() - t0)} ms`);
    }
    // The state: under the run's prefix, exactly the valid puts (no attack wrote anything).
    const list = await clients[0]!.unary("KV", "List", encode("KV", "List", { prefix, limit: 10_000 }), VALID_CALL_DEADLINE_MS);
    if (list.code !== Status.OK) problems.push(`KV.List for the state check: ${statusName(list.code)} ${list.details}`);
    else {
      const got = decode<{ kvs: { key: string; value: Buffer }[] }>("KV", "List", list.response!).kvs.map((e) => `${e.key}=${e.value.toString("base64")}`);
      // In key order, as KV.List answers (sorting the joined strings would put "1=" after "10=").
      const want = [...written].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${v}`);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        const first = got.findIndex((g, i) => g !== want[i]);
        problems.push(`state differs under ${prefix}: cluster ${got.length} keys, the valid puts ${want.length}; first difference at ${first}: cluster ${got[first]}, puts ${want[first]}`);
      }
    }
  } finally {
    for (const c of clients) c.close();
  }
  return { attacks: sent, seed, outcomes, validCalls, problems, ms: Math.round(performance.now() - t0) };
}

/** formatH2Report prints the outcomes per attack kind. */
export function formatH2Report(r: H2FuzzReport): string {
  const lines = [`h2 frame fuzz: ${r.attacks} attacks, seed ${r.seed}, ${r.ms} ms; valid calls after the batches: ${r.validCalls}`];
  for (const k of Object.keys(r.outcomes).sort()) {
    const o = Object.entries(r.outcomes[k]!).sort((a, b) => b[1] - a[1]).map(([x, n]) => `${x} ${n}`).join(", ");
    lines.push(`  ${k.padEnd(20)} → ${o}`);
  }
  lines.push(r.problems.length === 0 ? "  crashes 0, hangs 0, state check passed" : `  PROBLEMS (${r.problems.length}):\n    ${r.problems.join("\n    ")}`);
  return lines.join("\n");
}
