/**
 * A minimal etcd v3 client for the benchmark: KV.Put and Maintenance.Status on one member, over one
 * gRPC channel (one grpc-js Client) per member. etcd's own Go client also keeps one HTTP/2
 * connection per endpoint and multiplexes every call on it, so one channel per member is the
 * realistic shape; at 256 concurrent puts a single HTTP/2 connection is not the bottleneck.
 * Every call has a deadline.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ChannelOptions, Client, credentials, type ServiceError } from "@grpc/grpc-js";
import { loadSync, type MethodDefinition } from "@grpc/proto-loader";
import { EtcdCallError } from "./errors.js";

/** ETCD_PUT_TIMEOUT_MS_DEFAULT is a put's deadline unless the caller gives one: etcd's own server-side request timeout is 5 s plus two election timeouts, so 5 s catches only stuck calls. */
export const ETCD_PUT_TIMEOUT_MS_DEFAULT = 5_000;

/** ETCD_STATUS_TIMEOUT_MS_DEFAULT is a Status call's deadline: a live member on loopback answers in well under a millisecond, so 500 ms means it is down or stuck. */
export const ETCD_STATUS_TIMEOUT_MS_DEFAULT = 500;

/**
 * CHANNEL_OPTIONS shorten grpc-js's reconnect backoff (1 s initial, 120 s max by default): the
 * failover rounds kill and restart members every few seconds, and a channel parked in a long
 * backoff would make a restarted member look down long after it is back.
 */
const CHANNEL_OPTIONS: ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1_000,
};

/** EtcdStatus is one member's answer to Maintenance.Status; ids are decimal strings because they are full 64-bit. */
export interface EtcdStatus {
  readonly memberId: string;
  /** leaderId is "0" when the member knows of no leader. */
  readonly leaderId: string;
  readonly raftTerm: number;
  readonly raftIndex: number;
  readonly version: string;
  readonly dbSizeBytes: number;
}

/** EtcdPutResult is what a put reports: the store revision it created and the member that answered. */
export interface EtcdPutResult {
  readonly revision: number;
  readonly memberId: string;
}

// The decoded shapes proto-loader produces with the options below (longs as String, keepCase false).
interface WireHeader {
  clusterId: string;
  memberId: string;
  revision: string;
  raftTerm: string;
}
interface WirePutRequest {
  key: Uint8Array;
  value: Uint8Array;
}
interface WirePutResponse {
  header: WireHeader | null;
}
interface WireStatusResponse {
  header: WireHeader | null;
  version: string;
  dbSize: string;
  leader: string;
  raftIndex: string;
  raftTerm: string;
}

interface EtcdMethods {
  readonly put: MethodDefinition<WirePutRequest, WirePutResponse>;
  readonly status: MethodDefinition<Record<string, never>, WireStatusResponse>;
}

let loaded: EtcdMethods | undefined;

/** etcdMethods loads etcd-rpc.proto, which sits next to this module, the first time it is called. */
function etcdMethods(): EtcdMethods {
  if (loaded) return loaded;
  const here = dirname(fileURLToPath(import.meta.url));
  const definition = loadSync(join(here, "etcd-rpc.proto"), { keepCase: false, longs: String, enums: Number, bytes: Buffer, defaults: true });
  const kv = definition["etcdserverpb.KV"] as Record<string, MethodDefinition<object, object>> | undefined;
  const maintenance = definition["etcdserverpb.Maintenance"] as Record<string, MethodDefinition<object, object>> | undefined;
  if (!kv?.Put || !maintenance?.Status) throw new Error("etcd-rpc.proto does not define KV.Put and Maintenance.Status");
  loaded = {
    put: kv.Put as unknown as EtcdMethods["put"],
    status: maintenance.Status as unknown as EtcdMethods["status"],
  };
  return loaded;
}

/** EtcdMemberClient talks to one etcd member over its own channel. */
export class EtcdMemberClient {
  private readonly client: Client;

  /** name is the harness's name for the member (for errors); address is host:port of its client URL. */
  constructor(
    readonly name: string,
    readonly address: string,
  ) {
    this.client = new Client(address, credentials.createInsecure(), CHANNEL_OPTIONS);
  }

  /** put writes key = value through this member; a follower forwards it to the leader. Rejects with EtcdCallError. */
  async put(key: string | Uint8Array, value: Uint8Array, timeoutMs = ETCD_PUT_TIMEOUT_MS_DEFAULT): Promise<EtcdPutResult> {
    const request = { key: typeof key === "string" ? Buffer.from(key) : key, value };
    const response = await this.call(etcdMethods().put, request, timeoutMs);
    return { revision: Number(response.header?.revision ?? 0), memberId: response.header?.memberId ?? "0" };
  }

  /** status asks this member for its view of the cluster. Rejects with EtcdCallError. */
  async status(timeoutMs = ETCD_STATUS_TIMEOUT_MS_DEFAULT): Promise<EtcdStatus> {
    const r = await this.call(etcdMethods().status, {}, timeoutMs);
    return {
      memberId: r.header?.memberId ?? "0",
      leaderId: r.leader,
      raftTerm: Number(r.raftTerm),
      raftIndex: Number(r.raftIndex),
      version: r.version,
      dbSizeBytes: Number(r.dbSize),
    };
  }

  /** close shuts the channel; calls made afterwards fail. */
  close(): void {
    this.client.close();
  }

  private call<Req, Res>(method: MethodDefinition<Req, Res>, request: Req, timeoutMs: number): Promise<Res> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        { deadline: Date.now() + timeoutMs },
        (err: ServiceError | null, value?: Res) => {
          if (err || value === undefined) reject(new EtcdCallError(this.name, method.path, err?.code ?? -1, { cause: err }));
          else resolve(value);
        },
      );
    });
  }
}
