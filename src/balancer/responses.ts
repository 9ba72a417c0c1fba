import { STATUS_CODES } from "node:http";
import type { BreakerLimit } from "./types.js";

/** ErrorKind names why the endpoint answered itself rather than a backend. */
export type ErrorKind =
  | "unknown-service"
  | "no-healthy-instance"
  | "no-master"
  | "circuit-open"
  | "upstream-failed"
  | "upstream-timeout"
  | "upstream-tls-failed"
  | "bad-request";

const STATUS: Record<ErrorKind, number> = {
  "unknown-service": 404,
  "no-healthy-instance": 503,
  "no-master": 503,
  "circuit-open": 503,
  "upstream-failed": 502,
  "upstream-timeout": 504,
  "upstream-tls-failed": 502,
  "bad-request": 400,
};

const MESSAGE: Record<ErrorKind, string> = {
  "unknown-service": "no service of this name is registered",
  "no-healthy-instance": "the service has no healthy instance",
  "no-master": "the master-slave service has no master right now",
  "circuit-open": "the service's circuit breaker is open: too many requests in flight",
  "upstream-failed": "every try to reach an instance failed",
  "upstream-timeout": "the instance did not answer in time",
  "upstream-tls-failed": "the TLS handshake with the instance failed: its certificate did not verify against the upstream CA, or it refused this node's certificate (not retried: see reason)",
  "bad-request": "the request could not be routed",
};

/** LIMIT_MESSAGE says which circuit breaker limit refused a request (the 503 body's limit field). */
const LIMIT_MESSAGE: Record<BreakerLimit, string> = {
  requests: "the service's circuit breaker is open: too many requests in flight (maxRequests)",
  connections: "the service's circuit breaker is open: too many upstream connections (maxConnections)",
  pending: "the service's circuit breaker is open: too many requests waiting for a connection (maxPendingRequests)",
};

/**
 * errorResponse is a whole response for a request the endpoint answers itself: a JSON body saying
 * what went wrong (and, for circuit-open, which limit). connection is "" or a Connection header line.
 */
export function errorResponse(kind: ErrorKind, service: string | undefined, limit: BreakerLimit | undefined, connection: string, reason?: string): Buffer {
  const { status, body } = errorBody(kind, service, limit, reason);
  return Buffer.from(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-raftmesh-error: ${kind}\r\n${connection}\r\n${body}`,
  );
}

/** rawError is a whole HTTP/1.1 error response for a connection that has no parsed request (client errors). */
export function rawError(status: number, reason: string, message: string): string {
  const body = JSON.stringify({ error: reason, message });
  return `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** staticResponse is a service's configured static fallback as a whole response. */
export function staticResponse(status: number, body: string, service: string, connection: string): Buffer {
  return Buffer.from(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "fallback"}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-raftmesh-fallback: ${service}\r\n${connection}\r\n${body}`);
}

/** REASON_CHARS_MAX bounds the reason echoed in an error body (a TLS library message): enough for a code and its sentence. */
const REASON_CHARS_MAX = 200;

/** errorBody is an error answer's status and JSON body, for proxies that do not answer through a ServerResponse (h2c); reason, when given, says what failed. */
export function errorBody(kind: ErrorKind, service: string | undefined, limit?: BreakerLimit, reason?: string): { readonly status: number; readonly body: string } {
  const why = reason === undefined ? {} : { reason: reason.slice(0, REASON_CHARS_MAX) };
  const body = JSON.stringify(limit ? { error: kind, service, limit, message: LIMIT_MESSAGE[limit] } : { error: kind, service, message: MESSAGE[kind], ...why });
  return { status: STATUS[kind], body };
}
