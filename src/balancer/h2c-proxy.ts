/**
 * h2c (HTTP/2 over cleartext, prior knowledge) on the HTTP listener's port: gRPC clients are
 * balanced per request (each stream picks an instance), not per connection as an L4 balancer
 * would. A stream routes by `:authority` (or the `/svc/<service>/` path prefix) and goes to the
 * instance over one shared h2c session per instance; response headers, data and trailers
 * (grpc-status) pass through.
 */
import { type ClientHttp2Session, connect, constants, createServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import { performance } from "node:perf_hooks";
import type { ProxyContext } from "./http-proxy.js";
import { endpointKey } from "./route-table.js";
import { routeOf } from "./routing.js";

/** H2_SESSIONS_MAX bounds the upstream h2c sessions of a worker (one per instance; each multiplexes streams). */
const H2_SESSIONS_MAX = 4_096;

/** createH2cServer makes the h2c server; connections are handed to it by the listener's sniffing. */
export function createH2cServer(ctx: ProxyContext): Http2Server {
  const sessions = new Map<string, ClientHttp2Session>();
  const sessionFor = (key: string, address: string, port: number): ClientHttp2Session => {
    let s = sessions.get(key);
    if (s && !s.closed && !s.destroyed) return s;
    if (sessions.size >= H2_SESSIONS_MAX) for (const [k, old] of sessions) if (old.closed || old.destroyed) sessions.delete(k);
    s = connect(`http://${address}:${port}`);
    s.on("error", () => sessions.delete(key));
    s.on("close", () => sessions.delete(key));
    s.unref();
    sessions.set(key, s);
    return s;
  };
  const server = createServer();
  server.on("stream", (stream, headers) => proxyStream(ctx, sessionFor, stream, headers));
  server.on("close", () => {
    for (const s of sessions.values()) s.destroy();
  });
  return server;
}

function fail(stream: ServerHttp2Stream, status: number, error: string, service: string | undefined): void {
  if (stream.destroyed) return;
  if (stream.headersSent) {
    stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  const body = JSON.stringify({ error, service });
  stream.respond({ ":status": status, "content-type": "application/json", "x-raftmesh-error": error });
  stream.end(body);
}

function proxyStream(
  ctx: ProxyContext,
  sessionFor: (key: string, address: string, port: number) => ClientHttp2Session,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
): void {
  const path = String(headers[":path"] ?? "/");
  const authority = headers[":authority"] ?? headers.host;
  const target = routeOf(path, typeof authority === "string" ? authority : undefined);
  if (!target) {
    fail(stream, 400, "bad-request", undefined);
    return;
  }
  const route = ctx.routes.get(target.service);
  if (!route) {
    fail(stream, 404, "unknown-service", target.service);
    return;
  }
  const now = performance.now();
  const ep = route.mode === "master-slave" ? route.master : route.balancer.pick({}, now);
  if (!ep) {
    fail(stream, 503, route.mode === "master-slave" ? "no-master" : "no-healthy-instance", target.service);
    return;
  }
  if (!route.breaker.tryStartRequest()) {
    fail(stream, 503, "circuit-open", target.service);
    return;
  }
  route.balancer.onStart(ep.id);
  let ended = false;
  const end = (ok: boolean) => {
    if (ended) return;
    ended = true;
    route.meter.finished((performance.now() - now) / 1000, ok ? 200 : 502);
    route.breaker.onRequestEnd();
    route.balancer.onEnd(ep.id, ok ? "success" : "failure", performance.now());
  };
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || k === ":path" || k === "connection") continue;
    out[k] = v as string | string[];
  }
  out[":path"] = target.path;
  out["x-forwarded-for"] = stream.session?.socket?.remoteAddress ?? "";
  if (route.master) out["x-raftmesh-epoch"] = route.epochHeader;
  let up: ReturnType<ClientHttp2Session["request"]>;
  try {
    up = sessionFor(endpointKey(ep), ep.address, ep.port).request(out);
  } catch {
    end(false);
    fail(stream, 502, "upstream-failed", target.service);
    return;
  }
  let trailers: IncomingHttpHeaders | undefined;
  up.on("response", (h) => {
    const status = Number(h[":status"] ?? 502);
    const resp: Record<string, string | string[] | number> = {};
    for (const [k, v] of Object.entries(h)) if (v !== undefined && !(k.startsWith(":") && k !== ":status")) resp[k] = v as string | string[];
    // A gRPC "trailers-only" answer (an error before any message) carries grpc-status in its one
    // HEADERS frame, which also ends the stream: it goes on the same way.
    const trailersOnly = h["grpc-status"] !== undefined;
    if (!stream.destroyed) stream.respond(resp, trailersOnly ? { endStream: true } : { waitForTrailers: true });
    if (status >= 500) end(false);
  });
  up.on("trailers", (t) => (trailers = t));
  stream.on("wantTrailers", () => {
    const t: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(trailers ?? {})) if (v !== undefined && !k.startsWith(":")) t[k] = v as string | string[];
    stream.sendTrailers(t);
  });
  up.on("error", () => {
    end(false);
    fail(stream, 502, "upstream-failed", target.service);
  });
  up.on("end", () => end(true));
  stream.on("close", () => {
    if (!up.closed) up.close(constants.NGHTTP2_CANCEL);
    end(true);
  });
  stream.pipe(up);
  up.on("data", (c: Buffer) => {
    if (!stream.writableEnded && !stream.write(c)) up.pause();
  });
  stream.on("drain", () => up.resume());
  up.on("end", () => {
    if (!stream.writableEnded && !stream.destroyed) stream.end();
  });
}
