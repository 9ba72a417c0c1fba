import { type ChannelCredentials, type Client, type ClientUnaryCall, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { API_MESSAGE_BYTES_MAX, API_RESPONSE_BYTES_MAX } from "./limits.js";
import { clientApi } from "../common/proto.js";

/** METADATA_FORWARDED marks a call one node forwarded to the leader, so it is never forwarded twice. */
export const METADATA_FORWARDED = "x-raftmesh-forwarded";

type ServiceName = "KV" | "Cluster" | "Registry" | "Internal" | "Acl";

/**
 * Forwarder sends a request a follower cannot serve to the leader's client API, over one cached
 * channel per leader address, and passes the leader's answer (or error status) back unchanged.
 */
export class Forwarder {
  private readonly clients = new Map<string, Client>();

  /** channel dials the leader's client API (and, for Internal, its peer port): the node's TLS credentials when TLS is on. */
  constructor(private readonly channel: ChannelCredentials = credentials.createInsecure()) {}

  /**
   * forward calls `method` of `service` on the node at `api` with the caller's deadline. `metadata`
   * is sent too: a node-to-node call (Internal, on the peer port) carries the sender's peer identity.
   * `signal` cancels the call (it then fails with CANCELLED).
   */
  forward<Req, Res>(api: string, service: ServiceName, method: string, request: Req, deadline: Date, metadata?: Metadata, signal?: AbortSignal): Promise<Res> {
    const client = this.client(api, service);
    const md = metadata?.clone() ?? new Metadata();
    md.set(METADATA_FORWARDED, "1");
    return new Promise<Res>((resolve, reject) => {
      const fn = (client as unknown as Record<string, (...args: unknown[]) => ClientUnaryCall>)[method];
      if (!fn) {
        reject(new Error(`${service} has no method ${method}`));
        return;
      }
      const cancel = () => call.cancel();
      const call = fn.call(client, request, md, { deadline }, (err: ServiceError | null, res: Res) => {
        signal?.removeEventListener("abort", cancel);
        if (err) reject(err);
        else resolve(res);
      });
      if (signal?.aborted) call.cancel();
      else signal?.addEventListener("abort", cancel, { once: true });
    });
  }

  private client(api: string, service: ServiceName): Client {
    const key = `${service}@${api}`;
    let c = this.clients.get(key);
    if (!c) {
      const Ctor = clientApi()[service];
      c = new Ctor(api, this.channel, {
        "grpc.max_send_message_length": API_MESSAGE_BYTES_MAX,
        "grpc.max_receive_message_length": API_RESPONSE_BYTES_MAX,
      });
      this.clients.set(key, c);
    }
    return c;
  }

  /** close drops every cached channel. */
  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
