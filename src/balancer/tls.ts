/**
 * TLS of the balancing endpoint: the HTTP listener may serve HTTPS (ALPN h2 and http/1.1 on one
 * port), and services whose config sets upstreamTls are dialled over TLS, trusting the upstream CA
 * and presenting the node's certificate to instances that ask for one (mTLS). The files live on
 * the node's main thread (TlsFiles, watched for change); the workers get their PEM text, again at
 * each change, and build their secure contexts from it: new connections use the new certificate,
 * open ones carry on.
 */
import { isIP } from "node:net";
import { connect as tlsConnect, createSecureContext, type SecureContext, type TLSSocket } from "node:tls";
import type { TlsFiles } from "../common/tls.js";

/** WorkerTls is the PEM text a worker builds its secure contexts from (strings survive structured clone as they are). */
export interface WorkerTls {
  /** listener: the HTTPS listener's certificate (chain) and key; absent: the listener is plaintext. */
  readonly listener?: { readonly cert: string; readonly key: string };
  /** upstream: the CA bundle instances are checked against (absent: Node's public roots) and the client certificate presented when asked (absent: none). */
  readonly upstream: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

/** BalancerTlsFiles are the node's files the endpoint follows. */
export interface BalancerTlsFiles {
  /** listener: serve HTTPS with this set's certificate and key (absent: plaintext). */
  readonly listener?: TlsFiles;
  /** upstreamCa: the CA bundle of this set checks TLS instances (absent: Node's public roots). */
  readonly upstreamCa?: TlsFiles;
  /** identity: this set's certificate is presented to instances that ask for one (the node's own). */
  readonly identity?: TlsFiles;
}

/** workerTls reads the files' current material as the workers take it. */
export function workerTls(f: BalancerTlsFiles): WorkerTls {
  const pem = (b: Buffer | undefined) => (b && b.length > 0 ? b.toString("utf8") : undefined);
  const l = f.listener?.material;
  const id = f.identity?.material;
  const listener = l?.cert && l.key ? { cert: l.cert.toString("utf8"), key: l.key.toString("utf8") } : undefined;
  return { listener, upstream: { ca: pem(f.upstreamCa?.material.ca), cert: pem(id?.cert), key: pem(id?.key) } };
}

/** followTls calls post with the new material whenever one of the files changes; the function returned stops following. */
export function followTls(f: BalancerTlsFiles, post: (t: WorkerTls) => void): () => void {
  const sets = new Set([f.listener, f.upstreamCa, f.identity].filter((x): x is TlsFiles => x !== undefined));
  const stops = [...sets].map((s) => s.onChange(() => post(workerTls(f))));
  return () => {
    for (const stop of stops) stop();
  };
}

/** upstreamContext is the secure context TLS upstream connections are made with. */
export function upstreamContext(t: WorkerTls | undefined): SecureContext {
  const u = t?.upstream ?? {};
  // Without a CA, createSecureContext trusts Node's bundled public roots.
  return createSecureContext({ ca: u.ca, cert: u.cert, key: u.key });
}

/** UpstreamTls is how one service's instances are dialled (from its BalancerConfig). */
export interface UpstreamTls {
  readonly serverName: string;
  readonly verify: boolean;
}

/** upstreamTlsOf is a config's upstream TLS, or undefined for plaintext. */
export function upstreamTlsOf(c: { readonly upstreamTls: boolean; readonly upstreamTlsServerName: string; readonly upstreamTlsVerify: boolean }): UpstreamTls | undefined {
  return c.upstreamTls ? { serverName: c.upstreamTlsServerName, verify: c.upstreamTlsVerify } : undefined;
}

/** tlsPoolKey is the pool key suffix of a TLS upstream: a plaintext and a TLS service at one address never share connections. */
export function tlsPoolKey(t: UpstreamTls | undefined): string {
  return t ? `|tls|${t.serverName}|${t.verify ? 1 : 0}` : "";
}

/**
 * dialTls opens a TLS connection to an instance: SNI and the certificate check use serverName, or
 * the address (an IP address is checked against the certificate's IP names and sends no SNI).
 */
export function dialTls(host: string, port: number, context: SecureContext, t: UpstreamTls, alpn: readonly string[]): TLSSocket {
  const servername = t.serverName !== "" ? t.serverName : isIP(host) === 0 ? host : undefined;
  const socket = tlsConnect({ host, port, servername, secureContext: context, rejectUnauthorized: t.verify, ALPNProtocols: [...alpn] });
  // Requests and answers are small writes: Nagle's algorithm would hold them for an ACK.
  socket.setNoDelay(true);
  return socket;
}

/** TRANSIENT_CODES are socket errors of the network, not of TLS: a reset or refused connection during a handshake is retried as before. */
const TRANSIENT_CODES = new Set(["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNABORTED"]);

/**
 * tlsFailure names a TLS failure of an upstream connection (the instance's certificate did not
 * verify, or the instance refused the handshake or this node's certificate), or undefined for a
 * network error. handshaking: the TCP connection was up but the handshake had not finished.
 */
export function tlsFailure(err: NodeJS.ErrnoException, handshaking: boolean): string | undefined {
  const code = err.code ?? "";
  if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_")) return `${code}: ${err.message}`;
  if (handshaking && !TRANSIENT_CODES.has(code)) return code ? `${code}: ${err.message}` : err.message;
  return undefined;
}
