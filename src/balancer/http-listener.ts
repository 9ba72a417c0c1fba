/**
 * One HTTP listener: HTTP/1.1 (http-proxy.ts, parsing heads itself on plain sockets, with the
 * endpoint's limits: head size, head timeout, connection count) and h2c on the same port.
 */
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { ClientReader } from "./client-read.js";
import { createH2cServer } from "./h2c-proxy.js";
import { H1Server, type ProxyContext } from "./http-proxy.js";
import { CLIENT_CONNECTIONS_MAX, HEADERS_TIMEOUT_MS } from "./limits.js";

/** H2_PREFACE_START: an HTTP/2 prior-knowledge connection starts "PRI * HTTP/2.0"; no HTTP/1.1 method starts "PRI". */
const H2_PREFACE_START = Buffer.from("PRI");

/**
 * createListener makes the endpoint's listener: one port for HTTP/1.1 and h2c. The first bytes
 * of a connection say which (read once per connection, not per request): the connection and those
 * bytes are handed to the HTTP/1.1 proxy or the HTTP/2 server.
 */
export function createListener(ctx: ProxyContext, headersTimeoutMs = HEADERS_TIMEOUT_MS): NetServer {
  const h1 = new H1Server(ctx, headersTimeoutMs);
  const h2 = createH2cServer(ctx);
  // allowHalfOpen: a client that ends its side after its request still gets the response.
  // pauseOnConnect: the connection reads through a ClientReader (client-read.ts), started here.
  const front = createNetServer({ noDelay: true, allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    // A connection that sends nothing is held no longer than a slow head would be.
    socket.setTimeout(headersTimeoutMs, () => socket.destroy());
    const reader = new ClientReader(socket, (chunk: Buffer) => {
      socket.setTimeout(0);
      if (chunk.length >= 3 && chunk[0] === H2_PREFACE_START[0] && chunk[1] === H2_PREFACE_START[1] && chunk[2] === H2_PREFACE_START[2]) {
        reader.release();
        h2.emit("connection", replayed(socket, Buffer.from(chunk)));
        return;
      }
      h1.accept(socket, reader, chunk);
    });
    socket.on("error", () => socket.destroy());
  });
  front.maxConnections = CLIENT_CONNECTIONS_MAX;
  front.on("close", () => {
    h1.close();
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
