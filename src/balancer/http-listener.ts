/**
 * One HTTP listener: Node's HTTP/1.1 server with the endpoint's limits (head size, head timeout,
 * connection count), clear 4xx answers to what cannot be parsed, and upgrades tunnelled.
 */
import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";
import { type ProxyContext, handleRequest } from "./http-proxy.js";
import { CLIENT_CONNECTIONS_MAX, CLIENT_IDLE_TIMEOUT_MS, HEADER_BYTES_MAX, HEADERS_TIMEOUT_MS } from "./limits.js";
import { rawError } from "./responses.js";
import { handleUpgrade } from "./upgrade.js";

/** createHttpListener makes the HTTP/1.1 server of a listener (not yet listening). */
export function createHttpListener(ctx: ProxyContext, headersTimeoutMs = HEADERS_TIMEOUT_MS): Server {
  const server = createServer(
    {
      maxHeaderSize: HEADER_BYTES_MAX,
      headersTimeout: headersTimeoutMs,
      // Bodies may stream for long (uploads, server-sent events): only the head is timed.
      requestTimeout: 0,
      keepAliveTimeout: CLIENT_IDLE_TIMEOUT_MS,
      // The head timeout is checked this often, so a slow head is cut within timeout + 250 ms.
      connectionsCheckingInterval: 250,
    },
    (req, res) => handleRequest(ctx, req, res),
  );
  server.maxConnections = CLIENT_CONNECTIONS_MAX;
  server.on("upgrade", (req, socket, head) => handleUpgrade(ctx.routes, req, socket, head));
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || socket.bytesWritten > 0) {
      socket.destroy();
      return;
    }
    if (err.code === "HPE_HEADER_OVERFLOW") socket.end(rawError(431, "headers-too-large", `request head over ${HEADER_BYTES_MAX} bytes`));
    else if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") socket.end(rawError(408, "headers-timeout", `request head not received within ${headersTimeoutMs} ms`));
    else socket.end(rawError(400, "malformed-request", `the request could not be parsed (${err.code ?? "error"})`));
  });
  return server;
}
