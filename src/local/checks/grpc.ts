import { type Client, credentials, Metadata, makeGenericClientConstructor, type ServiceError } from "@grpc/grpc-js";
import type { CheckResult, GrpcProbe } from "../types.js";

/** HEALTH_CHECK_PATH is grpc.health.v1.Health/Check. */
const HEALTH_CHECK_PATH = "/grpc.health.v1.Health/Check";
/** SERVING_STATUS names grpc.health.v1.HealthCheckResponse.ServingStatus by number. */
const SERVING_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"] as const;

/**
 * The two messages are one field each, so they are written by hand rather than loaded from a
 * proto: HealthCheckRequest { string service = 1 } and HealthCheckResponse { ServingStatus status = 1 }.
 */
function encodeRequest(service: string): Buffer {
  const s = Buffer.from(service, "utf8");
  if (s.length === 0) return Buffer.alloc(0);
  return Buffer.concat([Buffer.from([0x0a]), varint(s.length), s]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** decodeStatus reads field 1 (varint) of a HealthCheckResponse; absent means 0 (UNKNOWN). */
export function decodeStatus(buf: Buffer): number {
  let i = 0;
  let status = 0;
  while (i < buf.length) {
    const tag = buf[i++] as number;
    const wire = tag & 7;
    let v = 0;
    let mul = 1;
    if (wire === 0) {
      for (;;) {
        const b = buf[i++] as number;
        v += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0 || i >= buf.length) break;
      }
      if (tag >> 3 === 1) status = v;
    } else if (wire === 2) {
      let len = 0;
      for (;;) {
        const b = buf[i++] as number;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0 || i >= buf.length) break;
      }
      i += len;
    } else {
      break; // no other wire types in this message; stop rather than misread
    }
  }
  return status;
}

const HealthClient = makeGenericClientConstructor({}, "grpc.health.v1.Health");

/**
 * grpcCheck calls grpc.health.v1.Health/Check once on a fresh channel: SERVING is passing, any
 * other status or error critical.
 */
export function grpcCheck(p: GrpcProbe, signal: AbortSignal, timeoutMs: number): Promise<CheckResult> {
  const target = `${p.host.includes(":") ? `[${p.host}]` : p.host}:${p.port}`;
  const label = `gRPC health ${target}${p.service === "" ? "" : `/${p.service}`}`;
  return new Promise((resolve) => {
    const client: Client = new HealthClient(target, credentials.createInsecure());
    const call = client.makeUnaryRequest(
      HEALTH_CHECK_PATH,
      encodeRequest,
      decodeStatus,
      p.service,
      new Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err: ServiceError | null, status?: number) => {
        client.close();
        signal.removeEventListener("abort", cancel);
        if (err) return resolve({ status: "critical", note: `${label}: ${err.details || err.message}` });
        const name = SERVING_STATUS[status ?? 0] ?? String(status);
        resolve({ status: status === 1 ? "passing" : "critical", note: `${label}: ${name}` });
      },
    );
    const cancel = () => call.cancel();
    signal.addEventListener("abort", cancel, { once: true });
  });
}
