/**
 * TLS material shared by the node and its clients: PEM files read and checked once, then watched
 * for change (a renewed certificate is taken without a restart), and the gRPC credentials built on
 * them. A node's certificate names the member it belongs to as the SAN URI
 * `raftmesh://member/<id>`; a peer is checked against that URI, never against its address.
 */
import { TlsError } from "./errors.js";
import { readFileSync, statSync } from "node:fs";
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import type { PeerCertificate, SecureContextOptions } from "node:tls";
import { type ChannelCredentials, experimental, ServerCredentials } from "@grpc/grpc-js";

type CertificateProvider = experimental.CertificateProvider;
type CaCertificateUpdateListener = experimental.CaCertificateUpdateListener;
type IdentityCertificateUpdateListener = experimental.IdentityCertificateUpdateListener;

/** MEMBER_URI_PREFIX starts the SAN URI that names a member in its certificate. */
export const MEMBER_URI_PREFIX = "raftmesh://member/";

/**
 * TLS_RELOAD_CHECK_MS is how often the files' modification times are compared: three stat calls
 * a second cost nothing, and a renewed certificate is in use within a second of being written.
 */
export const TLS_RELOAD_CHECK_MS = 1_000;

/** memberUri is the SAN URI a member's certificate carries. */
export function memberUri(id: string): string {
  return `${MEMBER_URI_PREFIX}${id}`;
}

/**
 * TlsPaths name the PEM files: the CA bundle to trust, and this side's certificate and key (both
 * or neither). ca "" names no CA: an identity only (a listener's certificate of another CA, whose
 * chain the certificate file carries), not checked against any issuer.
 */
export interface TlsPaths {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
}

/** TlsMaterial is one consistent, checked reading of the files. */
export interface TlsMaterial {
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** notAfterMs is when this side's certificate expires (undefined without one). */
  readonly notAfterMs?: number;
  /** members are the member ids this side's certificate names (SAN URIs raftmesh://member/<id>). */
  readonly members: readonly string[];
}

/** sanUris lists a certificate's SAN URIs from Node's "URI:a, DNS:b" text. */
export function sanUris(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  return subjectAltName
    .split(/,\s*/)
    .filter((part) => part.startsWith("URI:"))
    .map((part) => part.slice(4));
}

/** certificateMembers lists the member ids a certificate (peer or own) names by SAN URI. */
export function certificateMembers(cert: PeerCertificate | X509Certificate | { subjectaltname?: string }): string[] {
  const san = cert instanceof X509Certificate ? cert.subjectAltName : (cert as { subjectaltname?: string }).subjectaltname;
  return sanUris(san)
    .filter((u) => u.startsWith(MEMBER_URI_PREFIX))
    .map((u) => u.slice(MEMBER_URI_PREFIX.length));
}

/** pemCertificates splits a PEM bundle into its certificates. */
function pemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

