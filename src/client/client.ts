import { type Client, credentials, type ServiceError, status } from "@grpc/grpc-js";
import { API_MESSAGE_BYTES_MAX } from "../api/limits.js";
import type {
  DeleteResponseMsg,
  GetResponseMsg,
  MemberChangeResponseMsg,
  MembersResponseMsg,
  NodeStatusMsg,
  PutResponseMsg,
  TransferLeaderResponseMsg,
} from "../api/messages.js";
import { clientApi } from "../api/proto.js";
import { RaftmeshError } from "./errors.js";

/** CALL_DEADLINE_MS_DEFAULT is every call's deadline unless the caller gives one. */
export const CALL_DEADLINE_MS_DEFAULT = 5_000;

type ServiceName = "KV" | "Cluster";

/** CallOptions apply to one call. */
export interface CallOptions {
  readonly deadlineMs?: number;
  /** endpoint pins the call to one node; otherwise the client picks (and, where safe, moves on). */
  readonly endpoint?: string;
}

/**
 * RaftmeshClient talks to a cluster through a list of client API endpoints. Reads and status
 * calls move to the next endpoint when one fails; a write moves on only when the server said it
 * did not take effect (any node forwards writes to the leader, so there is nothing to discover).
 */
export class RaftmeshClient {
  private readonly stubs = new Map<string, Client>();
  private preferred = 0;

  constructor(
    readonly endpoints: readonly string[],
    private readonly defaults: { deadlineMs?: number } = {},
  ) {
    if (endpoints.length === 0) throw new Error("at least one endpoint is needed");
  }

  status(opts: CallOptions = {}): Promise<NodeStatusMsg> {
    return this.idempotent("Cluster", "Status", {}, opts);
  }

  members(opts: CallOptions = {}): Promise<MembersResponseMsg> {
    return this.idempotent("Cluster", "Members", {}, opts);
  }

  addMember(req: { id: string; peer: string; api?: string; learner: boolean }, opts: CallOptions = {}): Promise<MemberChangeResponseMsg> {
    return this.write("Cluster", "AddMember", { ...req, api: req.api ?? "" }, opts);
  }

  promoteMember(id: string, opts: CallOptions = {}): Promise<MemberChangeResponseMsg> {
    return this.write("Cluster", "PromoteMember", { id }, opts);
  }

  removeMember(id: string, opts: CallOptions = {}): Promise<MemberChangeResponseMsg> {
    return this.write("Cluster", "RemoveMember", { id }, opts);
  }

  transferLeader(id: string, opts: CallOptions = {}): Promise<TransferLeaderResponseMsg> {
    return this.write("Cluster", "TransferLeader", { id }, opts);
  }

  get(key: string, opts: CallOptions & { stale?: boolean } = {}): Promise<GetResponseMsg> {
    const consistency = opts.stale ? "CONSISTENCY_STALE" : "CONSISTENCY_LINEARIZABLE";
    return this.idempotent("KV", "Get", { key, consistency }, opts);
  }

  put(key: string, value: Uint8Array | string, opts: CallOptions = {}): Promise<PutResponseMsg> {
    return this.write("KV", "Put", { key, value: Buffer.from(value) }, opts);
  }

  delete(key: string, opts: CallOptions = {}): Promise<DeleteResponseMsg> {
    return this.write("KV", "Delete", { key }, opts);
  }

  /** close drops every channel. */
  close(): void {
    for (const c of this.stubs.values()) c.close();
    this.stubs.clear();
  }

  private order(opts: CallOptions): string[] {
    if (opts.endpoint) return [opts.endpoint];
    const n = this.endpoints.length;
    return Array.from({ length: n }, (_, i) => this.endpoints[(this.preferred + i) % n] as string);
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
    for (const endpoint of this.order(opts)) {
      try {
        const res = await this.call<Res>(endpoint, service, method, req, opts);
        this.preferred = Math.max(0, this.endpoints.indexOf(endpoint));
        return res;
      } catch (err) {
        last = err as RaftmeshError;
        // Only a server that says the write did not take effect lets us send it again.
        if (!last.notApplied || last.code !== status.UNAVAILABLE) throw last;
      }
    }
    throw last as RaftmeshError;
  }

  private call<Res>(endpoint: string, service: ServiceName, method: string, req: object, opts: CallOptions): Promise<Res> {
    const stub = this.stub(endpoint, service);
    const deadline = new Date(Date.now() + (opts.deadlineMs ?? this.defaults.deadlineMs ?? CALL_DEADLINE_MS_DEFAULT));
    return new Promise<Res>((resolve, reject) => {
      const fn = (stub as unknown as Record<string, (...args: unknown[]) => void>)[method];
      if (!fn) return reject(new Error(`${service} has no method ${method}`));
      fn.call(stub, req, { deadline }, (err: ServiceError | null, res: Res) => (err ? reject(RaftmeshError.from(err, endpoint)) : resolve(res)));
    });
  }

  private stub(endpoint: string, service: ServiceName): Client {
    const key = `${service}@${endpoint}`;
    let c = this.stubs.get(key);
    if (!c) {
      c = new (clientApi()[service])(endpoint, credentials.createInsecure(), {
        "grpc.max_send_message_length": API_MESSAGE_BYTES_MAX,
        "grpc.max_receive_message_length": API_MESSAGE_BYTES_MAX,
      });
      this.stubs.set(key, c);
    }
    return c;
  }
}
