import { createServer } from "node:net";
import { Client, type ClientWritableStream, credentials, type Metadata, type ServiceError } from "@grpc/grpc-js";
import { EntryKind, type Message, type MessageType, type NodeId, nodeId, type Snapshot } from "../../../src/raft/types.js";
import { peerMethods } from "../../../src/transport/proto.js";
import type { WireEnvelope } from "../../../src/transport/wire.js";
import { GrpcTransport, type TransportLimits, type TransportLogger } from "../../../src/transport/index.js";

/** CLUSTER is the cluster id the transport tests run in. */
export const CLUSTER = "test-cluster";

/** LogLine is one line a CapturingLogger recorded. */
export interface LogLine {
  readonly level: "debug" | "info" | "warn" | "error";
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/** capturingLogger records every line, with the bindings of its children merged in, for assertions. */
export function capturingLogger(lines: LogLine[] = [], bindings: Record<string, unknown> = {}): TransportLogger & { lines: LogLine[] } {
  const record = (level: LogLine["level"]) => (fields: object, message: string) => {
    lines.push({ level, fields: { ...bindings, ...fields }, message });
  };
  return {
    lines,
    debug: record("debug"),
    info: record("info"),
    warn: record("warn"),
    error: record("error"),
    child: (more) => capturingLogger(lines, { ...bindings, ...more }),
  };
}

/** message builds a core message with every unused field at its zero value. */
export function message(type: MessageType, from: string, to: string, fields: Partial<Message> = {}): Message {
  return {
    type,
    from: nodeId(from),
    to: nodeId(to),
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...fields,
  };
}

/** entry makes a Normal entry whose data names it. */
export function entry(index: number, term: number, bytes?: number) {
  const data = bytes === undefined ? new TextEncoder().encode(`entry ${index}`) : new Uint8Array(bytes).fill(index & 0xff);
  return { index, term, kind: EntryKind.Normal, data };
}

/** snapshot makes a snapshot with `bytes` bytes of deterministic pseudo-random data. */
export function snapshot(bytes: number, index = 100, term = 3): Snapshot {
  const data = new Uint8Array(bytes);
  let x = 0x9e3779b9;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  return { meta: { index, term, conf: { voters: [nodeId("n1"), nodeId("n2")], learners: [nodeId("n3")] } }, data };
}

/** TestNode is a transport listening on 127.0.0.1 with everything it received and logged. */
export interface TestNode {
  readonly id: NodeId;
  readonly transport: GrpcTransport;
  readonly port: number;
  readonly address: string;
  readonly received: Message[];
  readonly logger: ReturnType<typeof capturingLogger>;
}

/** startNode starts a transport on an ephemeral (or the given) port with no peers yet. */
export async function startNode(
  id: string,
  options: { clusterId?: string; port?: number; limits?: Partial<TransportLimits>; snapshotReadMax?: number } = {},
): Promise<TestNode> {
  const logger = capturingLogger();
  const transport = new GrpcTransport({
    clusterId: options.clusterId ?? CLUSTER,
    selfId: nodeId(id),
    peers: new Map(),
    logger,
    limits: { reconnectBackoffMsMin: 10, reconnectBackoffMsMax: 100, ...options.limits },
    snapshotReadMax: options.snapshotReadMax,
  });
  const port = await transport.listen(`127.0.0.1:${options.port ?? 0}`);
  const received: Message[] = [];
  transport.onMessage((m) => {
    received.push(m);
    return undefined;
  });
  return { id: nodeId(id), transport, port, address: `127.0.0.1:${port}`, received, logger };
}

/** connect gives every node the addresses of all the others. */
export function connect(nodes: readonly TestNode[]): void {
  const peers = new Map(nodes.map((n) => [n.id, n.address]));
  for (const n of nodes) n.transport.setPeers(peers);
}

/** waitFor polls until check() is true, and fails after timeoutMs. */
export async function waitFor(check: () => boolean, timeoutMs = 3000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** freePort finds a port nobody listens on, for a peer that is down. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** rawClient is a bare gRPC client to a node, so a test can send what GrpcTransport never would; it is added to `clients` for the test to close. */
export function rawClient(node: TestNode, clients: Client[]): Client {
  const client = new Client(node.address, credentials.createInsecure());
  clients.push(client);
  return client;
}

/** openStream opens Stream with the given metadata and leaves it open to the caller; `ended` is the call's error, or null. */
export function openStream(client: Client, metadata: Metadata, deadlineMs = 5000): { call: ClientWritableStream<WireEnvelope>; ended: Promise<ServiceError | null> } {
  const { stream } = peerMethods();
  let call!: ClientWritableStream<WireEnvelope>;
  const ended = new Promise<ServiceError | null>((resolve) => {
    call = client.makeClientStreamRequest(stream.path, stream.requestSerialize, stream.responseDeserialize, metadata, { deadline: Date.now() + deadlineMs }, (error) => resolve(error));
  });
  return { call, ended };
}

/** rawStream opens Stream with the given metadata, writes envelopes, and resolves with the call's error, or null. */
export function rawStream(client: Client, metadata: Metadata, envelopes: WireEnvelope[]): Promise<ServiceError | null> {
  const { call, ended } = openStream(client, metadata, 3000);
  for (const e of envelopes) call.write(e);
  call.end();
  return ended;
}
