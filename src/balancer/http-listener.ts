/**
 * One HTTP listener: HTTP/1.1 (http-proxy.ts, parsing heads itself on plain sockets, with the
 * endpoint's limits: head size, head timeout, connection count) and h2c on the same port; or,
 * with a certificate, the same over TLS (HTTP/2 chosen by ALPN "h2").
 */
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from "node:tls";
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
  const { serve, close } = servers(ctx, headersTimeoutMs);
  // allowHalfOpen: a client that ends its side after its request still gets the response.
  // pauseOnConnect: the connection reads through a ClientReader (client-read.ts), started in serve.
  const front = createNetServer({ noDelay: true, allowHalfOpen: true, pauseOnConnect: true }, serve);
  front.maxConnections = CLIENT_CONNECTIONS_MAX;
  front.on("close", close);
  return front;
}

/**
 * createTlsListener is createListener over TLS with pem's certificate: ALPN "h2" goes to the
 * HTTP/2 server, anything else (http/1.1, no ALPN) to the HTTP/1.1 proxy (whose ClientReader reads
 * a TLS socket by 'data' events). The handshake must end within the head timeout; setSecureContext
 * on the server takes a new certificate.
 */
export function createTlsListener(ctx: ProxyContext, pem: { readonly cert: string; readonly key: string }, headersTimeoutMs = HEADERS_TIMEOUT_MS): TlsServer {
  const { serve, close, h2 } = servers(ctx, headersTimeoutMs);
  const front = createTlsServer({ cert: pem.cert, key: pem.key, ALPNProtocols: ["h2", "http/1.1"], handshakeTimeout: headersTimeoutMs, allowHalfOpen: true }, (socket: TLSSocket) => {
    socket.setNoDelay(true);
    if (socket.alpnProtocol === "h2") return void h2.emit("connection", socket);
    serve(socket);
  });
  // A client that fails its handshake (wrong protocol, no shared cipher) is dropped without a log line each.
  front.on("tlsClientError", (_err, socket) => socket.destroy());
  front.maxConnections = CLIENT_CONNECTIONS_MAX;
  front.on("close", close);
  return front;
}

/** servers makes a listener's HTTP/1.1 and HTTP/2 servers and the per-connection function that hands a connection to one of them. */
function servers(ctx: ProxyContext, headersTimeoutMs: number): { serve: (socket: Socket) => void; close: () => void; h2: ReturnType<typeof createH2cServer> } {
  const h1 = new H1Server(ctx, headersTimeoutMs);
  const h2 = createH2cServer(ctx);
  const serve = (socket: Socket) => {
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
  };
  const close = () => {
    h1.close();
    h2.close();
  };
  return { serve, close, h2 };
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