function readField(field: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TlsError(field, `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * readTlsMaterial reads and checks the files: the CA file holds certificates, the certificate and
 * key belong together, the certificate was issued by one of the CAs and is valid now. Each failure
 * is a TlsError naming the field (`fields` maps ca/cert/key to the caller's names).
 */
export function readTlsMaterial(paths: TlsPaths, fields: { ca: string; cert: string; key: string } = { ca: "ca", cert: "cert", key: "key" }, nowMs = Date.now()): TlsMaterial {
  if ((paths.cert === undefined) !== (paths.key === undefined)) {
    const missing = paths.cert === undefined ? fields.cert : fields.key;
    throw new TlsError(missing, `is needed with ${missing === fields.cert ? fields.key : fields.cert}`);
  }
  const identityOnly = paths.ca === "";
  if (identityOnly && paths.cert === undefined) throw new TlsError(fields.cert, "is needed without a CA file");
  const ca = identityOnly ? Buffer.alloc(0) : readField(fields.ca, paths.ca);
  let cas: X509Certificate[] = [];
  try {
    if (!identityOnly) cas = pemCertificates(ca.toString("utf8"));
  } catch (err) {
    throw new TlsError(fields.ca, `${paths.ca} holds a certificate that does not parse: ${(err as Error).message}`, { cause: err });
  }
  if (!identityOnly && cas.length === 0) throw new TlsError(fields.ca, `${paths.ca} holds no PEM certificate`);
  if (paths.cert === undefined || paths.key === undefined) return { ca, members: [] };
  const cert = readField(fields.cert, paths.cert);
  const key = readField(fields.key, paths.key);
  let x509: X509Certificate;
  try {
    const first = pemCertificates(cert.toString("utf8"))[0];
    if (!first) throw new Error("no PEM certificate in it");
    x509 = first;
  } catch (err) {
    throw new TlsError(fields.cert, `${paths.cert} is not a PEM certificate: ${(err as Error).message}`, { cause: err });
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch (err) {
    throw new TlsError(fields.key, `${paths.key} is not a PEM private key: ${(err as Error).message}`, { cause: err });
  }
  if (!x509.checkPrivateKey(keyObject)) throw new TlsError(fields.key, `${paths.key} is not the key of the certificate in ${paths.cert}`);
  if (!identityOnly && !cas.some((c) => x509.checkIssued(c) && x509.verify(c.publicKey))) {
    throw new TlsError(fields.cert, `${paths.cert} (${x509.subject.replace(/\n/g, ", ")}) is not signed by a CA in ${paths.ca}`);
  }
  const notBefore = Date.parse(x509.validFrom);
  const notAfterMs = Date.parse(x509.validTo);
  if (nowMs < notBefore) throw new TlsError(fields.cert, `${paths.cert} is not valid before ${x509.validFrom}`);
  if (nowMs >= notAfterMs) throw new TlsError(fields.cert, `${paths.cert} expired at ${x509.validTo}`);
  return { ca, cert, key, notAfterMs, members: certificateMembers(x509) };
}

/** TlsFilesOptions tune the watch. */
export interface TlsFilesOptions {
  readonly fields?: { ca: string; cert: string; key: string };
  /** checkMs is how often the files are looked at; TLS_RELOAD_CHECK_MS by default. */
  readonly checkMs?: number;
  /** onReload hears of each new reading in use; onError of each change that could not be used (the old material stays). */
  readonly onReload?: (m: TlsMaterial) => void;
  readonly onError?: (err: TlsError) => void;
}

/**
 * TlsFiles holds the current material of a set of PEM files and replaces it when the files change
 * and the new set checks out; a half-written or mismatched set keeps the old one in use (a
 * certificate and its key written one after the other are taken once both are there). It is
 * grpc-js's CertificateProvider, so channels and servers built on it pick new material up.
 */
export class TlsFiles implements CertificateProvider {
  private materialNow: TlsMaterial;
  private signature: string;
  private timer: NodeJS.Timeout | undefined;
  private readonly caListeners = new Set<CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<IdentityCertificateUpdateListener>();
  private readonly changeListeners = new Set<(m: TlsMaterial) => void>();
  private reloadCount = 0;

  /** load reads the files now (throwing a TlsError when they cannot be used) and starts watching them. */
  constructor(
    readonly paths: TlsPaths,
    private readonly options: TlsFilesOptions = {},
  ) {
    this.signature = this.stat();
    this.materialNow = readTlsMaterial(paths, options.fields);
    this.timer = setInterval(() => this.check(), options.checkMs ?? TLS_RELOAD_CHECK_MS);
    this.timer.unref();
  }

  /** material is what is in use now. */
  get material(): TlsMaterial {
    return this.materialNow;
  }

  /** reloads counts the new readings taken since start. */
  get reloads(): number {
    return this.reloadCount;
  }

  /** onChange calls fn with each new reading put in use. */
  onChange(fn: (m: TlsMaterial) => void): () => void {
    this.changeListeners.add(fn);
    return () => this.changeListeners.delete(fn);
  }

  /** secureContextOptions are the material as Node TLS options. */
  secureContextOptions(): SecureContextOptions {
    const m = this.materialNow;
    return { ca: m.ca, cert: m.cert, key: m.key };
  }

  /** check looks at the files once and takes a changed set that checks out (also run by the timer). */
  check(): boolean {
    const signature = this.stat();
    if (signature === this.signature) return false;
    this.signature = signature;
    let next: TlsMaterial;
    try {
      next = readTlsMaterial(this.paths, this.options.fields);
    } catch (err) {
      if (!(err instanceof TlsError)) throw err;
      this.options.onError?.(err);
      return false;
    }
    this.materialNow = next;
    this.reloadCount++;
    this.options.onReload?.(next);
    for (const fn of this.changeListeners) fn(next);
    for (const l of this.caListeners) l({ caCertificate: next.ca });
    if (next.cert && next.key) for (const l of this.identityListeners) l({ certificate: next.cert, privateKey: next.key });
    return true;
  }

  /** close stops watching. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  addCaCertificateListener(listener: CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    listener({ caCertificate: this.materialNow.ca });
  }

  removeCaCertificateListener(listener: CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    const m = this.materialNow;
    listener(m.cert && m.key ? { certificate: m.cert, privateKey: m.key } : null);
  }

  removeIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }

  /** stat is the files' sizes and modification times, one string to compare. */
  private stat(): string {
    return [this.paths.ca, this.paths.cert, this.paths.key]
      .map((p) => {
        if (p === undefined || p === "") return "-";
        try {
          const s = statSync(p);
          return `${s.size}:${s.mtimeMs}:${s.ino}`;
        } catch {
          return "missing";
        }
      })
      .join("|");
  }
}

/**
 * ReloadingServerCredentials are grpc-js server credentials whose secure context follows a
 * TlsFiles: the server's listener takes new material with setSecureContext, so connections open
 * at the change carry on and new ones use the new certificate (no rebind).
 */
class ReloadingServerCredentials extends ServerCredentials {
  constructor(files: TlsFiles, requireClientCertificate: boolean) {
    super({ requestCert: true, rejectUnauthorized: requireClientCertificate }, files.secureContextOptions());
    files.onChange(() => this.updateSecureContextOptions(files.secureContextOptions()));
  }

  _equals(other: ServerCredentials): boolean {
    return this === other;
  }
}

/** serverCredentials serves TLS with the files' certificate; clients must present a certificate of the CA when requireClientCertificate. */
export function serverCredentials(files: TlsFiles, requireClientCertificate: boolean): ServerCredentials {
  if (!files.material.cert) throw new TlsError("cert", "a server needs a certificate and key");
  return new ReloadingServerCredentials(files, requireClientCertificate);
}

/**
 * channelCredentials dials with TLS trusting the files' CA (and presenting their certificate when
 * they hold one). Each new connection uses the material current at that moment. checkServer, when
 * given, replaces the host-name check (peers check the member URI instead).
 */
export function channelCredentials(files: TlsFiles, checkServer?: (cert: PeerCertificate) => Error | undefined): ChannelCredentials {
  const verify = checkServer ? { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServer(cert) } : {};
  return experimental.createCertificateProviderChannelCredentials(files, files.material.cert ? files : null, verify);
}

/** memberCheck is a checkServer that accepts only a certificate naming member `id`. */
export function memberCheck(id: string): (cert: PeerCertificate) => Error | undefined {
  return (cert) => {
    const named = certificateMembers(cert);
    if (named.includes(id)) return undefined;
    return new Error(`the server's certificate names ${named.length ? named.map((n) => `member "${n}"`).join(", ") : "no member"}, not "${id}"`);
  };
}

/** ClientTlsOptions are what a client is told: file paths; it loads them itself. */
export interface ClientTlsOptions {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
}

/** tlsFromEnv reads RAFTMESH_CA, RAFTMESH_CERT and RAFTMESH_KEY (undefined when RAFTMESH_CA is unset). */
export function tlsFromEnv(env: NodeJS.ProcessEnv): ClientTlsOptions | undefined {
  const ca = env.RAFTMESH_CA || undefined;
  const cert = env.RAFTMESH_CERT || undefined;
  const key = env.RAFTMESH_KEY || undefined;
  if (!ca) {
    if (cert || key) throw new TlsError("RAFTMESH_CA", "is needed with RAFTMESH_CERT/RAFTMESH_KEY");
    return undefined;
  }
  return { ca, cert, key };
}
