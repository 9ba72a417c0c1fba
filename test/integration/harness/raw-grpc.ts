/**
 * A raw gRPC client for hostile-input tests: it sends any bytes as a request (a custom serializer),
 * so malformed, truncated and non-UTF-8 messages reach the server exactly as written, and it
 * reports how every call ended (status, details, time) instead of throwing.
 */
import { Client, credentials, Metadata, type ServiceError, status as Status } from "@grpc/grpc-js";
import { API_MESSAGE_BYTES_MAX, API_RESPONSE_BYTES_MAX } from "../../../src/common/limits.js";
import { clientApi } from "../../../src/common/proto.js";

/** RawAnswer is how one call ended. */
export interface RawAnswer {
  readonly code: Status;
  readonly details: string;
  readonly ms: number;
  readonly response?: Buffer;
}

/** statusName is the name of a gRPC status code (OK, INVALID_ARGUMENT, ...). */
export function statusName(code: number): string {
  return (Object.entries(Status).find(([, v]) => v === code)?.[0] as string | undefined) ?? String(code);
}

/** serviceOf is the method table of a client API service ("KV", "Registry", ...). */
export function methods(service: "KV" | "Registry" | "Cluster" | "Internal" | "Events" | "Acl") {
  return clientApi()[service].service;
}

/** encode serializes a request object as the proto says (for valid requests, and as a base to damage). */
export function encode(service: "KV" | "Registry" | "Cluster" | "Internal" | "Events" | "Acl", method: string, req: object): Buffer {
  const def = methods(service)[method];
  if (!def) throw new Error(`no method ${service}.${method}`);
  return def.requestSerialize(req);
}

/** decode deserializes a response of service.method. */
export function decode<T>(service: "KV" | "Registry" | "Cluster" | "Internal" | "Events" | "Acl", method: string, buf: Buffer): T {
  return methods(service)[method]!.responseDeserialize(buf) as T;
}

/** RawClient sends bytes to /raftmesh.v1.<service>/<method> on one channel. */
export class RawClient {
  private readonly client: Client;

  constructor(address: string) {
    this.client = new Client(address, credentials.createInsecure(), {
      "grpc.max_send_message_length": 4 * API_MESSAGE_BYTES_MAX,
      "grpc.max_receive_message_length": API_RESPONSE_BYTES_MAX,
    });
  }

  /** unary sends body to a unary method and resolves with how it ended (never rejects). */
  unary(service: string, method: string, body: Buffer, deadlineMs = 5_000): Promise<RawAnswer> {
    const t0 = performance.now();
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        `/raftmesh.v1.${service}/${method}`,
        (b: Buffer) => b,
        (b: Buffer) => b,
        body,
        new Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err: ServiceError | null, res?: Buffer) => {
          const ms = performance.now() - t0;
          if (err) resolve({ code: err.code, details: err.details, ms });
          else resolve({ code: Status.OK, details: "", ms, response: res });
        },
      );
    });
  }

  /** stream opens a server stream (Watch, Events) with body, reads at most the first answer or status, and cancels. */
  serverStream(service: string, method: string, body: Buffer, deadlineMs = 5_000, waitMs = 300): Promise<RawAnswer> {
    const t0 = performance.now();
    return new Promise((resolve) => {
      let done = false;
      const finish = (a: RawAnswer) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        call.cancel();
        resolve(a);
      };
      const call = this.client.makeServerStreamRequest(`/raftmesh.v1.${service}/${method}`, (b: Buffer) => b, (b: Buffer) => b, body, new Metadata(), { deadline: Date.now() + deadlineMs });
      call.on("data", () => finish({ code: Status.OK, details: "", ms: performance.now() - t0 }));
      call.on("error", (err: ServiceError) => finish({ code: err.code, details: err.details, ms: performance.now() - t0 }));
      call.on("status", (st) => finish({ code: st.code, details: st.details, ms: performance.now() - t0 }));
      // A watch that is accepted streams only when something changes: open and quiet for waitMs is an answer too.
      const timer = setTimeout(() => finish({ code: Status.OK, details: "open", ms: performance.now() - t0 }), waitMs);
    });
  }

  /** bidi sends body on a bidirectional stream (KeepAlive), half-closes, and resolves with how it ended. */
  bidi(service: string, method: string, body: Buffer, deadlineMs = 5_000): Promise<RawAnswer> {
    const t0 = performance.now();
    return new Promise((resolve) => {
      let code: Status = Status.OK;
      let details = "";
      const call = this.client.makeBidiStreamRequest(`/raftmesh.v1.${service}/${method}`, (b: Buffer) => b, (b: Buffer) => b, new Metadata(), { deadline: Date.now() + deadlineMs });
      call.on("data", () => undefined);
      call.on("error", (err: ServiceError) => {
        code = err.code;
        details = err.details;
      });
      call.on("status", (st) => {
        if (st.code !== Status.OK) {
          code = st.code;
          details = st.details;
        }
        resolve({ code, details, ms: performance.now() - t0 });
      });
      call.write(body);
      call.end();
    });
  }

  close(): void {
    this.client.close();
  }
}

/** varint encodes an unsigned integer as a protobuf varint. */
export function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

/** lenField is field `num` with wire type 2 (string, bytes or message) holding `body`. */
export function lenField(num: number, body: Buffer): Buffer {
  return Buffer.concat([varint(num * 8 + 2), varint(body.length), body]);
}
