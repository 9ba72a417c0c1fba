import type { ServerResponse } from "node:http";
import type { BreakerLimit } from "./types.js";

/** ErrorKind names why the endpoint answered itself rather than a backend. */
export type ErrorKind =
  | "unknown-service"
  | "no-healthy-instance"
  | "no-master"
  | "circuit-open"
  | "upstream-failed"
  | "upstream-timeout"
  | "bad-request";

const STATUS: Record<ErrorKind, number> = {
  "unknown-service": 404,
  "no-healthy-instance": 503,
  "no-master": 503,
  "circuit-open": 503,
  "upstream-failed": 502,
  "upstream-timeout": 504,
  "bad-request": 400,
};

const MESSAGE: Record<ErrorKind, string> = {
  "unknown-service": "no service of this name is registered",
  "no-healthy-instance": "the service has no healthy instance",
  "no-master": "the master-slave service has no master right now",
  "circuit-open": "the service's circuit breaker is open: too many requests in flight",
  "upstream-failed": "every try to reach an instance failed",
  "upstream-timeout": "the instance did not answer in time",
  "bad-request": "the request could not be routed",
};

/** LIMIT_MESSAGE says which circuit breaker limit refused a request (the 503 body's limit field). */
const LIMIT_MESSAGE: Record<BreakerLimit, string> = {
  requests: "the service's circuit breaker is open: too many requests in flight (maxRequests)",
  connections: "the service's circuit breaker is open: too many upstream connections (maxConnections)",
  pending: "the service's circuit breaker is open: too many requests waiting for a connection (maxPendingRequests)",
};

/** sendError answers with a JSON body saying what went wrong (and, for circuit-open, which limit). */
export function sendError(res: ServerResponse, kind: ErrorKind, service: string | undefined, limit?: BreakerLimit): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(limit ? { error: kind, service, limit, message: LIMIT_MESSAGE[limit] } : { error: kind, service, message: MESSAGE[kind] });
  res.writeHead(STATUS[kind], { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-raftmesh-error": kind });
  res.end(body);
}

/** rawError is a whole HTTP/1.1 error response for a connection that has no parsed request (client errors). */
export function rawError(status: number, reason: string, message: string): string {
  const body = JSON.stringify({ error: reason, message });
  return `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** sendStatic answers with a service's configured static fallback. */
export function sendStatic(res: ServerResponse, status: number, body: string, service: string): void {
  res.writeHead(status, { "content-length": Buffer.byteLength(body), "x-raftmesh-fallback": service });
  res.end(body);
}

/** errorBody is an error answer's status and JSON body, for proxies that do not answer through a ServerResponse (h2c). */
export function errorBody(kind: ErrorKind, service: string | undefined, limit?: BreakerLimit): { readonly status: number; readonly body: string } {
  const body = JSON.stringify(limit ? { error: kind, service, limit, message: LIMIT_MESSAGE[limit] } : { error: kind, service, message: MESSAGE[kind] });
  return { status: STATUS[kind], body };
}
