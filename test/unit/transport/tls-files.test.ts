/**
 * TLS material: `raftmesh tls init` output checked by Node's own X.509 parser (issued by and
 * verified against the CA, the member URI, the key pair, the validity), the limits of --days, the
 * checks readTlsMaterial makes with the field each failure names, the configuration's TLS fields,
 * and TlsFiles taking a new set of files only once it checks out.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CERT_DAYS_RANGE, tlsCommand, tlsInit } from "../../../src/cli/tls-command.js";
import { UsageError } from "../../../src/cli/args.js";
import type { TlsError } from "../../../src/common/errors.js";
import { memberUri, readTlsMaterial, TlsFiles } from "../../../src/common/tls.js";
import { ConfigError, loadConfig } from "../../../src/config/index.js";
import { verifyPeerIdentity } from "../../../src/transport/identity.js";
import { CERT_EXPIRY_REPEAT_MS, CERT_EXPIRY_WARN_MS, type ExpiryWarning, isLoopback, warnPlaintext, watchCertificateExpiry } from "../../../src/agent/tls.js";

const root = mkdtempSync(join(tmpdir(), "raftmesh-tls-unit-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const dir = join(root, "a");
const other = join(root, "b");
const first = tlsInit({ dir, nodes: ["n1", "n2"], hosts: ["node1.example", "10.1.2.3", "fd00::7"], days: 10 });
tlsInit({ dir: other, nodes: ["n1"] });
const pem = (d: string, f: string) => readFileSync(join(d, f));

describe("raftmesh tls init", () => {
  it("writes a CA that issued and signed each node certificate, naming its member", () => {
    expect(first.caKept).toBe(false);
    const ca = new X509Certificate(pem(dir, "ca.pem"));
    expect(ca.ca).toBe(true);
    expect(ca.checkIssued(ca)).toBe(true);
    for (const id of ["n1", "n2"]) {
      const cert = new X509Certificate(pem(dir, `${id}.pem`));
      expect(cert.ca).toBe(false);
      expect(cert.checkIssued(ca)).toBe(true);
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(cert.checkPrivateKey(createPrivateKey(pem(dir, `${id}-key.pem`)))).toBe(true);
      expect(cert.subjectAltName).toContain(`URI:${memberUri(id)}`);
      expect(cert.checkHost("localhost")).toBe("localhost");
      expect(cert.checkHost("node1.example")).toBe("node1.example");
      expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
      expect(cert.checkIP("10.1.2.3")).toBe("10.1.2.3");
      expect(cert.checkIP("fd00::7")).toBe("fd00::7");
      const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(9.9);
      expect(days).toBeLessThanOrEqual(10);
      expect(statSync(join(dir, `${id}-key.pem`)).mode & 0o777).toBe(0o600);
    }
    // The client certificate names no member, so it cannot pass as a peer.
    const client = new X509Certificate(pem(dir, "client.pem"));
    expect(client.verify(ca.publicKey)).toBe(true);
    expect(client.subjectAltName).not.toContain("raftmesh://member/");
  });

  it("a certificate of another CA is not verified by this one", () => {
    const ca = new X509Certificate(pem(dir, "ca.pem"));
    const foreign = new X509Certificate(pem(other, "n1.pem"));
    expect(foreign.checkIssued(ca) && foreign.verify(ca.publicKey)).toBe(false);
  });

  it("keeps an existing CA and issues new nodes from it", () => {
    const again = tlsInit({ dir, nodes: ["n3"] });
    expect(again.caKept).toBe(true);
    const ca = new X509Certificate(pem(dir, "ca.pem"));
    expect(new X509Certificate(pem(dir, "n3.pem")).verify(ca.publicKey)).toBe(true);
  });

  it("accepts --days at its limits and refuses beyond them, naming the flag", () => {
    const out: string[] = [];
    expect(tlsCommand(["init", "--dir", join(root, "c"), "--nodes", "n1", "--days", String(CERT_DAYS_RANGE[1])], (s) => out.push(s))).toBe(0);
    const cert = new X509Certificate(pem(join(root, "c"), "n1.pem"));
    expect(Date.parse(cert.validTo)).toBeGreaterThan(Date.now() + (CERT_DAYS_RANGE[1] - 1) * 86_400_000);
    expect(() => tlsCommand(["init", "--dir", join(root, "c"), "--nodes", "n1", "--days", String(CERT_DAYS_RANGE[1] + 1)], () => {})).toThrow(/--days must be an integer from 1 to 3650/);
    expect(() => tlsCommand(["init", "--dir", join(root, "c"), "--nodes", "n1", "--days", "0"], () => {})).toThrow(UsageError);
    expect(() => tlsCommand(["init", "--dir", join(root, "c"), "--nodes", "N1"], () => {})).toThrow(/--nodes: "N1" is not a node id/);
    expect(() => tlsCommand(["init", "--dir", join(root, "c"), "--nodes", "n1", "--hosts", "bad host"], () => {})).toThrow(/--hosts/);
  });
});

describe("readTlsMaterial", () => {
  const fields = { ca: "tlsCa", cert: "tlsCert", key: "tlsKey" };

  it("reads a matching set and names its members", () => {
    const m = readTlsMaterial({ ca: join(dir, "ca.pem"), cert: join(dir, "n1.pem"), key: join(dir, "n1-key.pem") }, fields);
    expect(m.members).toEqual(["n1"]);
    expect(m.notAfterMs).toBeGreaterThan(Date.now());
  });

  it("names the field of each kind of bad file", () => {
    const read = (ca: string, cert: string, key: string) => () => readTlsMaterial({ ca, cert, key }, fields);
    expect(read(join(dir, "nope.pem"), join(dir, "n1.pem"), join(dir, "n1-key.pem"))).toThrow(/^tlsCa: cannot read/);
    expect(read(join(dir, "n1-key.pem"), join(dir, "n1.pem"), join(dir, "n1-key.pem"))).toThrow(/^tlsCa: .* holds no PEM certificate/);
    expect(read(join(dir, "ca.pem"), join(dir, "n1.pem"), join(dir, "n2-key.pem"))).toThrow(/^tlsKey: .* is not the key of the certificate/);
    expect(read(join(dir, "ca.pem"), join(other, "n1.pem"), join(other, "n1-key.pem"))).toThrow(/^tlsCert: .* is not signed by a CA/);
    expect(read(join(dir, "ca.pem"), join(dir, "n1.pem"), join(dir, "n1-key.pem"))).not.toThrow();
    expect(() => readTlsMaterial({ ca: join(dir, "ca.pem"), cert: join(dir, "n1.pem"), key: join(dir, "n1-key.pem") }, fields, Date.now() + 11 * 86_400_000)).toThrow(/^tlsCert: .* expired at/);
  });
});

describe("TLS configuration", () => {
  const base = { "node-id": "n1", members: "n1=127.0.0.1:7101" };

  it("takes all three files and checks that the certificate names this node", () => {
    const cfg = loadConfig({ env: {}, flags: { ...base, "tls-ca": join(dir, "ca.pem"), "tls-cert": join(dir, "n1.pem"), "tls-key": join(dir, "n1-key.pem") } });
    expect(cfg.tlsCert).toBe(join(dir, "n1.pem"));
    const wrong = () => loadConfig({ env: {}, flags: { ...base, "tls-ca": join(dir, "ca.pem"), "tls-cert": join(dir, "n2.pem"), "tls-key": join(dir, "n2-key.pem") } });
    expect(wrong).toThrow(ConfigError);
    expect(wrong).toThrow(/tlsCert .*names "n2".*not this node "n1"/);
  });

  it("refuses a partial set naming the missing field, and client auth without TLS", () => {
    expect(() => loadConfig({ env: {}, flags: { ...base, "tls-ca": join(dir, "ca.pem"), "tls-cert": join(dir, "n1.pem") } })).toThrow(/tlsKey .*is needed with tlsCa and tlsCert/);
    expect(() => loadConfig({ env: { RAFTMESH_TLS_CLIENT_AUTH: "true" }, flags: base })).toThrow(/tlsClientAuth .*needs tlsCa, tlsCert and tlsKey/);
    expect(() => loadConfig({ env: {}, flags: { ...base, "tls-ca": join(dir, "nope.pem"), "tls-cert": join(dir, "n1.pem"), "tls-key": join(dir, "n1-key.pem") } })).toThrow(/tlsCa .*cannot read/);
  });
});

describe("TlsFiles", () => {
  it("takes a changed set once it checks out and keeps the old one while it does not", () => {
    const live = join(root, "live");
    tlsInit({ dir: live, nodes: ["n1"] });
    const paths = { ca: join(live, "ca.pem"), cert: join(live, "n1.pem"), key: join(live, "n1-key.pem") };
    const errors: TlsError[] = [];
    const files = new TlsFiles(paths, { checkMs: 3_600_000, onError: (e) => errors.push(e) });
    try {
      const before = files.material.cert?.toString();
      const next = join(root, "next");
      tlsInit({ dir: next, nodes: ["n1"] });
      copyFileSync(join(next, "ca.pem"), paths.ca);
      copyFileSync(join(next, "ca-key.pem"), join(live, "ca-key.pem"));
      // The certificate is written first: it does not match the old key, so nothing changes yet.
      copyFileSync(join(next, "n1.pem"), paths.cert);
      expect(files.check()).toBe(false);
      expect(errors).toHaveLength(1);
      expect(errors[0]?.field).toBe("key");
      expect(files.material.cert?.toString()).toBe(before);
      // Then the key: the set checks out and is taken.
      copyFileSync(join(next, "n1-key.pem"), paths.key);
      const t = new Date(Date.now() + 5_000);
      utimesSync(paths.key, t, t);
      expect(files.check()).toBe(true);
      expect(files.material.cert?.toString()).toBe(readFileSync(join(next, "n1.pem"), "utf8"));
      expect(files.reloads).toBe(1);
      // Unchanged files are not read again.
      expect(files.check()).toBe(false);
      // A truncated certificate keeps the good set in use.
      writeFileSync(paths.cert, "-----BEGIN CERTIFICATE-----\nMII");
      expect(files.check()).toBe(false);
      expect(files.material.cert?.toString()).toBe(readFileSync(join(next, "n1.pem"), "utf8"));
    } finally {
      files.close();
    }
  });
});

describe("verifyPeerIdentity", () => {
  const noAddress = { addressOf: () => undefined };
  const callWith = (subjectaltname?: string) => ({ getPeer: () => "10.0.0.9:4000", getAuthContext: () => (subjectaltname === undefined ? {} : { sslPeerCertificate: { subjectaltname } as never }) });

  it("accepts only a certificate naming the claimed member when TLS is on", () => {
    expect(verifyPeerIdentity(callWith("URI:raftmesh://member/n2, DNS:n2"), "n2" as never, noAddress, true)).toBeUndefined();
    expect(verifyPeerIdentity(callWith("URI:raftmesh://member/n2, DNS:n3"), "n3" as never, noAddress, true)?.message).toBe('caller claims to be node "n3" but its certificate names "n2"');
    expect(verifyPeerIdentity(callWith("URI:raftmesh://client/client"), "n3" as never, noAddress, true)?.message).toMatch(/presented no certificate naming a member/);
    expect(verifyPeerIdentity(callWith(), "n3" as never, noAddress, true)).toBeDefined();
    expect(verifyPeerIdentity(callWith(), "n3" as never, noAddress, false)).toBeUndefined();
    // With TLS the certificate is the proof: a source address other than the configured one is not refused.
    expect(verifyPeerIdentity(callWith("URI:raftmesh://member/n2"), "n2" as never, { addressOf: () => "10.0.0.2:7100" }, true)).toBeUndefined();
    // Without TLS the configured IP is what is checked.
    expect(verifyPeerIdentity(callWith(), "n2" as never, { addressOf: () => "10.0.0.2:7100" }, false)?.message).toMatch(/10\.0\.0\.9/);
  });
});

describe("the plaintext warning", () => {
  it("names each non-loopback port of a node without TLS, and says nothing on loopback or with TLS", () => {
    const warned: string[] = [];
    const logger = { warn: (_o: object, msg: string) => warned.push(msg) } as never;
    const cfg = (peer: string, api: string, admin: string, tlsCa = "") => ({ peerListen: peer, apiListen: api, adminListen: admin, tlsCa }) as never;
    expect(warnPlaintext(cfg("127.0.0.1:7101", "[::1]:7201", "localhost:7401"), logger)).toEqual([]);
    expect(warnPlaintext(cfg("0.0.0.0:7100", "127.0.0.1:7200", "10.0.0.5:7400"), logger)).toEqual(["peerListen=0.0.0.0:7100", "adminListen=10.0.0.5:7400"]);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/^PLAINTEXT on a non-loopback address/);
    expect(warnPlaintext(cfg("0.0.0.0:7100", "0.0.0.0:7200", "0.0.0.0:7400", "/ca.pem"), logger)).toEqual([]);
    expect(isLoopback("127.1.2.3:1")).toBe(true);
    expect(isLoopback("[::]:1")).toBe(false);
  });
});

describe("the balancing endpoint's TLS configuration", () => {
  const base = { "node-id": "n1", members: "n1=127.0.0.1:7101" };
  const nodeTls = { "tls-ca": join(dir, "ca.pem"), "tls-cert": join(dir, "n1.pem"), "tls-key": join(dir, "n1-key.pem") };

  it("serves HTTPS with its own pair or the node's, and names the field of each mistake", () => {
    expect(loadConfig({ env: {}, flags: { ...base, ...nodeTls, "balancer-tls": "true" } }).balancerTls).toBe(true);
    // Its own certificate may come from another CA: its chain is its own business.
    const own = loadConfig({ env: {}, flags: { ...base, "balancer-tls": "true", "balancer-tls-cert": join(other, "n1.pem"), "balancer-tls-key": join(other, "n1-key.pem") } });
    expect(own.balancerTlsCert).toBe(join(other, "n1.pem"));
    expect(() => loadConfig({ env: {}, flags: { ...base, "balancer-tls": "true" } })).toThrow(/balancerTls .*needs balancerTlsCert and balancerTlsKey, or the node's TLS/);
    expect(() => loadConfig({ env: {}, flags: { ...base, "balancer-tls": "true", "balancer-tls-cert": join(other, "n1.pem") } })).toThrow(/balancerTlsKey .*is needed/);
    expect(() => loadConfig({ env: {}, flags: { ...base, "balancer-tls-cert": join(other, "n1.pem"), "balancer-tls-key": join(other, "n1-key.pem") } })).toThrow(/balancerTls .*must be true/);
    expect(() => loadConfig({ env: {}, flags: { ...base, "balancer-tls": "true", "balancer-tls-cert": join(other, "n1.pem"), "balancer-tls-key": join(dir, "n1-key.pem") } })).toThrow(/balancerTlsKey .*is not the key/);
    expect(() => loadConfig({ env: {}, flags: { ...base, "balancer-upstream-ca": join(dir, "n1-key.pem") } })).toThrow(/balancerUpstreamCa .*holds no PEM certificate/);
    expect(loadConfig({ env: { RAFTMESH_BALANCER_UPSTREAM_CA: join(other, "ca.pem") }, flags: base }).balancerUpstreamCa).toBe(join(other, "ca.pem"));
  });
});

describe("certificate expiry in the node's own log and events", () => {
  const logger = (lines: string[]) => ({ warn: (_o: object, msg: string) => lines.push(msg), info() {}, error() {} }) as never;

  it("warns of a certificate expiring within 14 days at start, not of one further out; the window's edge", () => {
    const soon = new TlsFiles({ ca: join(dir, "ca.pem"), cert: join(dir, "n1.pem"), key: join(dir, "n1-key.pem") }, { checkMs: 3_600_000 });
    const later = new TlsFiles({ ca: join(other, "ca.pem"), cert: join(other, "n1.pem"), key: join(other, "n1-key.pem") }, { checkMs: 3_600_000 });
    const lines: string[] = [];
    const warned: ExpiryWarning[] = [];
    const w = watchCertificateExpiry([{ name: "node", files: soon }, { name: "balancer", files: later }], logger(lines), (x) => warned.push(x));
    try {
      expect(warned.map((x) => x.name)).toEqual(["node"]);
      expect(warned[0]!.file).toBe(join(dir, "n1.pem"));
      expect(warned[0]!.leftMs).toBeLessThan(CERT_EXPIRY_WARN_MS);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/n1\.pem \(node\) expires within 14 days/);
      // The window decides, not the file: the 365-day certificate at the window's edge, and one ms inside.
      const edge = later.material.notAfterMs!;
      const at = (t: number) => {
        const got: ExpiryWarning[] = [];
        watchCertificateExpiry([{ name: "balancer", files: later }], logger([]), (x) => got.push(x), () => t).stop();
        return got.length;
      };
      expect(at(edge - CERT_EXPIRY_WARN_MS)).toBe(0);
      expect(at(edge - CERT_EXPIRY_WARN_MS + 1)).toBe(1);
    } finally {
      w.stop();
      soon.close();
      later.close();
    }
  });

  it("says it again once a day while the certificate stays near, and at once for a renewed one still near", () => {
    const live = join(root, "expiry-live");
    tlsInit({ dir: live, nodes: ["n1"], days: 10 });
    const files = new TlsFiles({ ca: join(live, "ca.pem"), cert: join(live, "n1.pem"), key: join(live, "n1-key.pem") }, { checkMs: 3_600_000 });
    let now = Date.now();
    const warned: ExpiryWarning[] = [];
    const w = watchCertificateExpiry([{ name: "node", files }], logger([]), (x) => warned.push(x), () => now);
    try {
      expect(warned).toHaveLength(1);
      // Hourly checks within the day say nothing more.
      now += CERT_EXPIRY_REPEAT_MS - 1;
      w.check();
      expect(warned).toHaveLength(1);
      now += 1;
      w.check();
      expect(warned).toHaveLength(2);
      // A renewal that is still within the window (5 days) is a new certificate: said at once, on the reload.
      tlsInit({ dir: live, nodes: ["n1"], days: 5 });
      const t = new Date(Date.now() + 5_000);
      utimesSync(join(live, "n1.pem"), t, t);
      expect(files.check()).toBe(true);
      expect(warned).toHaveLength(3);
      expect(warned[2]!.notAfterMs).toBeLessThan(warned[1]!.notAfterMs);
    } finally {
      w.stop();
      files.close();
    }
  });
});
