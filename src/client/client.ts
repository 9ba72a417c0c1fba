import { Channel, type ChannelCredentials, type Client, type ClientUnaryCall, credentials, type Interceptor, InterceptingCall, type Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { channelCredentials, type ClientTlsOptions, TlsFiles } from "../common/tls.js";
import { API_MESSAGE_BYTES_MAX, API_RESPONSE_BYTES_MAX, SESSION_WINDOW } from "../common/limits.js";
import type {
  AclRuleMsg,
  AclTokenSecretMsg,
  ListTokensResponseMsg,
  CompareMsg,
  DeleteResponseMsg,
  FailoverResponseMsg,
  HeartbeatResponseMsg,
  InstanceMsg,
  ListResponseMsg,
  ServiceConfigMsg,
  ServiceMsg,
  TxnOpMsg,
  TxnResponseMsg,
  WatchResponseMsg,
  GetResponseMsg,
  MemberChangeResponseMsg,
  MembersResponseMsg,
  NodeStatusMsg,
  PutResponseMsg,
  TransferLeaderResponseMsg,
} from "../common/messages.js";
import { clientApi } from "../common/proto.js";
import { randomBytes } from "node:crypto";
import { METADATA_LEADER_API } from "../common/metadata.js";
import { RaftmeshError } from "./errors.js";

/** CALL_DEADLINE_MS_DEFAULT is every call's deadline unless the caller gives one. */
export const CALL_DEADLINE_MS_DEFAULT = 5_000;

type ServiceName = "KV" | "Cluster" | "Registry" | "Events" | "Acl";

/** MeshEventMsg is one event of raftmesh.v1.Events/Watch. */
export interface MeshEventMsg {
  seq: number;
  kind: string;
  index: number;
  local: boolean;
  node: string;
  atMs: number;
  service: string;
  instance: string;
  member: string;
  message: string;
  details: Record<string, string>;
}

/** CallOptions apply to one call. */
export interface CallOptions {
  readonly deadlineMs?: number;
  /** endpoint pins the call to one node; otherwise the client picks (and, where safe, moves on). */
  readonly endpoint?: string;
}


/**
 * InstanceInput is an instance as an application registers it: the registry's instance spec
 * (src/registry/types.ts InstanceSpec, which the server validates), with defaults for what is
 * left out. The node's local agent registers its service definitions with it too.
 */
export interface InstanceInput {
  readonly id: string;
  readonly service: string;
  readonly address: string;
  readonly port: number;
  readonly tags?: readonly string[];
  readonly metadata?: Readonly<Record<string, string>>;
  readonly weight?: number;
  readonly priority?: number;
  readonly zone?: string;
  /** ttlMs is the heartbeat lease (0 or absent: the registry's default). */
  readonly ttlMs?: number;
  /** deregisterCriticalAfterMs removes the instance once critical for this long (0 or absent: never). */
  readonly deregisterCriticalAfterMs?: number;
}

/** RegisterOptions: a call's options plus the health (and its note) an instance registers with. */
export interface RegisterOptions extends CallOptions {
  readonly health?: "passing" | "warning" | "critical";
  readonly note?: string;
}

/**
 * WRITE_PASSES_MAX bounds how many times a sessioned write goes round the endpoints while each
 * says it could not serve it now (unavailable, timed out, or overwritten by a new leader's entry);
 * the call's deadline ends the passes first at any deadline up to about 7 s. One pass is not
 * enough through an election: every node answers "no leader" until one wins (a few hundred ms
 * after a silent failure), and a client given one endpoint has only one try a pass. As etcd's
 * client does, the write rides out any election that ends within its deadline.
 */
export const WRITE_PASSES_MAX = 32;

/** WRITE_PASS_BACKOFF_MS / _MAX: the pause before the second pass, doubled before each next one up to the max. */
export const WRITE_PASS_BACKOFF_MS = 25;
export const WRITE_PASS_BACKOFF_MS_MAX = 250;

/**
 * KEEPALIVE_MS_DEFAULT: while calls are open on a connection, the client pings it this often and
 * closes it when a ping goes unanswered for as long again, failing its calls UNAVAILABLE so they
 * move on (sessioned writes with their seq). A node that went silent — stopped, paused, cut off —
 * keeps its TCP connection open, and a call to it would otherwise wait for its whole deadline:
 * writes the SDK sends straight to the leader it learned are found stuck in 2-4 s. Half a ping a
 * second per busy connection; 0 turns it off.
 */
export const KEEPALIVE_MS_DEFAULT = 2_000;

/** KEEPALIVE_MS_MIN: pings more often than this would cost the nodes more than a dead connection costs the client. */
export const KEEPALIVE_MS_MIN = 500;

/** LEADER_RELEARN_MS: after a write to the leader's address failed, answers naming it are not followed for this long. */
export const LEADER_RELEARN_MS = 30_000;

/**
 * RaftmeshClient talks to a cluster through a list of client API endpoints. Reads and status
 * calls move to the next endpoint when one fails; a write moves on only when the server said it
 * did not take effect. Any node forwards a write to the leader, and its answer names the leader's
 * client API address: when that address is one of the endpoints, the client sends its next
 * sessioned writes there first (a forward is a second gRPC call on the follower; measured, writes
 * through a follower ran at ~60 % of writes to the leader). A leader that has lost its role
 * forwards as any node does; one that cannot be reached is skipped (the write keeps its seq).
 */
export class RaftmeshClient {
  private readonly stubs = new Map<string, Client>();
  private preferred = 0;
  /** leaderEndpoint is the endpoint a forwarded answer last named as the leader's (sessioned writes go there first). */
  private leaderEndpoint: string | undefined;
  /** leaderFailedAt: when a write to an endpoint taken for the leader's last failed (noteLeader waits LEADER_RELEARN_MS). */
  private readonly leaderFailedAt = new Map<string, number>();
  /** clientId and seq identify this client's sessioned writes (at-most-once application). */
  readonly clientId = randomBytes(12).toString("hex");
  private seq = 0;
  /**
   * outstanding are the seqs of sessioned writes not yet answered. Seqs are added in ascending
   * order and a Set iterates in insertion order, so the first one is the oldest.
   */
  private readonly outstanding = new Set<number>();
  private readonly waiters: (() => void)[] = [];
  private readonly channel: ChannelCredentials;
  /** channels are this client's channels by endpoint (channelTo). */
  private readonly channels = new Map<string, Channel>();
  private readonly tlsFiles: TlsFiles | undefined;

  /**
   * defaults.tls dials with TLS: the CA to trust and, for a cluster that asks clients for a
   * certificate, this client's certificate and key (PEM paths, reloaded when they change; a
   * TlsError names the bad one). serverName replaces the endpoints' host names in the check of
   * the server's certificate. token is the secret of an access token, sent with every call as
   * "authorization: Bearer <token>" (clusters with access control on). connection "shared" (without
   * TLS) rides one connection per node with every other "shared" client of this process that has the same
   * options (many sessions, one socket each way: a node keeps ~20 KB of native memory per client
   * connection); the default, "own", opens this client's own, so it has a node's whole bound of
   * API_STREAMS_PER_CONNECTION_MAX calls at once (watches included) to itself. leaderRelearnMs
   * replaces LEADER_RELEARN_MS, keepaliveMs KEEPALIVE_MS_DEFAULT, writeRounds WRITE_PASSES_MAX (1: a
   * sessioned write tries each endpoint once, and the caller decides any retry).
   */
  constructor(
    readonly endpoints: readonly string[],
    private readonly defaults: {
      deadlineMs?: number;
      tls?: ClientTlsOptions;
      serverName?: string;
      token?: string;
      connection?: "own" | "shared";
      leaderRelearnMs?: number;
      keepaliveMs?: number;
      writeRounds?: number;
    } = {},
  ) {
    if (endpoints.length === 0) throw new Error("at least one endpoint is needed");
    const rounds = defaults.writeRounds;
    if (rounds !== undefined && !(Number.isInteger(rounds) && rounds >= 1 && rounds <= WRITE_PASSES_MAX)) {
      throw new Error(`writeRounds must be a whole number from 1 to ${WRITE_PASSES_MAX}, got ${JSON.stringify(rounds)}`);
    }
    const keepalive = defaults.keepaliveMs;
    if (keepalive !== undefined && !(Number.isInteger(keepalive) && (keepalive === 0 || keepalive >= KEEPALIVE_MS_MIN))) {
      throw new Error(`keepaliveMs must be 0 (off) or a whole number of milliseconds >= ${KEEPALIVE_MS_MIN}, got ${JSON.stringify(keepalive)}`);
    }
    const relearn = defaults.leaderRelearnMs;
    if (relearn !== undefined && !(Number.isInteger(relearn) && relearn >= 0)) {
      throw new Error(`leaderRelearnMs must be a whole number of milliseconds >= 0, got ${JSON.stringify(relearn)}`);
    }
    if (defaults.connection !== undefined && defaults.connection !== "own" && defaults.connection !== "shared") {
      throw new Error(`connection must be "own" or "shared", got ${JSON.stringify(defaults.connection)}`);
    }
    // grpc-js shares a connection only between equal credentials, and each client's TLS credentials
    // reload its own certificate files: a "shared" TLS client would silently get its own.
    if (defaults.connection === "shared" && defaults.tls) throw new Error('connection "shared" works without TLS only: each TLS client has its own connection');
    this.tlsFiles = defaults.tls ? new TlsFiles(defaults.tls) : undefined;
    this.channel = this.tlsFiles ? channelCredentials(this.tlsFiles) : credentials.createInsecure();
  }

  status(opts: CallOptions = {}): Promise<NodeStatusMsg> {
    return this.idempotent("Cluster", "Status", {}, opts);
  }

  members(opts: CallOptions = {}): Promise<MembersResponseMsg> {
    return this.idempotent("Cluster", "Members", {}, opts);
  }

  /** addMember adds a member; force skips the server's check that a live quorum remains (disaster recovery). */
  addMember(req: { id: string; peer: string; api?: string; learner: boolean; force?: boolean }, opts: CallOptions = {}): Promise<MemberChangeResponseMsg> {
    return this.write("Cluster", "AddMember", { ...req, api: req.api ?? "", force: req.force === true }, opts);
  }

  promoteMember(id: string, opts: CallOptions & { force?: boolean } = {}): Promise<MemberChangeResponseMsg> {
    return this.write("Cluster", "PromoteMember", { id, force: opts.force === true }, opts);
  }

  removeMember(id: string, opts: CallOptions & { force?: boolean } = {}): Promise<MemberChangeResponseMsg> {
    return this.write("Cluster", "RemoveMember", { id, force: opts.force === true }, opts);
  }

  transferLeader(id: string, opts: CallOptions = {}): Promise<TransferLeaderResponseMsg> {
    return this.write("Cluster", "TransferLeader", { id }, opts);
  }

  /** aclBootstrap creates the first admin token of a cluster with access control on; it works once (FAILED_PRECONDITION after). The secret is in the answer only. */
  aclBootstrap(opts: CallOptions = {}): Promise<AclTokenSecretMsg> {
    return this.write("Acl", "Bootstrap", {}, opts);
  }

  /** aclCreateToken creates a token with the rules ("" scopes: none) and returns its secret, shown only here. */
  aclCreateToken(name: string, rules: readonly AclRuleMsg[], opts: CallOptions = {}): Promise<AclTokenSecretMsg> {
    return this.write("Acl", "CreateToken", { name, rules }, opts);
  }

  /** aclListTokens lists every token (accessors, names, rules; never secrets). */
  aclListTokens(opts: CallOptions = {}): Promise<ListTokensResponseMsg> {
    return this.idempotent("Acl", "ListTokens", {}, opts);
  }

  /** aclDeleteToken deletes a token by its accessor. */
  aclDeleteToken(accessor: string, opts: CallOptions = {}): Promise<{ index: number }> {
    return this.write("Acl", "DeleteToken", { accessor }, opts);
  }

  get(key: string, opts: CallOptions & { stale?: boolean } = {}): Promise<GetResponseMsg> {
    const consistency = opts.stale ? "CONSISTENCY_STALE" : "CONSISTENCY_LINEARIZABLE";
    return this.idempotent("KV", "Get", { key, consistency }, opts);
  }

  put(key: string, value: Uint8Array | string, opts: CallOptions = {}): Promise<PutResponseMsg> {
    return this.sessioned("KV", "Put", { key, value: Buffer.from(value) }, opts);
  }

  delete(key: string, opts: CallOptions & { prefix?: boolean } = {}): Promise<DeleteResponseMsg> {
    return this.sessioned("KV", "Delete", { key, prefix: opts.prefix === true }, opts);
  }

  /** list returns keys with a prefix, in key order (one page; pass the last key as startAfter for the next). */
  list(prefix: string, opts: CallOptions & { startAfter?: string; limit?: number; stale?: boolean } = {}): Promise<ListResponseMsg> {
    const consistency = opts.stale ? "CONSISTENCY_STALE" : "CONSISTENCY_LINEARIZABLE";
    return this.idempotent("KV", "List", { prefix, startAfter: opts.startAfter ?? "", limit: opts.limit ?? 0, consistency }, opts);
  }

  /** txn runs success ops if every compare holds, else failure ops; it is sessioned, so a retry applies at most once. */
  txn(
    req: { compares: Partial<CompareMsg>[]; success: Partial<TxnOpMsg>[]; failure?: Partial<TxnOpMsg>[] },
    opts: CallOptions = {},
  ): Promise<TxnResponseMsg> {
    return this.sessioned("KV", "Txn", { compares: req.compares, success: req.success, failure: req.failure ?? [] }, opts);
  }

  /**
   * cas sets key to value only if its modify index is still expectedModIndex (0: only if the key
   * does not exist). succeeded says whether it did.
   */
  cas(key: string, value: Uint8Array | string, expectedModIndex: number, opts: CallOptions = {}): Promise<TxnResponseMsg> {
    return this.txn({ compares: [{ key, target: "mod", op: "==", number: expectedModIndex }], success: [{ op: "put", key, value: Buffer.from(value) }] }, opts);
  }

  /**
   * register creates or replaces an instance; sessioned, so a retry applies at most once.
   * opts.health (and opts.note) is the health it starts with (default passing): an instance that
   * knows it is not ready registers critical, and no read sees it passing before it says so.
   */
  register(instance: InstanceInput, opts: RegisterOptions = {}) {
    const { health = "", note = "", ...call } = opts;
    return this.sessioned<{ index: number; duplicate: boolean }>("Registry", "Register", { instance, health, note }, call);
  }

  deregister(service: string, id: string, opts: CallOptions = {}) {
    return this.sessioned<{ index: number; duplicate: boolean }>("Registry", "Deregister", { service, id }, opts);
  }

  /**
   * setMaintenance drains an instance (on: balancers send it no new requests, in-flight ones
   * finish, failover skips it) or returns it to rotation, without stopping it; sessioned.
   */
  setMaintenance(service: string, id: string, on: boolean, reason = "", opts: CallOptions = {}) {
    return this.sessioned<{ index: number; duplicate: boolean }>("Registry", "SetMaintenance", { service, id, on, reason }, opts);
  }

  /**
   * heartbeat renews an instance's lease (idempotent: safe to retry); status and note are optional,
   * and so is opts.replicationPosition (an opaque position such as an LSN, for master-slave failover);
   * opts.masterEpoch says which epoch the instance acts as master of (see MasterSession).
   * opts.processToken names the process the heartbeat speaks for, and opts.exitedProcess (with
   * status critical) reports that the process with that token exited (src/common/process-token.ts).
   * The answer carries the instance's role and the service's epoch.
   */
  heartbeat(
    service: string,
    id: string,
    status = "",
    note = "",
    opts: CallOptions & { replicationPosition?: number; masterEpoch?: number; processToken?: string; exitedProcess?: string } = {},
  ): Promise<HeartbeatResponseMsg> {
    return this.idempotent(
      "Registry",
      "Heartbeat",
      { service, id, status, note, replicationPosition: opts.replicationPosition ?? 0, masterEpoch: opts.masterEpoch ?? 0, processToken: opts.processToken ?? "", exitedProcess: opts.exitedProcess ?? "" },
      opts,
    );
  }

  /**
   * failover switches a master-slave service's master over to `to` (or the best eligible standby)
   * in one entry; sessioned, so a retry applies at most once. An ineligible `to` fails with
   * FAILED_PRECONDITION naming the reason.
   */
  failover(service: string, opts: CallOptions & { to?: string } = {}): Promise<FailoverResponseMsg> {
    return this.sessioned<FailoverResponseMsg>("Registry", "Failover", { service, to: opts.to ?? "" }, opts);
  }

  putService(name: string, config: Partial<ServiceConfigMsg>, opts: CallOptions = {}) {
    return this.sessioned<{ index: number; duplicate: boolean }>("Registry", "PutService", { name, config }, opts);
  }

  deleteService(name: string, opts: CallOptions = {}) {
    return this.sessioned<{ index: number; deleted: number; duplicate: boolean }>("Registry", "DeleteService", { name }, opts);
  }

  getService(name: string, opts: CallOptions & { stale?: boolean; passingOnly?: boolean } = {}) {
    const consistency = opts.stale ? "CONSISTENCY_STALE" : "CONSISTENCY_LINEARIZABLE";
    return this.idempotent<{ service: ServiceMsg; instances: InstanceMsg[]; index: number }>(
      "Registry",
      "GetService",
      { name, consistency, passingOnly: opts.passingOnly === true },
      opts,
    );
  }

  listServices(opts: CallOptions & { stale?: boolean } = {}) {
    const consistency = opts.stale ? "CONSISTENCY_STALE" : "CONSISTENCY_LINEARIZABLE";
    return this.idempotent<{ services: ServiceMsg[]; index: number }>("Registry", "ListServices", { consistency }, opts);
  }

  /**
   * watch streams changes after fromIndex to onEvents; it ends with the stream (end or error).
   * The returned cancel() stops it. A client resumes by watching again from the last index it saw.
   */
  watch(
    req: { fromIndex: number; service?: string; keyPrefix?: string; kinds?: string[] },
    handlers: { onMessage: (msg: WatchResponseMsg) => void; onEnd: (err?: RaftmeshError) => void },
    opts: { endpoint?: string } = {},
  ): { cancel(): void } {
    const endpoint = opts.endpoint ?? (this.endpoints[this.preferred] as string);
    const stub = this.stub(endpoint, "Registry") as unknown as { Watch(req: object): import("@grpc/grpc-js").ClientReadableStream<WatchResponseMsg> };
    const call = stub.Watch({ fromIndex: req.fromIndex, service: req.service ?? "", keyPrefix: req.keyPrefix ?? "", kinds: req.kinds ?? [] });
    return follow(call, endpoint, handlers.onMessage, handlers.onEnd);
  }

  /**
   * events streams one node's events (raftmesh.v1.Events/Watch): those after fromSeq (0: all it
   * holds), then with follow new ones. It ends with the stream; cancel() stops it.
   */
  events(
    req: { fromSeq?: number; follow?: boolean; kinds?: string[] },
    handlers: { onEvent: (e: MeshEventMsg) => void; onEnd: (err?: RaftmeshError) => void },
    opts: { endpoint?: string } = {},
  ): { cancel(): void } {
    const endpoint = opts.endpoint ?? (this.endpoints[this.preferred] as string);
    const stub = this.stub(endpoint, "Events") as unknown as { Watch(req: object): import("@grpc/grpc-js").ClientReadableStream<MeshEventMsg> };
    const call = stub.Watch({ fromSeq: req.fromSeq ?? 0, follow: req.follow === true, kinds: req.kinds ?? [] });
    return follow(call, endpoint, handlers.onEvent, handlers.onEnd);
  }

  /** close drops every channel. */
  close(): void {
    for (const c of this.stubs.values()) c.close();
    this.stubs.clear();
    for (const ch of this.channels.values()) ch.close();
    this.channels.clear();
    this.tlsFiles?.close();
  }

  private order(opts: CallOptions): string[] {
    if (opts.endpoint) return [opts.endpoint];
    const n = this.endpoints.length;
    return Array.from({ length: n }, (_, i) => this.endpoints[(this.preferred + i) % n] as string);
  }

  /** writeOrder is order(), with the endpoint last named the leader's first. */
  private writeOrder(opts: CallOptions): string[] {
    const all = this.order(opts);
    const leader = this.leaderEndpoint;
    if (opts.endpoint || leader === undefined) return all;
    return [leader, ...all.filter((e) => e !== leader)];
  }

  /**
   * noteLeader records the leader's address a forwarded answer named, when it is one of the
   * endpoints and no write to it failed in the last LEADER_RELEARN_MS (a leader this client cannot
   * reach, though the cluster can, would otherwise cost every write a failed try first).
   */
  private noteLeader(md: Metadata): void {
    const api = md.get(METADATA_LEADER_API)[0];
    if (typeof api !== "string" || !this.endpoints.includes(api)) return;
    const failedAt = this.leaderFailedAt.get(api);
    if (failedAt !== undefined && Date.now() - failedAt < (this.defaults.leaderRelearnMs ?? LEADER_RELEARN_MS)) return;
    this.leaderEndpoint = api;
  }

  private async idempotent<Res>(service: ServiceName, method: string, req: object, opts: CallOptions): Promise<Res> {
    let last: RaftmeshError | undefined;
    for (const endpoint of this.order(opts)) {
      try {
        const res = await this.call<Res>(endpoint, service, method, req, opts);
        this.preferred = this.endpoints.indexOf(endpoint);
        return res;
      } catch (err) {
        last = err as RaftmeshError;
        if (last.code !== status.UNAVAILABLE && last.code !== status.DEADLINE_EXCEEDED) throw last;
      }
    }
    throw last as RaftmeshError;
  }

  private async write<Res>(service: ServiceName, method: string, req: object, opts: CallOptions): Promise<Res> {
    let last: RaftmeshError | undefined;
    // Not the leader's address first: these writes carry no session, so one that fails on a leader
    // that died meanwhile cannot be sent again (its outcome is unknown); a follower forwards it.
    for (const endpoint of this.order(opts)) {
      try {
        const res = await this.call<Res>(endpoint, service, method, req, opts);
        this.preferred = Math.max(0, this.endpoints.indexOf(endpoint));
        return res;
      } catch (err) {
        last = err as RaftmeshError;
        // Only a server that says the write did not take effect lets us send it again: unavailable
        // (no leader, not served) or aborted (a new leader's entry took its place in the log).
        if (!last.notApplied || (last.code !== status.UNAVAILABLE && last.code !== status.ABORTED)) throw last;
      }
    }
    throw last as RaftmeshError;
  }

  /**
   * sessioned sends a write with this client's (client id, seq): the same seq is reused when the
   * write is retried on another node, so the cluster applies it at most once (the retry gets the
   * first result back with duplicate: true). It retries only where the outcome may be unknown.
   */
  private async sessioned<Res>(service: ServiceName, method: string, req: object, opts: CallOptions): Promise<Res> {
    // The server forgets a seq once one SESSION_WINDOW newer arrived, and a retry of a forgotten
    // seq cannot be answered. Bounding the count in flight does not prevent that (one slow write
    // falls behind while the others complete), so a new seq waits until it is less than
    // SESSION_WINDOW ahead of the oldest one still unanswered.
    while (!this.seqFitsWindow()) await new Promise<void>((r) => this.waiters.push(r));
    const seq = ++this.seq;
    this.outstanding.add(seq);
    try {
      return await this.sessionedOnce<Res>(service, method, req, opts, seq);
    } finally {
      const wasOldest = this.oldestOutstanding() === seq;
      this.outstanding.delete(seq);
      // Only the oldest seq's answer moves the window; every waiter looks again, in order.
      if (wasOldest) for (const wake of this.waiters.splice(0)) wake();
    }
  }

  /** seqFitsWindow: the next seq would be within SESSION_WINDOW - 1 of the oldest unanswered one. */
  private seqFitsWindow(): boolean {
    const oldest = this.oldestOutstanding();
    return oldest === undefined || this.seq + 1 - oldest < SESSION_WINDOW;
  }

  private oldestOutstanding(): number | undefined {
    return this.outstanding.values().next().value;
  }

  /**
   * sessionedOnce sends one seq until an endpoint answers it, going round the endpoints up to
   * WRITE_PASSES_MAX times with a growing pause between passes (25, 50, 100, 200, then 250 ms). The first pass gives each endpoint
   * the whole deadline (one that hangs must not starve the next); a later pass starts only within
   * the deadline of the first try and gives its calls what is left of it. Sending the same seq
   * again is safe whatever happened to the earlier try: the cluster applies a seq at most once and
   * answers a repeat with the first result.
   */
  private async sessionedOnce<Res>(service: ServiceName, method: string, req: object, opts: CallOptions, seq: number): Promise<Res> {
    const session = { clientId: this.clientId, seq };
    const deadlineMs = opts.deadlineMs ?? this.defaults.deadlineMs ?? CALL_DEADLINE_MS_DEFAULT;
    const endAt = Date.now() + deadlineMs;
    let last: RaftmeshError | undefined;
    // unknown: a try ended without knowing whether the write ran (it may yet commit). From then on
    // no later answer may tell the caller it did not run. unknownBeforeLast: such a try came before
    // the last one (the last one's own answer describes itself: a call never sent stays that).
    let unknown = false;
    let unknownBeforeLast = false;
    let pause = WRITE_PASS_BACKOFF_MS;
    const rounds = this.defaults.writeRounds ?? WRITE_PASSES_MAX;
    for (let pass = 0; pass < rounds; pass++) {
      if (pass > 0) {
        if (Date.now() + pause >= endAt) break;
        await new Promise((r) => setTimeout(r, pause));
        pause = Math.min(pause * 2, WRITE_PASS_BACKOFF_MS_MAX);
      }
      for (const endpoint of this.writeOrder(opts)) {
        const leftMs = pass === 0 ? deadlineMs : endAt - Date.now();
        if (leftMs <= 0) break;
        try {
          return await this.call<Res>(endpoint, service, method, { ...req, session }, { ...opts, deadlineMs: leftMs });
        } catch (err) {
          last = err as RaftmeshError;
          this.forgetLeader(endpoint, last);
          unknownBeforeLast = unknown;
          // A final answer speaks for the seq unless an earlier try's outcome is unknown.
          if (!sessionedRetryable(last)) throw unknownBeforeLast ? outcomeUnknown(last) : last;
          if (!last.notApplied) unknown = true;
        }
      }
    }
    if (!last) throw new RaftmeshError(status.DEADLINE_EXCEEDED, "the call's deadline passed before it could be sent", "", true, "");
    throw unknownBeforeLast ? outcomeUnknown(last) : last;
  }

  /**
   * forgetLeader stops sending writes first to endpoint once a call to it could not be served there
   * (unavailable or timed out: the node may be down or no longer lead); the next forwarded answer
   * names the leader again.
   */
  private forgetLeader(endpoint: string, err: RaftmeshError): void {
    if (this.leaderEndpoint !== endpoint || (err.code !== status.UNAVAILABLE && err.code !== status.DEADLINE_EXCEEDED)) return;
    this.leaderEndpoint = undefined;
    this.leaderFailedAt.set(endpoint, Date.now());
  }

  private call<Res>(endpoint: string, service: ServiceName, method: string, req: object, opts: CallOptions): Promise<Res> {
    const stub = this.stub(endpoint, service);
    const deadline = new Date(Date.now() + (opts.deadlineMs ?? this.defaults.deadlineMs ?? CALL_DEADLINE_MS_DEFAULT));
    return new Promise<Res>((resolve, reject) => {
      const fn = (stub as unknown as Record<string, (...args: unknown[]) => ClientUnaryCall>)[method];
      if (!fn) return reject(new Error(`${service} has no method ${method}`));
      const call = fn.call(stub, req, { deadline }, (err: ServiceError | null, res: Res) => (err ? reject(RaftmeshError.from(err, endpoint)) : resolve(res)));
      // Only a forwarded answer carries the leader's address in its headers (leader-route.ts).
      call.on("metadata", (md: Metadata) => this.noteLeader(md));
    });
  }

  private stub(endpoint: string, service: ServiceName): Client {
    const key = `${service}@${endpoint}`;
    let c = this.stubs.get(key);
    if (!c) {
      c = new (clientApi()[service])(endpoint, this.channel, {
        channelOverride: this.channelTo(endpoint),
        ...(this.defaults.token ? { interceptors: [bearerInterceptor(this.defaults.token)] } : {}),
      });
      this.stubs.set(key, c);
    }
    return c;
  }

  /**
   * channelTo is this client's one channel to an endpoint, shared by its services. Its own
   * connection: grpc-js shares connections between channels with equal options across a whole
   * process, so every client in a process would otherwise ride one HTTP/2 connection per node and
   * share its bound of API_STREAMS_PER_CONNECTION_MAX calls at once (watches included) — and a
   * second client, the way past that bound, would not get past it.
   */
  private channelTo(endpoint: string): Channel {
    let ch = this.channels.get(endpoint);
    if (!ch) {
      ch = new Channel(endpoint, this.channel, {
        "grpc.max_send_message_length": API_MESSAGE_BYTES_MAX,
        "grpc.max_receive_message_length": API_RESPONSE_BYTES_MAX,
        ...(this.defaults.connection === "shared" ? {} : { "grpc.use_local_subchannel_pool": 1 }),
        ...keepaliveOptions(this.defaults.keepaliveMs ?? KEEPALIVE_MS_DEFAULT),
        ...(this.defaults.serverName ? { "grpc.ssl_target_name_override": this.defaults.serverName } : {}),
      });
      this.channels.set(endpoint, ch);
    }
    return ch;
  }
}

/** bearerInterceptor adds "authorization: Bearer <token>" to every call of a stub, streams included. */
function bearerInterceptor(token: string): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set("authorization", `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}

/**
 * follow hands a server stream's messages to onMessage and calls onEnd exactly once: with the
 * typed error, or with nothing when the stream ended cleanly. cancel() stops it.
 */
function follow<T>(call: import("@grpc/grpc-js").ClientReadableStream<T>, endpoint: string, onMessage: (m: T) => void, onEnd: (err?: RaftmeshError) => void): { cancel(): void } {
  let done = false;
  call.on("data", (m: T) => onMessage(m));
  call.on("error", (err) => {
    if (done) return;
    done = true;
    onEnd(RaftmeshError.from(err, endpoint));
  });
  call.on("end", () => {
    if (done) return;
    done = true;
    onEnd();
  });
  return { cancel: () => call.cancel() };
}

/**
 * sessionedRetryable: a sessioned write that failed this way may be sent again with the same seq.
 * Unavailable or timed out, its outcome is unknown and the seq makes a second send harmless;
 * aborted with not-applied, a new leader's entry took its place and it certainly did not run.
 */
function sessionedRetryable(err: RaftmeshError): boolean {
  // A final answer (the seq fell out of the session window) would come back the same every time.
  if (err.final) return false;
  return err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED || (err.code === status.ABORTED && err.notApplied);
}

/** keepaliveOptions are grpc-js's channel options for pings every ms while calls are open (none for 0). */
function keepaliveOptions(ms: number): Record<string, number> {
  if (ms === 0) return {};
  return { "grpc.keepalive_time_ms": ms, "grpc.keepalive_timeout_ms": ms, "grpc.keepalive_permit_without_calls": 0 };
}

/**
 * outcomeUnknown is the error a sessioned write ends with when one of its tries ended with its
 * outcome unknown: a later "not applied" speaks for that try alone, and the earlier one may still
 * commit (a forward cut off from a leader that had logged it, which the next leader commits).
 * Retryable answers become DEADLINE_EXCEEDED; any other keeps its code; none says not-applied.
 * Sending the write again with a new seq could apply it twice: read first.
 */
function outcomeUnknown(last: RaftmeshError): RaftmeshError {
  const code = last.code === status.UNAVAILABLE || last.code === status.ABORTED ? status.DEADLINE_EXCEEDED : last.code;
  return new RaftmeshError(code, `the outcome is unknown (an earlier try may yet take effect; read before writing again); last answer: ${last.details}`, last.endpoint, false, last.leader);
}
