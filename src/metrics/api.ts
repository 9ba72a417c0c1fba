/**
 * Client API metrics: one gRPC server interceptor (the API server takes it; src/api/server.ts)
 * counts every call by method and status code and times it from its start to its status. One
 * place covers every service, the health service and reflection included, without touching a
 * handler.
 */
import { type ServerInterceptor, ServerInterceptingCall, status as grpcStatus } from "@grpc/grpc-js";
import { Counter as PromCounter, Histogram as PromHistogram, type Registry } from "prom-client";
import { API_BUCKETS_SECONDS } from "./limits.js";

/** CODE_NAMES maps a gRPC status number to its name (OK, NOT_FOUND, ...), the label Prometheus users expect (as in go-grpc-prometheus). */
const CODE_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(grpcStatus)
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => [v as number, k]),
);

/** apiInterceptor registers the API series in reg and returns the interceptor that feeds them. */
export function apiInterceptor(reg: Registry): ServerInterceptor {
  const calls = new PromCounter({ name: "raftmesh_api_requests_total", help: "Client API calls handled, by method (/package.Service/Method) and gRPC status code.", labelNames: ["method", "code"], registers: [reg] });
  const seconds = new PromHistogram({ name: "raftmesh_api_request_duration_seconds", help: "Client API call time, from its start to its status, by method.", labelNames: ["method"], buckets: [...API_BUCKETS_SECONDS], registers: [reg] });
  return (descriptor, call) => {
    const t0 = performance.now();
    const method = descriptor.path;
    return new ServerInterceptingCall(call, {
      sendStatus(status, next) {
        calls.inc({ method, code: CODE_NAMES.get(status.code ?? 0) ?? String(status.code) });
        seconds.observe({ method }, (performance.now() - t0) / 1000);
        next(status);
      },
    });
  };
}
