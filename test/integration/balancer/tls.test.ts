/**
 * TLS on the balancing endpoint, through a real worker pool and real sockets (certificates from
 * `raftmesh tls init`): an HTTPS client (HTTP/1.1, and HTTP/2 by ALPN) through the TLS listener to
 * plaintext backends; the listener's certificate replaced on disk and taken by new connections;
 * a plaintext client through the endpoint to backends that require a client certificate (mTLS);
 * a backend whose certificate does not verify answered 502 upstream-tls-failed with the reason,
 * after one handshake per request (no retries); and a backend that wants a certificate the
 * endpoint does not have, the same.
 */
import { X509Certificate } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { type ClientHttp2Session, createServer as createH2cServer, createSecureServer, connect as h2Connect, type ServerHttp2Session } from "node:http2";
import { createServer as createHttpsServer, request as httpsRequest, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { followTls, type WorkerTls, workerTls } from "../../../src/balancer/tls.js";
import { tlsInit } from "../../../src/cli/tls-command.js";
import { TlsFiles } from "../../../src/common/tls.js";
import { type Backend, call, endpointOf, startBackend, startEndpoint, type TestEndpoint, table } from "./harness.js";

let dir: string;
let other: string;
const pem = (d: string, name: string) => readFileSync(join(d, name), "utf8");

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "balancer-tls-"));
  other = mkdtempSync(join(tmpdir(), "balancer-tls-other-"));
  tlsInit({ dir, nodes: ["n1", "b1", "b2"] });
  // A second CA: its certificates verify against nothing the endpoint trusts.
  tlsInit({ dir: other, nodes: ["b1"] });
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(other, { recursive: true, force: true });
});

/** nodeTls is the endpoint's material as the agent builds it from n1's files. */
function nodeTls(): WorkerTls {
  return { listener: { cert: pem(dir, "n1.pem"), key: pem(dir, "n1-key.pem") }, upstream: { ca: pem(dir, "ca.pem"), cert: pem(dir, "n1.pem"), key: pem(dir, "n1-key.pem") } };
}

/** TlsBackend is an HTTPS backend that counts handshakes and answers with its id and the client certificate's CN. */
interface TlsBackend {
  readonly id: string;
  readonly port: number;
  readonly server: HttpsServer;
  /** handshakes counts TCP connections that began a handshake (accepted or not). */
  handshakes: number;
  close(): Promise<void>;
}

async function startTlsBackend(id: string, certDir: string, certName: string, requireClientCert: boolean): Promise<TlsBackend> {
  const server = createHttpsServer({ cert: pem(certDir, `${certName}.pem`), key: pem(certDir, `${certName}-key.pem`), ca: pem(dir, "ca.pem"), requestCert: requireClientCert, rejectUnauthorized: requireClientCert }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    req.resume();
    req.once("end", () => res.end(`${id} client=${peer?.subject?.CN ?? "none"}`));
  });
  const b: TlsBackend = {
    id,
    port: 0,
    server,
    handshakes: 0,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
  server.on("connection", () => b.handshakes++);
  server.on("tlsClientError", () => {});
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  (b as { port: number }).port = (server.address() as AddressInfo).port;
  return b;
}

/** httpsCall sends one request to the endpoint's HTTPS port trusting the cluster CA; cert is the fingerprint the endpoint presented. */
function httpsCall(port: number, path: string): Promise<{ status: number; body: string; cert: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: "127.0.0.1", port, path, ca: pem(dir, "ca.pem"), agent: false }, (res) => {
      const cert = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let body = "";
      res.on("data", (c) => (body += c));
      res.once("end", () => resolve({ status: res.statusCode ?? 0, body, cert }));
    });
    req.once("error", reject);
    req.end();
  });
}

/** presented is the fingerprint of the certificate a TLS server on port presents (checked against ca). */
function presented(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: "127.0.0.1", port, ca }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.once("error", reject);
  });
}

const fingerprint = (d: string, name: string) => new X509Certificate(readFileSync(join(d, name))).fingerprint256;

