/**
 * One HTTP listener: Node's HTTP/1.1 server with the endpoint's limits (head size, head timeout,
 * connection count), clear 4xx answers to what cannot be parsed, and upgrades tunnelled.
 */
import { createServer, type Server } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { createH2cServer } from "./h2c-proxy.js";
import { type ProxyContext, handleRequest } from "./http-proxy.js";
import { CLIENT_CONNECTIONS_MAX, CLIENT_IDLE_TIMEOUT_MS, HEADER_BYTES_MAX, HEADERS_TIMEOUT_MS } from "./limits.js";
import { rawError } from "./responses.js";
import { handleUpgrade } from "./upgrade.js";

/** H2_PREFACE_START: an HTTP/2 prior-knowledge connection starts "PRI * HTTP/2.0"; no HTTP/1.1 method starts "PRI". */
const H2_PREFACE_START = Buffer.from("PRI");

/**
 * createListener makes the endpoint's listener: one port for HTTP/1.1 and h2c. The first bytes
 * of a connection say which (read once per connection, not per request): they go back into the
 * socket and the connection is handed to the HTTP/1.1 or the HTTP/2 server.
 */
export function createListener(ctx: ProxyContext, headersTimeoutMs = HEADERS_TIMEOUT_MS): NetServer {
  const h1 = createHttpListener(ctx, headersTimeoutMs);
  const h2 = createH2cServer(ctx);
  const front = createNetServer({ noDelay: true }, (socket) => {
    // A connection that sends nothing is held no longer than a slow head would be.
    socket.setTimeout(headersTimeoutMs, () => socket.destroy());
    socket.once("data", (chunk: Buffer) => {
      socket.setTimeout(0);
      if (chunk.length >= 3 && chunk.subarray(0, 3).equals(H2_PREFACE_START)) {
        h2.emit("connection", replayed(socket, chunk));
        return;
      }
      // The HTTP/1.1 server reads what is buffered in the socket before what arrives.
      socket.pause();
      socket.unshift(chunk);
      h1.emit("connection", socket);
      socket.resume();
    });
    socket.on("error", () => socket.destroy());
  });
  front.maxConnections = CLIENT_CONNECTIONS_MAX;
  // The HTTP/1.1 server times heads from its 'listening' event on; it never listens itself.
  front.on("listening", () => h1.emit("listening"));
  front.on("close", () => {
    h1.close();
    h1.closeAllConnections();
    h2.close();
  });
  return front;
}

/**
 * replayed is the socket as a stream that yields `first` and then what the socket reads: the
 * HTTP/2 server reads a real socket's handle directly and would miss bytes put back with unshift.
 */
function replayed(socket: Socket, first: Buffer): Duplex {
  const d = new Duplex({
    read() {
      socket.resume();
    },
    write(c, enc, cb) {
      socket.write(c, enc, cb);
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(err, cb) {
      socket.destroy();
      cb(err);
    },
  });
  d.push(first);
  socket.on("data", (c: Buffer) => {
    if (!d.push(c)) socket.pause();
  });
  socket.once("end", () => d.push(null));
  socket.once("close", () => d.destroy());
  return d;
}

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
