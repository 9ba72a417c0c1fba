/**
 * A small X.509 v3 certificate builder on Node's crypto: Node signs and parses certificates but has
 * no builder, and the handful of DER structures a development CA needs are written here rather than
 * taking a dependency or shelling out to openssl. Keys are ECDSA P-256, signatures ecdsa-with-SHA256.
 * The output is checked by Node's own parser (X509Certificate) in the tests.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import { isIP } from "node:net";

/** tlv encodes one DER element: tag, definite length, content. */
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const explicit = (n: number, inner: Buffer) => tlv(0xa0 | n, inner);
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.concat([Buffer.from([unused]), b]));
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"));

/** integer encodes a non-negative integer given as big-endian bytes (a leading 0 keeps it positive). */
function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const trimmed = b.subarray(i);
  return tlv(0x02, (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/** oid encodes a dotted object identifier. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  const out: number[] = [40 * (arcs[0] ?? 0) + (arcs[1] ?? 0)];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** time is UTCTime before 2050 and GeneralizedTime from then on (RFC 5280 4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, "").slice(0, 14); // YYYYMMDDHHMMSS
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

const OID = {
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  subjectKeyId: "2.5.29.14",
  authorityKeyId: "2.5.29.35",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
};

function name(commonName: string, organization: string): Buffer {
  return seq(set(seq(oid(OID.organization), utf8(organization))), set(seq(oid(OID.commonName), utf8(commonName))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

/** SubjectAltName entries: URIs, DNS names and IP addresses. */
export interface AltNames {
  readonly uris?: readonly string[];
  readonly dns?: readonly string[];
  readonly ips?: readonly string[];
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split(".").map(Number));
  // IPv6: expand "::" then write eight 16-bit groups.
  const [head = "", tail = ""] = ip.includes("::") ? ip.split("::") : [ip, ""];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = ip.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  const out = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return out;
}

function altNames(a: AltNames): Buffer {
  const entries = [
    ...(a.uris ?? []).map((u) => tlv(0x86, Buffer.from(u, "ascii"))),
    ...(a.dns ?? []).map((d) => tlv(0x82, Buffer.from(d, "ascii"))),
    ...(a.ips ?? []).map((ip) => tlv(0x87, ipBytes(ip))),
  ];
  return seq(...entries);
}

/** keyId is the SHA-1 of the public key's bits (RFC 5280 4.2.1.2, method 1). */
function keyId(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: "spki", format: "der" });
  // The key's BIT STRING is the SPKI's last element; for P-256 it is the final 65 bytes.
  return createHash("sha1").update(spki.subarray(spki.length - 65)).digest();
}

/** CertificateSpec describes one certificate to issue. */
export interface CertificateSpec {
  readonly commonName: string;
  readonly organization: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly publicKey: KeyObject;
  /** ca makes a CA certificate (may sign others); otherwise a leaf for TLS servers and clients. */
  readonly ca: boolean;
  readonly altNames?: AltNames;
}

/** Issuer is who signs: its own subject and key (the CA's, or the certificate's own for a self-signed CA). */
export interface Issuer {
  readonly commonName: string;
  readonly organization: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** issueCertificate returns the DER of a certificate for spec signed by issuer. */
export function issueCertificate(spec: CertificateSpec, issuer: Issuer): Buffer {
  const signatureAlgorithm = seq(oid(OID.ecdsaWithSha256));
  const extensions = [
    extension(OID.basicConstraints, true, spec.ca ? seq(bool(true)) : seq()),
    // CA: keyCertSign and cRLSign (bits 5, 6) with digitalSignature (0); leaf: digitalSignature only.
    extension(OID.keyUsage, true, spec.ca ? bits(Buffer.from([0x86]), 1) : bits(Buffer.from([0x80]), 7)),
    extension(OID.subjectKeyId, false, octets(keyId(spec.publicKey))),
    extension(OID.authorityKeyId, false, seq(tlv(0x80, keyId(issuer.publicKey)))),
  ];
  if (!spec.ca) extensions.push(extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth))));
  if (spec.altNames) extensions.push(extension(OID.subjectAltName, false, altNames(spec.altNames)));
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))),
    integer(Buffer.concat([Buffer.from([0x01]), randomBytes(15)])),
    signatureAlgorithm,
    name(issuer.commonName, issuer.organization),
    seq(time(spec.notBefore), time(spec.notAfter)),
    name(spec.commonName, spec.organization),
    spec.publicKey.export({ type: "spki", format: "der" }),
    explicit(3, seq(...extensions)),
  );
  const signature = sign("sha256", tbs, issuer.privateKey);
  return seq(tbs, signatureAlgorithm, bits(signature));
}

/** toPem wraps DER as a PEM block. */
export function toPem(der: Buffer, label = "CERTIFICATE"): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** newKeyPair is an ECDSA P-256 key pair: small, fast and accepted by every TLS stack. */
export function newKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync("ec", { namedCurve: "prime256v1" });
}