/** h2Body sends one request on session and resolves with its whole body. */
function h2Body(session: ClientHttp2Session, path: string, authority: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const s = session.request({ ":path": path, ":authority": authority });
    let out = "";
    s.on("data", (c) => (out += c));
    s.once("end", () => resolve(out));
    s.once("error", reject);
    s.end();
  });
}

describe("balancer: TLS termination and origination", () => {
  // One endpoint for every case (a worker pool's start is most of the cost): its listener follows
  // files in work/, its upstream material is nodeTls() unless a case posts other material.
  let backends: (Backend | TlsBackend)[] = [];
  let ep: TestEndpoint;
  let work: string;
  let files: TlsFiles;
  let unfollow: () => void;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "balancer-tls-work-"));
    copyFileSync(join(dir, "ca.pem"), join(work, "ca.pem"));
    copyFileSync(join(dir, "n1.pem"), join(work, "cert.pem"));
    copyFileSync(join(dir, "n1-key.pem"), join(work, "key.pem"));
    files = new TlsFiles({ ca: join(work, "ca.pem"), cert: join(work, "cert.pem"), key: join(work, "key.pem") }, { checkMs: 3_600_000 });
    ep = await startEndpoint([], [], { tls: { ...nodeTls(), listener: workerTls({ listener: files }).listener }, https: true });
    unfollow = followTls({ listener: files }, (t) => ep.pool.postTls({ ...nodeTls(), listener: t.listener }));
  });

  afterAll(async () => {
    unfollow();
    files.close();
    await ep.stop();
    rmSync(work, { recursive: true, force: true });
  });

  afterEach(async () => {
    await Promise.all(backends.map((b) => b.close()));
    backends = [];
  });

  it("an HTTPS client (HTTP/1.1, and h2 by ALPN) through the TLS listener to plaintext backends", async () => {
    const a = await startBackend("a");
    const h2 = createH2cServer((req, res) => res.end(`h2 ${req.url}`));
    // The endpoint keeps its upstream session open: closing the backend ends it.
    const sessions = new Set<ServerHttp2Session>();
    h2.on("session", (s) => sessions.add(s));
    await new Promise<void>((r) => h2.listen(0, "127.0.0.1", () => r()));
    const closeH2 = () =>
      new Promise<void>((r) => {
        h2.close(() => r());
        for (const s of sessions) s.destroy();
      });
    backends = [a, { id: "h2", port: (h2.address() as AddressInfo).port, server: h2 as never, hits: 0, last: undefined, close: closeH2 }];
    await ep.set([table("web", [endpointOf(a)]), table("grpc", [endpointOf(backends[1]!)])]);
    const r = await httpsCall(ep.port, "/svc/web/x");
    expect(r).toMatchObject({ status: 200, body: "a" });
    expect(r.cert).toBe(fingerprint(dir, "n1.pem"));
    // A plaintext request on the HTTPS port is not served.
    await expect(call(ep.port, "/svc/web/x")).rejects.toThrow();
    const session = h2Connect(`https://127.0.0.1:${ep.port}`, { ca: pem(dir, "ca.pem") });
    try {
      const body = await h2Body(session, "/svc/grpc/hello", "grpc");
      expect(body).toBe("h2 /hello");
      expect((session.socket as TLSSocket).alpnProtocol).toBe("h2");
    } finally {
      session.close();
    }
  });

  it("a plaintext client through the endpoint to instances that require a client certificate (mTLS)", async () => {
    const b1 = await startTlsBackend("b1", dir, "b1", true);
    const b2 = await startTlsBackend("b2", dir, "b2", true);
    backends = [b1, b2];
    await ep.set([table("secure", [endpointOf(b1), endpointOf(b2)], { upstreamTls: true })]);
    const bodies = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await call(ep.plainPort, "/svc/secure/");
      expect(r.status).toBe(200);
      bodies.add(r.body);
    }
    // Both instances answered, each saw the node's certificate; keep-alive reuses the TLS connections.
    expect([...bodies].sort()).toEqual(["b1 client=n1", "b2 client=n1"]);
    expect(b1.handshakes + b2.handshakes).toBeLessThanOrEqual(4);
  });

  it("h2 (gRPC) streams to instances over TLS with ALPN h2 and the node's client certificate", async () => {
    const secure = createSecureServer({ cert: pem(dir, "b1.pem"), key: pem(dir, "b1-key.pem"), ca: pem(dir, "ca.pem"), requestCert: true, rejectUnauthorized: true });
    const sessions = new Set<ServerHttp2Session>();
    secure.on("session", (x) => sessions.add(x));
    secure.on("stream", (st) => {
      const cn = (st.session?.socket as TLSSocket | undefined)?.getPeerCertificate().subject?.CN ?? "none";
      st.respond({ ":status": 200 });
      st.end(`h2s client=${cn}`);
    });
    await new Promise<void>((r) => secure.listen(0, "127.0.0.1", () => r()));
    const port = (secure.address() as AddressInfo).port;
    backends = [{ id: "h2s", port, server: secure as never, hits: 0, last: undefined, close: () => new Promise<void>((r) => { secure.close(() => r()); for (const x of sessions) x.destroy(); }) }];
    await ep.set([table("grpcs", [endpointOf({ id: "h2s", port })], { upstreamTls: true })]);
    const session = h2Connect(`https://127.0.0.1:${ep.port}`, { ca: pem(dir, "ca.pem") });
    try {
      const body = await h2Body(session, "/svc/grpcs/x", "grpcs");
      expect(body).toBe("h2s client=n1");
    } finally {
      session.close();
    }
  });

  it("an instance whose certificate does not verify: 502 upstream-tls-failed with the reason, one handshake per request", async () => {
    const bad = await startTlsBackend("bad", other, "b1", false);
    backends = [bad];
    await ep.set([table("secure", [endpointOf(bad)], { upstreamTls: true, retries: 3 })]);
    for (let i = 0; i < 2; i++) {
      const r = await call(ep.plainPort, "/svc/secure/");
      expect(r.status).toBe(502);
      expect(r.headers["x-raftmesh-error"]).toBe("upstream-tls-failed");
      const body = JSON.parse(r.body) as { error: string; service: string; reason: string };
      expect(body).toMatchObject({ error: "upstream-tls-failed", service: "secure" });
      expect(body.reason).toMatch(/certificate|CERT|signature/i);
    }
    expect(bad.handshakes).toBe(2);
  });

  it("an instance that wants a client certificate the endpoint does not have: 502 upstream-tls-failed", async () => {
    const b1 = await startTlsBackend("b1", dir, "b1", true);
    backends = [b1];
    ep.pool.postTls({ ...nodeTls(), upstream: { ca: pem(dir, "ca.pem") } });
    try {
      await ep.set([table("secure", [endpointOf(b1)], { upstreamTls: true, retries: 3 })]);
      const r = await httpsCall(ep.port, "/svc/secure/");
      expect(r.status).toBe(502);
      expect(JSON.parse(r.body)).toMatchObject({ error: "upstream-tls-failed", service: "secure" });
      expect(b1.handshakes).toBe(1);
    } finally {
      ep.pool.postTls(nodeTls());
    }
  });

  it("a new certificate written under the running listener is presented to new connections", async () => {
    const a = await startBackend("a");
    backends = [a];
    await ep.set([table("web", [endpointOf(a)])]);
    expect(await presented(ep.port, pem(dir, "ca.pem"))).toBe(fingerprint(dir, "n1.pem"));
    // The key first, then the certificate, as a renewal writes them: the half-written set is refused, the whole one taken.
    copyFileSync(join(dir, "b2-key.pem"), join(work, "key.pem"));
    expect(files.check()).toBe(false);
    copyFileSync(join(dir, "b2.pem"), join(work, "cert.pem"));
    expect(files.check()).toBe(true);
    const deadline = Date.now() + 2_000;
    let now = "";
    while (Date.now() < deadline && (now = await presented(ep.port, pem(dir, "ca.pem"))) !== fingerprint(dir, "b2.pem")) await new Promise((r) => setTimeout(r, 20));
    expect(now).toBe(fingerprint(dir, "b2.pem"));
    expect((await httpsCall(ep.port, "/svc/web/")).body).toBe("a");
  });
});
